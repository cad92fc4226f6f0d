"""The harness of the benches that sync from a local emulator (bench/slack.py, bench/graph.py,
bench/gmail.py): the import path, the printer, wall and CPU timing, and, for a sync through
the real runner, the emulator in a forked process of its own (so its CPU is not counted as
Tally's) spoken to over a Pipe, a fresh embedded Tally, and the drain measured between two
snapshots of the emulator's request counts.

A bench imports this module before anything of the project's: it puts the project's root on
the path.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from multiprocessing.connection import Connection as Pipe
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from app.models import Organization, User

_HERE = Path(__file__).resolve().parent
ROOT = _HERE.parent
# the scripts here are named like installed packages (bench/slack.py: slack_sdk's legacy
# `slack`) and would shadow them; none of the emulated benches imports a sibling but this one
sys.path[:] = [str(ROOT)] + [p for p in sys.path if Path(p or ".").resolve() != _HERE]

Stats = dict[str, Any]


def say(text: str, *, flush: bool = False, stream: TextIO | None = None) -> None:
    """A line of output; progress goes to stderr (`stream=sys.stderr`), which is flushed."""
    out = stream or sys.stdout
    out.write(text + "\n")
    if flush or out is sys.stderr:
        out.flush()


@dataclass
class Timing:
    wall: float = 0.0  # seconds
    cpu: float = 0.0  # this process's CPU seconds, every thread


@contextmanager
def timed() -> Iterator[Timing]:
    timing = Timing()
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        yield timing
    finally:
        timing.wall = time.perf_counter() - wall
        timing.cpu = time.process_time() - cpu


# --- the emulator's process ---------------------------------------------------------------


def serve(
    pipe: Pipe,
    hello: Stats,
    stats: Callable[[], Stats],
    stop: Callable[[], None],
    **commands: Callable[..., Any],
) -> None:
    """The child's side, once its emulator is seeded: sends `hello`, then answers ("stats",)
    with `stats()` and its CPU since `hello`, (name, *args) with `commands[name](*args)`, and
    stops on anything else."""
    pipe.send(hello)
    cpu0 = time.process_time()
    while True:
        command, *args = pipe.recv()
        if command == "stats":
            pipe.send({**stats(), "cpu": time.process_time() - cpu0})
        elif command in commands:
            pipe.send(commands[command](*args))
        else:
            stop()
            return


class EmulatorProcess:
    """The parent's side: `target(pipe, *args)` seeds an emulator and calls `serve`."""

    def __init__(self, target: Callable[..., None], *args: Any) -> None:
        self._pipe, theirs = multiprocessing.Pipe()
        # a daemon, so that a bench that fails is not left waiting for it at exit
        self._child = multiprocessing.get_context("fork").Process(
            target=target, args=(theirs, *args), daemon=True
        )
        self._child.start()

    def hello(self) -> Stats:
        """What the emulator sends once seeded (its URL, client credentials…)."""
        while not self._pipe.poll(1):
            if not self._child.is_alive():
                sys.exit("the emulator process died")
        answer: Stats = self._pipe.recv()
        return answer

    def ask(self, command: str, *args: Any) -> Any:
        self._pipe.send((command, *args))
        return self._pipe.recv()

    def stop(self) -> None:
        self._pipe.send(("stop",))
        self._child.join()


# --- Tally, embedded -------------------------------------------------------------------------


def tally_workdir(prefix: str) -> Path:
    """A fresh data directory and secret key for Tally; before the first import of app."""
    from cryptography.fernet import Fernet

    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    os.environ["TALLY_DATA_DIR"] = str(workdir)
    os.environ["TALLY_SECRET_KEYS"] = Fernet.generate_key().decode()
    os.environ.setdefault("TALLY_LOG_LEVEL", "WARNING")
    return workdir


def open_database(workdir: Path) -> None:
    """A fresh SQLite database in `workdir`, migrated, as the process's (the embedded mode)."""
    from app.db import Database, set_database, upgrade

    database = Database(f"sqlite:///{workdir / 'tally.db'}")
    upgrade(database)
    set_database(database)


def acme(session: Session, admin_email: str | None = None) -> tuple[Organization, User]:
    """The org Acme (acme.example) and its admin."""
    from sqlalchemy import select

    from app.models import User
    from app.users import schemas, service

    shape = schemas.OrgCreate(
        name="Acme", domains=["acme.example"], timezone="Europe/Brussels", admin_email=admin_email
    )
    org, _ = service.create_org(session, shape)
    admin = session.scalars(select(User).where(User.org_id == org.id)).one()
    return org, admin


@dataclass
class Run:
    """One drain of the sync queue: its timing and the emulator's stats around it."""

    timing: Timing
    before: Stats
    after: Stats
    connection: dict[str, Any] = field(default_factory=dict)

    def spent(self, key: str) -> Any:
        """What the run added to a counter, or to each counter of a {name: count} stat."""
        after, before = self.after[key], self.before[key]
        if isinstance(after, dict):
            return {name: n - before.get(name, 0) for name, n in after.items()}
        return after - before


def drain(emulator: EmulatorProcess) -> Run:
    """One worker drains the queue (the sync of every connection); then the emulator stops
    and the connection's figures are read."""
    from sqlalchemy import func, select

    from app.activities.models import Activity
    from app.db import session_scope
    from app.models import Connection
    from app.sync.worker import SyncWorker

    before = emulator.ask("stats")
    with timed() as timing:
        SyncWorker(1).drain()
    after = emulator.ask("stats")
    emulator.stop()
    run = Run(timing, before, after)
    with session_scope() as session:
        connection = session.scalars(select(Connection)).one()
        run.connection = {
            "status": connection.status,
            "error": connection.last_error,
            "seen": connection.messages_seen,
            "imported": connection.messages_imported,
            "filtered": connection.messages_filtered,
            "activities": session.scalar(select(func.count()).select_from(Activity)),
        }
    return run


def say_status(run: Run) -> None:
    error = run.connection["error"]
    say(f"status                 {run.connection['status']}{' — ' + str(error) if error else ''}")


def say_cpu(run: Run) -> None:
    cpu, seen = run.timing.cpu, run.connection["seen"]
    say(f"Tally CPU              {cpu:.2f} s = {1e6 * cpu / seen:,.0f} µs per message")
    say(f"emulator CPU           {run.after['cpu']:.2f} s (other process, not Tally's)")
