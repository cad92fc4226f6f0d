"""Crash and freeze trials: an IMAP backfill on PostgreSQL with two `tally worker` processes,
the one syncing killed (kill -9) or frozen (SIGSTOP) at a random moment.

    .venv/bin/python bench/trials.py [--trials 3] [--messages 5000] [--lease 20] [--idle 8]

Untimed setup, as bench/imap.py: a Dovecot on a free loopback port, the owner's mailbox
filled with the generated mailbox of bench/mailgen.py (bodies included). Then a reference
run, per trial a fresh database (bench/ingest.py's fresh_database and organization) whose
IMAP connection points at Dovecot, and two worker processes (tests/sync/processes.py: the
`tally worker` command with a lease shorter than the 30 s TALLY_SYNC_LEASE_SECONDS accepts).

1. Reference: the backfill with no fault; its activities (type, user, message key) are what
   every trial must end with, and its duration picks the moments of the faults.
2. Per trial: the connection is made due, the worker that claims it is the victim; at a
   moment drawn uniformly from 10-70 % of the reference duration after the claim, it gets
   SIGKILL (its connections close; PostgreSQL rolls its transaction back) or SIGSTOP (its
   transaction stays open, idle, until TALLY_DB_IDLE_IN_TRANSACTION_SECONDS ends it).
   Measured: when the other worker took the connection over and when it finished. A frozen
   victim is then sent SIGCONT and given 3 s to write what it still would.
3. Counted: activities found vs the reference (lost: missing; doubled: rows beyond one per
   activity, or not in the reference), `activity_days` against a recount, and the
   connection's `messages_seen` against the reference (a page counted twice).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the Dovecot fixture and the worker processes live in tests/
if "TALLY_SECRET_KEYS" not in os.environ:  # the workers decrypt what this process encrypts
    from cryptography.fernet import Fernet

    os.environ["TALLY_SECRET_KEYS"] = Fernet.generate_key().decode()
os.environ.setdefault("TALLY_DATA_DIR", tempfile.mkdtemp(prefix="tally-trials-"))

import argparse  # noqa: E402
import random  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from datetime import UTC, datetime  # noqa: E402

from imap import LOGIN, PASSWORD, fill, mailbox_owner  # noqa: E402
from ingest import fresh_database, say  # noqa: E402
from mailgen import Mailbox  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from app.activities.models import Activity, ActivityDay  # noqa: E402
from app.db import session_scope, set_database  # noqa: E402
from app.models import Connection, utcnow  # noqa: E402
from tests.fixtures.dovecot import DovecotServer, find_binary  # noqa: E402
from tests.sync.processes import Processes, wait_for  # noqa: E402

Key = tuple[str, int, str]  # an activity: (message key, user, type)


@dataclass
class Outcome:
    mode: str
    fault_at: float | None  # seconds after the claim; None: no fault (the reference)
    takeover: float | None  # seconds from the fault to the other worker's claim
    finished: float  # seconds from the fault (or the claim) to the end of the backfill
    keys: list[Key]
    rollup: int  # sum of activity_days.count
    seen: int  # the connection's messages_seen


def lease_owner(connection_id: int) -> str | None:
    with session_scope() as session:
        return session.get_one(Connection, connection_id).lease_owner


def done(connection_id: int, since: datetime) -> bool:
    with session_scope() as session:
        connection = session.get_one(Connection, connection_id)
        synced = connection.last_synced_at
        return connection.lease_owner is None and synced is not None and synced >= since


def counted(connection_id: int) -> tuple[list[Key], int, int]:
    with session_scope() as session:
        rows = session.execute(select(Activity.source_key, Activity.user_id, Activity.type)).all()
        rollup = session.scalar(select(func.coalesce(func.sum(ActivityDay.count), 0))) or 0
        seen = session.get_one(Connection, connection_id).messages_seen
    return [(k, u, t) for k, u, t in rows], int(rollup), seen


def trial(
    mode: str, dovecot: DovecotServer, args: argparse.Namespace, rng: random.Random, span: float
) -> Outcome:
    """One backfill by two workers; `mode` "kill", "stop" or "none" for the victim."""
    workdir = Path(tempfile.mkdtemp(prefix="tally-trial-"))
    with fresh_database("postgresql", workdir, "trials") as database:
        connection_id = mailbox_owner(database, dovecot)
        env = {
            "TALLY_DATABASE_URL": database.url,
            "TALLY_SYNC_TICK_SECONDS": "0.5",
            "TALLY_SYNC_WORKERS": "1",
            "TALLY_BACKFILL_DAYS": "730",  # the generated mail spans 2025
            "TALLY_DB_IDLE_IN_TRANSACTION_SECONDS": str(args.idle),
            "TALLY_ALLOWED_PRIVATE_HOSTS": '["127.0.0.1/32"]',  # Dovecot on the loopback
        }
        children = Processes(env, workdir)
        try:
            workers = {w.pid: w for w in (children.worker(n, lease=args.lease) for n in "ab")}
            wait_for(lambda: all("threads" in children.log(n) for n in "ab"), timeout=60)
            started = utcnow()
            with session_scope() as session:
                session.get_one(Connection, connection_id).next_sync_at = started
            holder = wait_for(lambda: lease_owner(connection_id), timeout=30)
            claimed = time.monotonic()
            victim = workers[int(holder.split(":")[1])]
            fault_at = takeover = None
            if mode != "none":
                fault_at = rng.uniform(0.1, 0.7) * span  # later ones often hit a finished run
                time.sleep(max(0.0, claimed + fault_at - time.monotonic()))
                os.kill(victim.pid, signal.SIGKILL if mode == "kill" else signal.SIGSTOP)
            faulted = time.monotonic()
            timeout = args.lease + args.idle + 10 * span + 120
            while not done(connection_id, started):
                owner = lease_owner(connection_id)
                if takeover is None and owner not in (None, holder):
                    takeover = time.monotonic() - faulted
                if time.monotonic() - faulted > timeout:
                    raise TimeoutError(f"no recovery within {timeout:.0f} s")
                time.sleep(0.05)
            finished = time.monotonic() - (faulted if fault_at is not None else claimed)
            if mode == "stop":
                os.kill(victim.pid, signal.SIGCONT)
                time.sleep(3)  # what the thawed worker still writes, it writes now
            keys, rollup, seen = counted(connection_id)
        finally:
            children.close()
            set_database(None)
    shutil.rmtree(workdir, ignore_errors=True)
    return Outcome(mode, fault_at, takeover, finished, keys, rollup, seen)


def row(number: int, outcome: Outcome, reference: Outcome, lease: int) -> str:
    expected, found = set(reference.keys), outcome.keys
    lost = len(expected - set(found))
    doubled = len(found) - len(set(found) & expected)
    if outcome.fault_at is None:
        within = takeover = "—"  # the reference: no fault
    elif outcome.takeover is None:
        within, takeover = "n/a", "finished first"
    else:  # the lease ends `lease` s after the victim's last commit, seen within a tick
        within = "yes" if outcome.takeover <= lease + 1 else "no"
        takeover = f"{outcome.takeover:.1f}"
    return (
        f"| {outcome.mode} | {number} | {outcome.fault_at or 0:.1f} | {takeover} "
        f"| {outcome.finished:.1f} | {within} | {len(expected):,} | {len(found):,} | {lost} "
        f"| {doubled} | {outcome.rollup - len(found)} | {outcome.seen - reference.seen} |"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=3, help="per fault (kill -9, SIGSTOP)")
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--lease", type=int, default=20, help="seconds (default 900)")
    parser.add_argument("--idle", type=int, default=8, help="idle-in-transaction timeout (s)")
    parser.add_argument("--seed", type=int, default=20261207)
    args = parser.parse_args()
    binary = find_binary("dovecot")
    if binary is None:
        say("no dovecot binary: apt-get install dovecot-imapd", err=True)
        return 2
    rng = random.Random(args.seed)
    root = Path(tempfile.mkdtemp(prefix="tally-dovecot-"))
    dovecot = DovecotServer(binary, root)
    try:
        dovecot.start()
        dovecot.add_user(LOGIN, PASSWORD)
        say(f"appending {args.messages:,} messages to Dovecot (untimed)…", err=True)
        fill(dovecot, Mailbox(count=args.messages, with_bodies=True))
        say("reference backfill…", err=True)
        reference = trial("none", dovecot, args, rng, 0.0)
        rows = [row(0, reference, reference, args.lease)]
        outcomes = []
        for mode in ("kill", "stop"):
            for number in range(1, args.trials + 1):
                say(f"{mode} trial {number}…", err=True)
                outcome = trial(mode, dovecot, args, rng, reference.finished)
                outcomes.append(outcome)
                rows.append(row(number, outcome, reference, args.lease))
    finally:
        dovecot.stop()
        shutil.rmtree(root, ignore_errors=True)
    say(
        f"\n{args.messages:,} generated messages from Dovecot on 127.0.0.1, PostgreSQL, two "
        f"`tally worker` processes of one thread each, lease {args.lease} s, idle-in-transaction "
        f"timeout {args.idle} s, ticks of 0.5 s; reference backfill {reference.finished:.1f} s; "
        f"{os.cpu_count()} CPUs, {datetime.now(UTC):%Y-%m-%d}, seed {args.seed}\n"
    )
    say(
        "| fault | trial | at (s after claim) | takeover after (s) | finished after (s) "
        "| takeover within lease | activities expected | found | lost | doubled "
        "| activity_days − rows | messages_seen − reference |"
    )
    say("|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|")
    for line in rows:
        say(line)
    for mode in ("kill", "stop"):
        mine = [o for o in outcomes if o.mode == mode]
        times = [o.finished for o in mine]
        say(
            f"\n{mode}: {len(mine)} trials, recovery (fault to finished) median "
            f"{statistics.median(times):.1f} s, max {max(times):.1f} s"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
