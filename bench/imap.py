"""End to end: an IMAP mailbox backfilled from a real Dovecot into Tally by the sync worker.

    .venv/bin/python bench/imap.py [--messages 20000] [--backend sqlite|postgresql|both]

Untimed setup: a Dovecot on a free loopback port (tests/fixtures/dovecot.py, as the tests run
it), the owner's mailbox filled over IMAP APPEND with the generated mailbox of
bench/mailgen.py (INBOX and Sent as the generator files them, INTERNALDATE = Date, an 8 KiB
body with a signature), and per backend a fresh database with the organization of
bench/ingest.py whose IMAP connection points at Dovecot (password stored encrypted, as the
API stores it). The generated mail spans 2025, so the backfill window is two years
(TALLY_BACKFILL_DAYS=730); everything else is Tally's defaults (batches of 250 UIDs, 8 KiB
body prefixes for signatures).

Timed, per backend:
1. the connector alone: `ImapConnector.pull` from no cursor to the end, pages discarded
   (what the IMAP side costs: SEARCH, header and body-prefix FETCHes, parsing);
2. the sync: `SyncWorker(1).drain()` claims the connection and runs the backfill exactly as
   `tally worker` does (pull, infer, write each page with its cursor, record the outcome).
Printed: messages per second, this process's CPU and Dovecot's CPU per message (read from
/proc), and what the sync stored.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the Dovecot fixture lives in tests/

import argparse  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from datetime import UTC, datetime, timedelta  # noqa: E402

from ingest import create_mailbox_owner, fresh_database, say  # noqa: E402
from mailgen import Mailbox  # noqa: E402
from sqlalchemy import func, select  # noqa: E402

from app.activities.models import Activity  # noqa: E402
from app.config import settings  # noqa: E402
from app.contacts.models import Contact  # noqa: E402
from app.db import Database, session_scope, set_database  # noqa: E402
from app.models import Connection, utcnow  # noqa: E402
from app.runtime import settle_heap  # noqa: E402
from app.security import encrypt_secret  # noqa: E402
from app.sync.worker import SyncWorker  # noqa: E402
from connectors.imap import ImapConnector  # noqa: E402
from tests.fixtures.dovecot import DovecotServer, find_binary  # noqa: E402

LOGIN, PASSWORD = "owner@imap.test", "bench-password"


def fill(dovecot: DovecotServer, mailbox: Mailbox) -> None:
    for folder in ("INBOX", "Sent"):
        messages = [
            (g.raw + (g.body or b"Thanks.\r\n"), g.provider_date)
            for page in mailbox.pages(1000)
            for g in page
            if g.source_id.startswith(folder + "/")
        ]
        dovecot.append_many(LOGIN, folder, messages)


def dovecot_cpu() -> float:
    """CPU seconds of every Dovecot process (utime + stime, /proc), with what its master
    collected from children that have exited (an `imap` process ends with its session)."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        name, rest = text.split("(", 1)[1].rsplit(")", 1)
        if name.startswith(("dovecot", "imap", "auth", "anvil", "log", "config", "stats")):
            fields = rest.split()
            ticks = int(fields[11]) + int(fields[12])
            if name == "dovecot":
                ticks += int(fields[13]) + int(fields[14])
            total += ticks / os.sysconf("SC_CLK_TCK")
    return total


def connector(dovecot: DovecotServer) -> ImapConnector:
    return ImapConnector(
        host=dovecot.host,
        port=dovecot.port,
        username=LOGIN,
        password=PASSWORD,
        security="none",
        batch_size=settings.imap_batch_size,
        body_bytes=settings.imap_body_bytes,
    )


def mailbox_owner(database: Database, dovecot: DovecotServer) -> int:
    """bench/ingest's mailbox owner, their IMAP connection pointed at this Dovecot (plain
    IMAP, the bench login); the connection's id."""
    org = create_mailbox_owner(database)
    with session_scope() as session:
        connection = session.get_one(Connection, org.connection_id)
        connection.config = dovecot.settings(LOGIN)
        connection.secret = encrypt_secret({"password": PASSWORD})
    return org.connection_id


def timed(run: Callable[[], object]) -> tuple[float, float, float]:
    """(wall, this process's CPU, Dovecot's CPU) seconds of run()."""
    t0, c0, d0 = time.perf_counter(), time.process_time(), dovecot_cpu()
    run()
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    time.sleep(1)  # the master reaps the session's `imap` process, and counts its CPU, then
    return wall, cpu, dovecot_cpu() - d0


def bench(backend: str, dovecot: DovecotServer, workdir: Path) -> list[str]:
    since = utcnow() - timedelta(days=settings.backfill_days)
    pulled = [0]

    def pull_only() -> None:
        for page in connector(dovecot).pull(None, since=since):
            pulled[0] += len(page.messages) + len(page.failures)

    rows = []
    wall, cpu, server = timed(pull_only)
    rows.append(
        f"| {backend} | connector alone | {pulled[0]:,} | {pulled[0] / wall:,.0f} "
        f"| {cpu / pulled[0] * 1e6:,.0f} | {server / pulled[0] * 1e6:,.0f} | |"
    )
    with fresh_database(backend, workdir, "imap") as database:
        connection_id = mailbox_owner(database, dovecot)
        with session_scope() as session:
            session.get_one(Connection, connection_id).next_sync_at = utcnow()
        wall, cpu, server = timed(SyncWorker(1).drain)
        with session_scope() as session:
            stored = session.get_one(Connection, connection_id)
            seen, status, error = stored.messages_seen, stored.status, stored.last_error
            activities = session.scalar(select(func.count()).select_from(Activity))
            contacts = session.scalar(select(func.count()).select_from(Contact))
        set_database(None)
    if status != "idle" or seen != pulled[0]:
        raise RuntimeError(f"the sync ended {status} ({error}) after {seen} messages")
    rows.append(
        f"| {backend} | sync (worker) | {seen:,} | {seen / wall:,.0f} "
        f"| {cpu / seen * 1e6:,.0f} | {server / seen * 1e6:,.0f} "
        f"| {activities:,} activities, {contacts:,} contacts |"
    )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    args = parser.parse_args()
    binary = find_binary("dovecot")
    if binary is None:
        say("no dovecot binary: apt-get install dovecot-imapd", err=True)
        return 2
    settings.backfill_days = 730  # the generated mail spans 2025
    workdir = Path(tempfile.mkdtemp(prefix="tally-bench-imap-"))
    root = Path(tempfile.mkdtemp(prefix="tally-dovecot-"))
    dovecot = DovecotServer(binary, root)
    try:
        dovecot.start()
        dovecot.add_user(LOGIN, PASSWORD)
        say(f"appending {args.messages:,} messages to Dovecot (untimed)…", err=True)
        fill(dovecot, Mailbox(count=args.messages, with_bodies=True))
        settle_heap()  # as `tally worker` does at start
        backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
        rows = [row for b in backends for row in bench(b, dovecot, workdir)]
    finally:
        dovecot.stop()
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(workdir, ignore_errors=True)
    say(
        f"\n{args.messages:,} messages from Dovecot on 127.0.0.1, batches of "
        f"{settings.imap_batch_size}, body prefixes of {settings.imap_body_bytes} bytes; "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at the end, "
        f"{datetime.now(UTC):%Y-%m-%d}\n"
    )
    say(
        "| backend | pass | messages | messages/s "
        "| Tally CPU µs/msg | Dovecot CPU µs/msg | stored |"
    )
    say("|---|---|---:|---:|---:|---:|---|")
    for row in rows:
        say(row)
    return 0


if __name__ == "__main__":
    sys.exit(main())
