"""Real `tally worker` and `tally api` processes for crash and freeze tests (and bench/trials.py).

    python -m tests.sync.processes worker --lease 6 [--hold fence:3 --flag PATH]

runs `tally worker` exactly (the CLI command's own function) with a lease shorter than the
30 s TALLY_SYNC_LEASE_SECONDS accepts, and can hold it at a moment of the sync for the parent
to stop with SIGSTOP: after the N-th call of a step, the syncing thread creates PATH.held and
waits for PATH.go. `fence:N` is right after the N-th lease check, when a page transaction
holds the connection's row for writing and is about to commit (the worst moment for everyone
else); `ingest:N` is after the N-th page was written, before its lease check.

The parent sends SIGSTOP itself (`Processes.freeze`): a thread that sends SIGSTOP to its own
process runs on for a while here (measured: it printed a line and committed its page before
the process stopped), so a self-stop would not stop where it says.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import httpx2 as httpx

ROOT = Path(__file__).resolve().parent.parent.parent


def state(pid: int) -> str:
    """The process state letter from /proc: R, S, D, T (stopped), Z, or X when gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "X"


def wait_for(check: Callable[[], Any], *, timeout: float, every: float = 0.05) -> Any:
    """Poll `check` until it returns something true; that value, or TimeoutError."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := check():
            return value
        time.sleep(every)
    raise TimeoutError(f"not within {timeout} s")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Processes:
    """Children started for one test or trial; all of them killed by close()."""

    def __init__(self, env: Mapping[str, str], logs: Path) -> None:
        self.env = {**os.environ, **env}
        self.logs = logs
        self.children: list[subprocess.Popen[bytes]] = []

    def _start(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        out = (self.logs / f"{name}.log").open("ab")
        try:
            child = subprocess.Popen(
                [sys.executable, *args],
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=out,
                # its own session: a stopped child of a job-control shell's job gets SIGCONT
                # from that shell (measured: the stopped worker ran on within a second)
                start_new_session=True,
            )
        finally:
            out.close()
        self.children.append(child)
        return child

    def worker(self, name: str, *, lease: int, hold: str | None = None) -> subprocess.Popen[bytes]:
        """A `tally worker`; with `hold`, one that stops there (see `freeze`)."""
        extra = ["--hold", hold, "--flag", str(self.logs / name)] if hold else []
        args = ["-m", "tests.sync.processes", "worker", "--lease", str(lease), *extra]
        return self._start(name, *args)

    def freeze(self, name: str, worker: subprocess.Popen[bytes], *, timeout: float = 60) -> None:
        """Once the held worker reached its moment, stop it with SIGSTOP."""
        wait_for(lambda: (self.logs / f"{name}.held").exists(), timeout=timeout)
        os.kill(worker.pid, signal.SIGSTOP)
        wait_for(lambda: state(worker.pid) == "T", timeout=5)

    def thaw(self, name: str, worker: subprocess.Popen[bytes]) -> None:
        """SIGCONT, and let the held thread go on from where it stopped."""
        os.kill(worker.pid, signal.SIGCONT)
        (self.logs / f"{name}.go").touch()

    def api(self) -> str:
        """`tally api` on a free port; its base URL once /healthz answers."""
        port = free_port()
        child = self._start("api", "-m", "app.cli", "api", "--port", str(port))
        url = f"http://127.0.0.1:{port}"

        def healthy() -> bool:
            if child.poll() is not None:
                raise RuntimeError(f"tally api exited:\n{self.log('api')[-4000:]}")
            with contextlib.suppress(httpx.HTTPError):
                return httpx.get(url + "/healthz", timeout=1).status_code == 200
            return False

        wait_for(healthy, timeout=30, every=0.1)
        return url

    def log(self, name: str) -> str:
        path = self.logs / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def close(self) -> None:
        for child in self.children:
            if child.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child.pid, signal.SIGKILL)
            child.wait()


def _hold_after(module: Any, name: str, nth: int, flag: Path) -> None:
    """Wrap module.name: its nth call returns, then waits for the parent (see the docstring)."""
    real = getattr(module, name)
    calls = [0]

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        result = real(*args, **kwargs)
        calls[0] += 1
        if calls[0] == nth:
            flag.with_suffix(".held").touch()
            while not flag.with_suffix(".go").exists():
                time.sleep(0.02)
            sys.stderr.write(f"went on after {name} #{nth}\n")
        return result

    setattr(module, name, wrapped)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.sync.processes")
    parser.add_argument("command", choices=["worker"])
    parser.add_argument("--lease", type=int, required=True)
    parser.add_argument("--hold", default=None, help="fence:N or ingest:N")
    parser.add_argument("--flag", type=Path, default=None)
    args = parser.parse_args(argv)

    from app import cli
    from app.config import settings
    from app.connections import leases
    from app.sync import runner

    settings.sync_lease_seconds = args.lease
    if args.hold:
        step, nth = args.hold.split(":")
        module, name = (leases, "fence") if step == "fence" else (runner, "ingest_page")
        _hold_after(module, name, int(nth), args.flag)
    cli.worker()


if __name__ == "__main__":
    main()
