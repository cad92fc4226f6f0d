"""Benchmark the calendar pipeline against bare recurrence expansion on the same data.

    .venv/bin/python bench/calendars.py [--users 50] [--windows 3,6,12,24]
                                       [--backend sqlite|postgresql|both]

Data: `bench/calgen.py`, 50 users x 2 years of generated CalDAV resources (recurring series
with EXDATEs and moved/cancelled overrides, six time zones, shared meetings, calls, video
links), generated once, outside every timed section. For each window (months back from the
generator's clock, plus 3 months ahead, as the CalDAV connector syncs) and backend, on a fresh
migrated database: per user, `connectors.calendar.ics.read_calendar_parts` on every resource
(parse + occurrence expansion + mapping), pages of 50 objects each written in one transaction
by `app.activities.events.ingest_calendar`, then `settle_ended`. The floor is
`icalendar.Calendar.from_ical` + `recurring_ical_events.of(...).between(window)` alone on the
same resources. See bench/README.md, "Calendar benchmark".
"""

import argparse
import gc
import os
import shutil
import sys
import tempfile
import time
import tracemalloc
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import icalendar
import recurring_ical_events
from calgen import NOW, ORG_DOMAIN, Calendars, Resource, user_email
from ingest import fresh_database, rss_mb, say  # the same throw-away databases and output
from sqlalchemy import func, select

from app.activities.events import ingest_calendar, settle_ended
from app.activities.ingest import load_directory
from app.activities.models import Activity, EventCopy
from app.contacts.models import Contact
from app.db import Database, session_scope, set_database
from app.models import Connection, ConnectionStatus, Organization, User, UserAddress
from connectors.base import CalendarObject
from connectors.calendar.ics import UnreadableCalendar, read_calendar_parts

PAGE = 50  # objects per page: the CalDAV connector's default
FUTURE = timedelta(days=90)


def create_org(database: Database, users: int) -> tuple[int, dict[int, int]]:
    """The org and its users (plain rows: the user service is not what is measured), and one
    caldav connection per user; returns (org id, {user index: connection id})."""
    set_database(database)
    with session_scope() as session:
        org = Organization(name="Acme", domains=[ORG_DOMAIN], timezone="America/New_York")
        session.add(org)
        session.flush()
        connections: dict[int, int] = {}
        for index in range(users):
            email = user_email(index)
            user = User(org_id=org.id, email=email, name=f"Rep {index}", role="rep")
            session.add(user)
            session.flush()
            session.add(UserAddress(user_id=user.id, email=email, org_id=org.id, is_primary=True))
            connection = Connection(
                org_id=org.id,
                user_id=user.id,
                provider="caldav",
                status=ConnectionStatus.idle,
                config={"url": "https://dav.acme.example/", "username": email},
                cursors={},
            )
            session.add(connection)
            session.flush()
            connections[index] = connection.id
        return org.id, connections


@dataclass
class Run:
    months: int
    occurrences: int = 0
    failures: int = 0
    read_s: float = 0.0  # read_calendar_parts: parse + expansion + mapping
    write_s: float = 0.0  # ingest_calendar transactions + settle_ended
    rss_before: float = 0.0
    rss_after: float = 0.0
    traced_peak_mb: float | None = None
    rows: dict[str, int] = field(default_factory=dict)

    @property
    def total_s(self) -> float:
        return self.read_s + self.write_s


def window_of(months: int) -> tuple[datetime, datetime]:
    return NOW - timedelta(days=round(months * 30.44)), NOW + FUTURE


def pipeline(
    database: Database, calendars: dict[int, list[Resource]], months: int, trace: bool = False
) -> Run:
    org_id, connections = create_org(database, len(calendars))
    window = window_of(months)
    run = Run(months, rss_before=rss_mb())
    with session_scope() as session:
        directory = load_directory(session, org_id)
    gc.collect()
    if trace:
        tracemalloc.start()
    for user, resources in calendars.items():
        for first in range(0, len(resources), PAGE):
            started = time.perf_counter()
            objects: list[CalendarObject] = []
            for resource in resources[first : first + PAGE]:
                try:
                    found, reasons = read_calendar_parts(
                        resource.data, resource=resource.href, window=window, version="1"
                    )
                except UnreadableCalendar:
                    run.failures += 1
                    continue
                run.failures += bool(reasons)
                run.occurrences += len(found.events)
                objects.append(found)
            read = time.perf_counter()
            with session_scope() as session:
                connection = session.get_one(Connection, connections[user])
                ingest_calendar(session, connection, objects, directory, now=NOW)
            run.read_s += read - started
            run.write_s += time.perf_counter() - read
    started = time.perf_counter()
    with session_scope() as session:
        settle_ended(session, org_id, directory, now=NOW)
    run.write_s += time.perf_counter() - started
    if trace:
        run.traced_peak_mb = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    run.rss_after = rss_mb()
    with session_scope() as session:
        for name, model in (("event copies", EventCopy), ("contacts", Contact)):
            run.rows[name] = session.scalar(select(func.count()).select_from(model)) or 0
        for kind, count in session.execute(
            select(Activity.type, func.count()).group_by(Activity.type).order_by(Activity.type)
        ):
            run.rows[str(getattr(kind, "value", kind))] = count
    return run


def expansion_floor(calendars: dict[int, list[Resource]], months: int) -> tuple[float, int]:
    """icalendar parse + recurring_ical_events expansion of every resource, nothing else."""
    window = window_of(months)
    count = 0
    started = time.perf_counter()
    for resources in calendars.values():
        for resource in resources:
            calendar = icalendar.Calendar.from_ical(resource.data)
            count += len(list(recurring_ical_events.of(calendar).between(*window)))
    return time.perf_counter() - started, count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--windows", default="3,6,12,24", help="months back, comma-separated")
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--seed", type=int, default=20250106)
    parser.add_argument("--no-tracemalloc", dest="tracemalloc", action="store_false")
    args = parser.parse_args(argv)
    windows = [int(w) for w in args.windows.split(",")]
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    load_before = f"{os.getloadavg()[0]:.1f}"
    say(f"generating {args.users} users' calendars (seed {args.seed})", err=True)
    calendars = Calendars(args.seed, args.users).resources()
    resources = sum(len(r) for r in calendars.values())
    megabytes = sum(len(r.data) for rs in calendars.values() for r in rs) / 2**20
    floors: dict[int, tuple[float, int]] = {}
    for months in windows:
        say(f"expansion floor, {months} months", err=True)
        floors[months] = expansion_floor(calendars, months)
    results: list[tuple[str, Run]] = []
    workdir = Path(tempfile.mkdtemp(prefix="tally-bench-"))
    try:
        for backend in backends:
            for months in windows:
                say(f"[{backend}] pipeline, {months} months", err=True)
                with fresh_database(backend, workdir, "calendar") as database:
                    run = pipeline(database, calendars, months)
                if args.tracemalloc and months == windows[-1]:
                    say(f"[{backend}] tracemalloc pass, {months} months (not timed)", err=True)
                    with fresh_database(backend, workdir, "traced") as database:
                        run.traced_peak_mb = pipeline(
                            database, calendars, months, trace=True
                        ).traced_peak_mb
                results.append((backend, run))
    finally:
        set_database(None)
        shutil.rmtree(workdir, ignore_errors=True)
    say()
    say(
        f"{args.users} users, {resources:,} resources ({megabytes:.1f} MiB), seed {args.seed}, "
        f"windows end {FUTURE.days} days after {NOW:%Y-%m-%d}; {os.cpu_count()} CPUs, "
        f"load average {load_before} before, {os.getloadavg()[0]:.1f} after"
    )
    say()
    say(
        "| backend | window | occurrences | pipeline occ/s | read (parse+expand+map) occ/s "
        "| write occ/s | bare expansion occ/s | pipeline ÷ expansion time | RSS MB before→after "
        "| tracemalloc peak MB |"
    )
    say("|---|---:|---:|---:|---:|---:|---:|---:|---|---:|")
    for backend, run in results:
        floor_s, floor_count = floors[run.months]
        traced = "-" if run.traced_peak_mb is None else f"{run.traced_peak_mb:.0f}"
        say(
            f"| {backend} | {run.months} mo | {run.occurrences:,} "
            f"| {run.occurrences / run.total_s:,.0f} | {run.occurrences / run.read_s:,.0f} "
            f"| {run.occurrences / run.write_s:,.0f} | {floor_count / floor_s:,.0f} "
            f"| {run.total_s / floor_s:.1f} | {run.rss_before:.0f}→{run.rss_after:.0f} | {traced} |"
        )
    say()
    for backend, run in results:
        rows = ", ".join(f"{k} {v:,}" for k, v in run.rows.items())
        say(f"{backend} {run.months} mo: failures {run.failures}; rows: {rows}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
