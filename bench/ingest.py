"""Benchmark the mail ingest pipeline against the floor on the same data.

    .venv/bin/python bench/ingest.py [--messages 100000] [--backend sqlite|postgresql|both]
                                     [--page-size 250]

Pipeline, per page, exactly as the sync runner does it: `connectors.mail.parse_headers` on each
raw header block, one `Page`, then one transaction (`session_scope`) that loads the connection,
calls `ingest_page` and stores the page's cursor. Floor, on the same data: the stdlib header
parse alone, plus the fastest plain bulk load of exactly the rows the pipeline wrote, in the
same page batches, one transaction per page, into a fresh database (COPY on PostgreSQL,
`insert(table)` executemany on SQLite). Then a replay of every page (all already seen), and
the memory of the process at 25/50/75/100% of the run.

See bench/README.md for what is measured and the figures on the reference machine.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import os
import pstats
import resource
import shutil
import sys
import tempfile
import time
import tracemalloc
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser
from email.policy import compat32
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from mailgen import (
    ORG_DOMAIN,
    ORG_NAME,
    ORG_TIMEZONE,
    USERS,
    GeneratedMessage,
    Mailbox,
)
from sqlalchemy import JSON, Table, create_engine, select, text

from app.activities.ingest import IngestResult, ingest_page, load_directory
from app.activities.models import Activity, ActivityDay, Message, MessageAddress, Observation
from app.contacts.models import ActivityContact, Company, Contact, ContactDay, UserContact
from app.contacts.service import KnownContacts
from app.db import Base, Database, commit_without_waiting, session_scope, set_database, upgrade
from app.models import Connection, ConnectionStatus, Role, User
from app.runtime import settle_heap
from app.users import schemas
from app.users.service import create_org, create_user
from connectors.base import Failure, Page, RemoteMessage
from connectors.mail import UnreadableMessage, parse_headers

ROOT = Path(__file__).resolve().parent.parent
POSTGRES_ADMIN_URL = os.environ.get(
    "TALLY_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
CHECKPOINTS = (0.25, 0.50, 0.75, 1.00)
TARGET_US = 250.0  # connectors.md §6.2: target per message; the budget is 500
TARGET_RATIO = 2.0
# The tables the pipeline writes for mail, in foreign-key order.
WRITTEN: tuple[Table, ...] = tuple(
    Base.metadata.tables[model.__tablename__]
    for model in (Company, Contact, Message, Observation, Activity, ActivityContact)
)

# Which messages each address is on (app/activities/facts.py), written with the messages.
ADDRESSES: Table = Base.metadata.tables[MessageAddress.__tablename__]

# The rollups the store keeps beside them: their new rows are in the floor too.
ROLLUPS: tuple[Table, ...] = tuple(
    Base.metadata.tables[model.__tablename__] for model in (ActivityDay, ContactDay, UserContact)
)

Rows = list[dict[str, Any]]
Steps = defaultdict[str, float]  # seconds per step of the page transaction


def say(line: str = "", *, err: bool = False) -> None:
    stream = sys.stderr if err else sys.stdout
    stream.write(line + "\n")
    stream.flush()


# -- databases ------------------------------------------------------------------------------


@contextmanager
def fresh_database(
    backend: str, workdir: Path, label: str, *, keep: bool = False
) -> Iterator[Database]:
    """A new, migrated, throw-away database; dropped (or deleted) on the way out, unless
    `keep` (then its URL is printed, for --reuse)."""
    name = f"tally_bench_{label}_{uuid.uuid4().hex[:8]}"
    if backend == "sqlite":
        workdir.mkdir(parents=True, exist_ok=True)
        database = Database(f"sqlite:///{workdir / name}.db")
        try:
            upgrade(database)
            yield database
        finally:
            database.engine.dispose()
            if keep:
                say(f"kept: --reuse sqlite:///{workdir / name}.db", err=True)
            else:
                for path in workdir.glob(f"{name}.db*"):
                    path.unlink()
        return
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    database = Database(POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + "/" + name)
    try:
        upgrade(database)
        yield database
    finally:
        database.engine.dispose()
        if keep:
            say(f"kept: --reuse {database.url}", err=True)
        else:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@dataclass(frozen=True)
class Org:
    org_id: int
    owner_id: int
    connection_id: int


def create_mailbox_owner(database: Database) -> Org:
    """Acme with its ten users through the user service, and the owner's IMAP connection."""
    set_database(database)
    admin_name, admin_email, _ = USERS[1]
    with session_scope() as session:
        org, _key = create_org(
            session,
            schemas.OrgCreate(
                name=ORG_NAME,
                domains=[ORG_DOMAIN],
                timezone=ORG_TIMEZONE,
                admin_email=admin_email,
                admin_name=admin_name,
            ),
        )
        admin = session.scalars(
            select(User).where(User.org_id == org.id, User.email == admin_email)
        ).one()
        owner: User | None = None
        for index, (name, email, aliases) in enumerate(USERS):
            if email == admin_email:
                continue
            role = Role.manager if index == 2 else Role.rep
            user, _key = create_user(
                session,
                admin,
                schemas.UserCreate(email=email, name=name, role=role, aliases=list(aliases)),
            )
            owner = owner or user
        assert owner is not None
        connection = Connection(
            org_id=org.id,
            user_id=owner.id,
            provider="imap",
            status=ConnectionStatus.idle,
            config={"host": "imap.acme.example", "username": owner.email, "security": "ssl"},
            cursors={},
        )
        session.add(connection)
        session.flush()
        return Org(org.id, owner.id, connection.id)


# -- measurements ---------------------------------------------------------------------------


def rss_mb() -> float:
    """Resident set size now (VmRSS), or the peak where /proc is not available."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class ServerClock:
    """CPU seconds of the PostgreSQL backends serving the bench database, read from
    /proc/<pid>/stat (utime + stime): the server runs on this machine. The wall time of a
    pass depends on what else shares the cores; client CPU + server CPU is what the pass
    itself costs, and what its wall time comes to on an otherwise idle machine (the client
    waits for every statement, so the two do not overlap). None on SQLite or without /proc."""

    def __init__(self, database: Database) -> None:
        self.pids: list[int] = []
        if database.is_sqlite or not Path("/proc/self/stat").exists():
            return
        with database.engine.connect() as connection:  # the pool keeps this one for the pass
            self.pids = list(
                connection.scalars(
                    text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
                )
            )
        self.ticks = os.sysconf("SC_CLK_TCK")

    def __call__(self) -> float:
        total = 0.0
        for pid in self.pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += (int(fields[11]) + int(fields[12])) / self.ticks
        return total


@dataclass
class MemoryPoint:
    done: int
    rss_mb: float
    traced_mb: float | None = None


@dataclass
class PassResult:
    messages: int = 0
    parse_s: float = 0.0  # wall seconds in parse_headers and building the Page
    write_s: float = 0.0  # wall seconds in the page transaction (ingest_page + commit)
    cpu_s: float = 0.0  # this process's CPU seconds over both
    server_cpu_s: float = 0.0  # the PostgreSQL backends' CPU seconds over the write
    memory: list[MemoryPoint] = field(default_factory=list)
    totals: Counter[str] = field(default_factory=Counter)
    analyzes: int = 0  # ANALYZE runs between pages (PostgreSQL, --analyze auto)
    steps: Steps = field(
        default_factory=lambda: defaultdict(float)
    )  # seconds per step of the write

    @property
    def total_s(self) -> float:
        return self.parse_s + self.write_s

    def us(self, seconds: float) -> float:
        return seconds / self.messages * 1e6 if self.messages else 0.0


def _parse(generated: GeneratedMessage) -> RemoteMessage | Failure:
    try:
        return parse_headers(
            generated.raw,
            source_id=generated.source_id,
            folder_role=generated.folder_role,
            provider_date=generated.provider_date,
            body=generated.body,
        )
    except UnreadableMessage as error:  # what the IMAP connector records as a failure
        return Failure(generated.source_id, str(error))


class AutoAnalyze:
    """What autovacuum's autoanalyze would do, minus its delay of up to a minute (naptime).

    PostgreSQL plans with table statistics; a server with `autovacuum = off` (like this one)
    never gathers them, and its plans for the pipeline's `IN (…)` look-ups degrade to a scan
    of the whole mailbox per page. With `enabled`, the written tables are analyzed, outside
    the timed sections, whenever they have grown by autovacuum's default threshold
    (50 rows + 10%) since the last ANALYZE; the stream writes every table in proportion to
    its messages, so the message count stands in for each table's row count."""

    def __init__(self, database: Database, *, enabled: bool) -> None:
        self.database = database
        self.enabled = enabled and not database.is_sqlite
        self.analyzed_at = 0
        self.runs = 0

    def after(self, done: int) -> None:
        if self.enabled and done - self.analyzed_at > 50 + 0.1 * self.analyzed_at:
            with self.database.engine.begin() as connection:
                for table in WRITTEN:
                    connection.execute(text(f"ANALYZE {table.name}"))
            self.analyzed_at = done
            self.runs += 1


def run_pipeline(
    database: Database,
    org: Org,
    mailbox: Mailbox,
    page_size: int,
    *,
    analyze: bool,
    trace: bool = False,
    progress: str = "",
    floor: Floor | None = None,
) -> PassResult:
    """Parse → infer → write, page by page; generation of the raw bytes is not timed. With
    `floor`, the floor is measured beside each page (outside the pipeline's timings)."""
    result = PassResult()
    with breakdown(result.steps):
        _run_pages(database, org, mailbox, page_size, result, analyze, trace, progress, floor)
    return result


def _run_pages(
    database: Database,
    org: Org,
    mailbox: Mailbox,
    page_size: int,
    result: PassResult,
    analyze: bool,
    trace: bool,
    progress: str,
    floor: Floor | None,
) -> None:
    set_database(database)
    autoanalyze = AutoAnalyze(database, enabled=analyze)
    with session_scope() as session:
        directory = load_directory(session, org.org_id)
    marks = [max(1, round(mailbox.count * c)) for c in CHECKPOINTS]
    first_snapshot: tracemalloc.Snapshot | None = None
    clock, cpu, server = time.perf_counter, time.process_time, ServerClock(database)
    known = KnownContacts()  # the runner keeps one per run
    for number, generated in enumerate(mailbox.pages(page_size)):
        if floor is not None:
            floor.parse([g.raw for g in generated])
        c0, t0 = cpu(), clock()
        parsed = [_parse(g) for g in generated]
        page = Page(
            messages=tuple(m for m in parsed if isinstance(m, RemoteMessage)),
            failures=tuple(f for f in parsed if isinstance(f, Failure)),
            cursor=f'{{"INBOX": {number}}}',
        )
        t1, s1 = clock(), server()
        with session_scope() as session:
            connection = session.get_one(Connection, org.connection_id)
            ta = clock()
            ingested = ingest_page(session, connection, page, directory, known)
            tb = clock()
            connection.cursors = {**connection.cursors, "imap": page.cursor or ""}
            commit_without_waiting(session)  # as the sync runner commits a page
        t2, c2 = clock(), cpu()
        result.server_cpu_s += server() - s1
        result.parse_s += t1 - t0
        result.write_s += t2 - t1
        result.steps["begin + load connection"] += ta - t1
        result.steps["ingest_page"] += tb - ta
        result.steps["commit (flush + COMMIT)"] += t2 - tb
        result.cpu_s += c2 - c0
        result.messages += len(generated)
        if floor is not None:
            floor.insert_page()
        _count(result.totals, ingested)
        autoanalyze.after(result.messages)
        if marks and result.messages >= marks[0]:
            while marks and result.messages >= marks[0]:  # a big page can pass two marks
                marks.pop(0)
            point = MemoryPoint(result.messages, rss_mb())
            if trace:
                gc.collect()
                point.traced_mb = tracemalloc.get_traced_memory()[0] / 2**20
                if first_snapshot is None:
                    first_snapshot = tracemalloc.take_snapshot()
                elif not marks:
                    _report_growth(first_snapshot, tracemalloc.take_snapshot())
            result.memory.extend([point] * (len(CHECKPOINTS) - len(marks) - len(result.memory)))
            if progress:
                say(
                    f"  {progress}: {result.messages:>7,} messages, "
                    f"{result.us(result.total_s):7.1f} µs/msg so far, RSS {point.rss_mb:.0f} MB",
                    err=True,
                )
    result.analyzes = autoanalyze.runs


def _count(totals: Counter[str], ingested: IngestResult) -> None:
    totals["imported"] += ingested.imported
    totals["filtered"] += ingested.filtered
    totals["failed"] += ingested.failed
    totals["activities"] += ingested.activities_created


def _report_growth(before: tracemalloc.Snapshot, after: tracemalloc.Snapshot) -> None:
    keep = [tracemalloc.Filter(False, tracemalloc.__file__)]
    diff = after.filter_traces(keep).compare_to(before.filter_traces(keep), "lineno")
    say("  tracemalloc: largest growth from 25% to 100% of the messages:", err=True)
    for stat in diff[:6]:
        say(f"    {stat.size_diff / 1024:+9.1f} KiB  {stat.traceback[0]}", err=True)


# -- where the write's time goes (--breakdown) ----------------------------------------------

# Steps of ingest_page, in call order; indented ones are inside the one above.
STEP_ORDER = (
    "begin + load connection",
    "ingest_page",
    "  select unseen observations",
    "  infer + build batch (CPU)",
    "  read signatures",
    "  write",
    "    insert messages",
    "    insert observations",
    "    upsert contacts",
    "      insert companies",
    "      select company ids",
    "      insert contacts",
    "      select contacts + refresh",
    "    lock org + read zone",
    "    select known activity ids",
    "    insert activities",
    "    insert activity_contacts",
    "    upsert rollups",
    "    select message ids, update undated",
    "commit (flush + COMMIT)",
)


def _timed(steps: Steps, name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            steps[name] += time.perf_counter() - start

    return timed


def _timed_insert(steps: Steps, indent: str, function: Callable[..., Any]) -> Callable[..., Any]:
    def timed(session: Any, table: Any, rows: Any, conflict: Any, **options: Any) -> Any:
        start = time.perf_counter()
        try:
            return function(session, table, rows, conflict, **options)
        finally:
            steps[f"{indent}insert {table.name}"] += time.perf_counter() - start

    return timed


@contextmanager
def breakdown(steps: Steps) -> Iterator[None]:
    """Time each step of ingest_page by wrapping the helpers it calls.

    Diagnostic only: it patches private names of app.activities.ingest, .store, .rollups and
    app.contacts.service for the duration, and restores them. What is not wrapped is
    computed as the rest of its parent step."""
    from app.activities import ingest as ingest_module
    from app.activities import rollups as rollups_module
    from app.activities import store as store_module
    from app.contacts import service as contacts_module

    def step(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        return lambda function: _timed(steps, name, function)

    patches: list[tuple[Any, str, Callable[[Callable[..., Any]], Callable[..., Any]]]] = [
        (ingest_module, "_unseen", step("  select unseen observations")),
        (ingest_module, "_collect", step("  infer + build batch (CPU)")),
        (ingest_module, "_read_signatures", step("  read signatures")),
        (ingest_module, "_write", step("  write")),
        (store_module, "_zone", step("    lock org + read zone")),
        (store_module, "_by_identity", step("    select known activity ids")),
        (rollups_module, "bump", step("    upsert rollups")),
        (ingest_module, "insert_ignore", lambda f: _timed_insert(steps, "    ", f)),
        (store_module, "insert_ignore", lambda f: _timed_insert(steps, "    ", f)),
        (contacts_module, "upsert_contacts", step("    upsert contacts")),
        (contacts_module, "_upsert_companies", step("upsert companies")),
        (contacts_module, "insert_ignore", lambda f: _timed_insert(steps, "      ", f)),
    ]
    missing = [f"{m.__name__}.{name}" for m, name, _ in patches if not hasattr(m, name)]
    if missing:
        say(f"  no write breakdown: the app no longer has {', '.join(missing)}", err=True)
        yield
        return
    originals = [(module, name, getattr(module, name)) for module, name, _ in patches]
    for module, name, wrap in patches:
        setattr(module, name, wrap(getattr(module, name)))
    try:
        yield
    finally:
        for module, name, original in originals:
            setattr(module, name, original)
        companies = steps.pop("upsert companies", 0.0)
        steps["      select company ids"] = companies - steps["      insert companies"]
        steps["      select contacts + refresh"] = steps["    upsert contacts"] - (
            companies + steps["      insert contacts"]
        )
        known = (
            "    insert messages",
            "    insert observations",
            "    upsert contacts",
            "    lock org + read zone",
            "    select known activity ids",
            "    insert activities",
            "    insert activity_contacts",
            "    upsert rollups",
        )
        steps["    select message ids, update undated"] = steps["  write"] - sum(
            steps[k] for k in known
        )


class Floor:
    """The floor, measured page by page beside the pipeline, so both see the machine in the
    same state (on a shared VM its speed drifts by a third within minutes).

    Before each pipeline page: the stdlib compat32 header parse of the page's raw messages,
    alone. After it: the rows that page wrote (read back untimed: every row of the five
    tables with an id above the last page's, and the links of the new activities; and the
    rollup rows whose key the page was the first to count, worked out from those) go into a
    second fresh database with the fastest plain bulk load there is, in one transaction
    committed as the pipeline commits its pages: COPY on PostgreSQL, the sqlite3 cursor's
    executemany on SQLite (which has no COPY); foreign-key order, no conflict handling, no
    selects. The rollup rows' share is kept apart (`rollup_s`), so the ratio to the floor of
    the five tables alone can be given too."""

    def __init__(self, source: Database, target: Database) -> None:
        self.source, self.target = source, target
        self.last = dict.fromkeys(WRITTEN, 0)  # the highest id copied, per table
        self.parse_s = self.insert_s = self.insert_cpu_s = self.insert_server_s = 0.0
        self.rollup_s = 0.0
        self.rows: Counter[str] = Counter()
        self.counted: set[tuple[Any, ...]] = set()  # rollup keys a page has counted
        self.zone = ZoneInfo(ORG_TIMEZONE)
        self.server = ServerClock(target)
        self._parse = BytesHeaderParser(policy=compat32).parsebytes

    def parse(self, raws: list[bytes]) -> None:
        t0 = time.perf_counter()
        for raw in raws:
            self._parse(raw)
        self.parse_s += time.perf_counter() - t0

    def insert_page(self) -> None:
        batch = self._new_rows()
        s0 = self.server()
        t0, c0 = time.perf_counter(), time.process_time()
        with self.target.sessions.begin() as session:
            commit_without_waiting(session)  # as the pipeline's pages commit
            for table, rows in batch.items():
                if not rows:
                    continue
                r0 = time.perf_counter()
                if self.target.is_sqlite:
                    _executemany(session, table, rows)
                else:
                    _copy(session, table, rows)
                if table in ROLLUPS:
                    self.rollup_s += time.perf_counter() - r0
        self.insert_s += time.perf_counter() - t0
        self.insert_cpu_s += time.process_time() - c0
        self.insert_server_s += self.server() - s0

    def _new_rows(self) -> dict[Table, Rows]:
        *tables, links = WRITTEN
        activities = tables[-1]
        batch: dict[Table, Rows] = {}
        with self.source.engine.connect() as connection:
            for table in WRITTEN:
                if table is links:
                    query = select(table).where(table.c.activity_id > self.last[activities])
                else:
                    query = select(table).where(table.c.id > self.last[table])
                rows = [
                    dict(r._mapping)
                    for r in connection.execute(query.order_by(*table.primary_key.columns))
                ]
                batch[table] = rows
                self.rows[table.name] += len(rows)
            # the address index of the page's messages (no id, no foreign key: read by the
            # messages' old mark, as the links are by the activities')
            messages = Base.metadata.tables[Message.__tablename__]
            query = select(ADDRESSES).where(ADDRESSES.c.message_id > self.last[messages])
            rows = [dict(r._mapping) for r in connection.execute(query)]
            batch[ADDRESSES] = rows
            self.rows[ADDRESSES.name] += len(rows)
            for table in tables:  # after the links: they read the activities' old mark
                if batch[table]:
                    self.last[table] = max(row["id"] for row in batch[table])
        batch.update(self._new_rollups(batch[activities], batch[links]))
        return batch

    def _new_rollups(self, activities: Rows, links: Rows) -> dict[Table, Rows]:
        """The rollup rows of keys no page counted before, with this page's counts."""
        days: Counter[tuple[Any, ...]] = Counter()
        placed = {}
        for row in activities:
            day = row["occurred_at"].astimezone(self.zone).date()
            days[(row["user_id"], day, row["type"])] += 1
            placed[row["id"]] = (row["user_id"], day, row["occurred_at"])
        engaged: Counter[tuple[Any, ...]] = Counter()
        pairs: Counter[tuple[Any, ...]] = Counter()
        spans: dict[tuple[Any, ...], tuple[Any, Any]] = {}  # contact_days' first_at, last_at
        for link in links:
            user_id, day, moment = placed[link["activity_id"]]
            key = (user_id, day, link["contact_id"])
            engaged[key] += 1
            pairs[(user_id, link["contact_id"])] += 1
            first, last_at = spans.get(key, (moment, moment))
            spans[key] = (min(first, moment), max(last_at, moment))
        batch: dict[Table, Rows] = {}
        keys = (("user_id", "day", "type"), ("user_id", "day", "contact_id"))
        keys += (("user_id", "contact_id"),)
        for table, names, counts in zip(ROLLUPS, keys, (days, engaged, pairs), strict=True):
            batch[table] = [
                dict(zip((*names, "count"), (*key, n), strict=True))
                | ({"first_at": spans[key][0], "last_at": spans[key][1]} if key in spans else {})
                for key, n in sorted(counts.items())
                if (table.name, *key) not in self.counted
            ]
            self.counted.update((table.name, *key) for key in counts)
            self.rows[table.name] += len(batch[table])
        return batch


def _executemany(session: Any, table: Table, rows: Rows) -> None:
    """SQLite's fastest bulk load: the sqlite3 cursor's executemany, values through their column
    types' bind processors (the text SQLAlchemy stores), no SQLAlchemy statement machinery."""
    dialect = session.get_bind().dialect
    names = list(rows[0])
    processors = [table.c[n].type.dialect_impl(dialect).bind_processor(dialect) for n in names]
    params = [
        tuple(p(row[n]) if p else row[n] for n, p in zip(names, processors, strict=True))
        for row in rows
    ]
    cursor = session.connection().connection.driver_connection.cursor()
    marks = ", ".join("?" * len(names))
    cursor.executemany(f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({marks})", params)


def _copy(session: Any, table: Table, rows: Rows) -> None:
    names = list(rows[0])
    as_json = {c.name for c in table.c if isinstance(c.type, JSON)}
    cursor = session.connection().connection.driver_connection.cursor()
    with cursor.copy(f"COPY {table.name} ({', '.join(names)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row([json.dumps(row[n]) if n in as_json else row[n] for n in names])


# -- one backend ----------------------------------------------------------------------------


@dataclass
class BackendResult:
    backend: str
    pipeline: PassResult
    replay: PassResult
    parse_floor_s: float
    insert_floor_s: float
    insert_floor_cpu_s: float
    insert_floor_server_s: float
    rollup_floor_s: float
    rows: dict[str, int]
    traced: PassResult | None = None

    @property
    def messages(self) -> int:
        return self.pipeline.messages

    def us(self, seconds: float) -> float:
        return self.pipeline.us(seconds)

    @property
    def floor_us(self) -> float:
        return self.us(self.parse_floor_s + self.insert_floor_s)

    @property
    def ratio(self) -> float:
        return self.us(self.pipeline.total_s) / self.floor_us

    @property
    def ratio_without_rollups(self) -> float:
        """Against the floor of the mail tables alone (the rollups' new rows left out)."""
        return self.us(self.pipeline.total_s) / (self.floor_us - self.us(self.rollup_floor_s))


def bench_backend(backend: str, args: argparse.Namespace, workdir: Path) -> BackendResult:
    mailbox = Mailbox(
        args.seed, args.messages, full_headers=args.full_headers, with_bodies=args.bodies
    )
    size = args.page_size
    say(f"[{backend}] pipeline and floor: {args.messages:,} messages, pages of {size}", err=True)
    with (
        fresh_database(backend, workdir, "pipeline") as database,
        fresh_database(backend, workdir, "floor") as floor_database,
    ):
        org = create_mailbox_owner(database)
        floor_org = create_mailbox_owner(floor_database)
        if floor_org != org:
            raise RuntimeError(f"floor database ids differ: {floor_org} != {org}")
        floor = Floor(database, floor_database)
        if args.settle_heap:
            settle_heap()  # as `tally serve`, `tally worker` and `tally import` do at start
        else:
            gc.collect()
        pipeline = run_pipeline(
            database, org, mailbox, size, analyze=args.analyze, progress="pipeline", floor=floor
        )
        say(f"[{backend}] replay of every page", err=True)
        replay = run_pipeline(database, org, mailbox, size, analyze=False)  # stats are fresh
    rows = {t.name: floor.rows[t.name] for t in (*WRITTEN, *ROLLUPS)}
    say(f"[{backend}] insert floor: {sum(rows.values()):,} rows, {rows}", err=True)
    gc.collect()
    traced = None
    if args.tracemalloc:
        say(f"[{backend}] memory pass under tracemalloc (not timed)", err=True)
        with fresh_database(backend, workdir, "traced") as database:
            org = create_mailbox_owner(database)
            tracemalloc.start()
            try:
                traced = run_pipeline(
                    database, org, mailbox, size, analyze=args.analyze, trace=True
                )
            finally:
                tracemalloc.stop()
    return BackendResult(
        backend,
        pipeline,
        replay,
        floor.parse_s,
        floor.insert_s,
        floor.insert_cpu_s,
        floor.insert_server_s,
        floor.rollup_s,
        rows,
        traced,
    )


def profile_backend(backend: str, args: argparse.Namespace, workdir: Path) -> None:
    """One more pipeline pass under cProfile: the function-level breakdown of where time goes."""
    mailbox = Mailbox(
        args.seed, args.messages, full_headers=args.full_headers, with_bodies=args.bodies
    )
    out = Path(args.profile).with_suffix(f".{backend}.prof")
    with fresh_database(backend, workdir, "profile") as database:
        org = create_mailbox_owner(database)
        profiler = cProfile.Profile()
        profiler.enable()
        run_pipeline(database, org, mailbox, args.page_size, analyze=args.analyze)
        profiler.disable()
    profiler.dump_stats(out)
    stats = pstats.Stats(profiler, stream=sys.stderr)
    say(f"[{backend}] cProfile written to {out}; top functions by cumulative time:", err=True)
    stats.sort_stats("cumulative").print_stats(45)
    stats.sort_stats("tottime").print_stats(30)


# -- report ---------------------------------------------------------------------------------


def _memory(points: list[MemoryPoint], pick: Callable[[MemoryPoint], float | None]) -> str:
    values = [pick(p) for p in points]
    return "/".join("-" if v is None else f"{v:.0f}" for v in values)


def report(results: list[BackendResult], args: argparse.Namespace, load: str) -> None:
    say()
    say(
        f"{args.messages:,} messages, pages of {args.page_size}, seed {args.seed}"
        f"{', full headers' if args.full_headers else ''}{', with bodies' if args.bodies else ''}"
        f"; {os.cpu_count()} CPUs, load average {load}"
    )
    say()
    say(
        "| backend | messages | pipeline µs/msg | parse floor µs/msg | insert floor µs/msg "
        "| floor µs/msg | ratio | replay µs/msg | RSS MB at 25/50/75/100% |"
    )
    say("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in results:
        say(
            f"| {r.backend} | {r.messages:,} | {r.us(r.pipeline.total_s):.0f} "
            f"| {r.us(r.parse_floor_s):.0f} | {r.us(r.insert_floor_s):.0f} | {r.floor_us:.0f} "
            f"| {r.ratio:.2f} | {r.replay.us(r.replay.total_s):.0f} "
            f"| {_memory(r.pipeline.memory, lambda p: p.rss_mb)} |"
        )
    say()
    say(
        "| backend | pipeline parse µs/msg | pipeline write µs/msg | pipeline CPU µs/msg "
        "| + server CPU µs/msg | insert floor CPU + server µs/msg | replay parse / write µs/msg "
        "| tracemalloc MB at 25/50/75/100% |"
    )
    say("|---|---:|---:|---:|---:|---:|---|---|")
    for r in results:
        traced = _memory(r.traced.memory, lambda p: p.traced_mb) if r.traced else "not run"
        server = "-" if r.backend == "sqlite" else f"{r.us(r.pipeline.server_cpu_s):.0f}"
        floor_server = "" if r.backend == "sqlite" else f" + {r.us(r.insert_floor_server_s):.0f}"
        say(
            f"| {r.backend} | {r.us(r.pipeline.parse_s):.0f} | {r.us(r.pipeline.write_s):.0f} "
            f"| {r.us(r.pipeline.cpu_s):.0f} | {server} "
            f"| {r.us(r.insert_floor_cpu_s):.0f}{floor_server} "
            f"| {r.replay.us(r.replay.parse_s):.0f} / {r.replay.us(r.replay.write_s):.0f} "
            f"| {traced} |"
        )
    say()
    say(
        "Where the write goes (µs/msg; indented steps are inside the one above):\n\n| step | "
        + " | ".join(f"{r.backend} pipeline | {r.backend} replay" for r in results)
        + " |"
    )
    say("|---|" + "---:|---:|" * len(results))
    for step in STEP_ORDER:
        cells = [
            f"{r.us(r.pipeline.steps.get(step, 0.0)):.1f} | "
            f"{r.replay.us(r.replay.steps.get(step, 0.0)):.1f}"
            for r in results
        ]
        name = step.strip()
        say(f"| {'&nbsp;' * (len(step) - len(name))}{name} | {' | '.join(cells)} |")
    say()
    for r in results:
        totals = r.pipeline.totals
        rows = ", ".join(f"{name} {count:,}" for name, count in r.rows.items())
        say(
            f"{r.backend}: imported {totals['imported']:,}, filtered {totals['filtered']:,}, "
            f"failed {totals['failed']:,}, activities {totals['activities']:,}; "
            f"ANALYZE runs between pages {r.pipeline.analyzes}; rows: {rows}"
        )
        pipeline_us = r.us(r.pipeline.total_s)
        verdicts = [
            f"≤ {TARGET_US:.0f} µs/msg: {'yes' if pipeline_us <= TARGET_US else 'NO'}",
            f"within {TARGET_RATIO:.0f}x of floor: {'yes' if r.ratio <= TARGET_RATIO else 'NO'}",
        ]
        say(f"{r.backend}: targets — {'; '.join(verdicts)}")
        say(
            f"{r.backend}: the floor's rollup rows {r.us(r.rollup_floor_s):.1f} µs/msg; "
            f"ratio to the floor without them {r.ratio_without_rollups:.2f}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--page-size", type=int, default=250)
    parser.add_argument("--seed", type=int, default=20250106)
    parser.add_argument(
        "--full-headers",
        action="store_true",
        help="generate whole header blocks (Received, DKIM…) instead of the IMAP field fetch",
    )
    parser.add_argument(
        "--bodies",
        action="store_true",
        help="attach a plain-text body prefix with a signature (IMAP body_bytes > 0)",
    )
    parser.add_argument(
        "--analyze",
        choices=("auto", "off"),
        default="auto",
        help="PostgreSQL: 'auto' runs ANALYZE between pages as autovacuum would (untimed); "
        "'off' never does, as a server with autovacuum = off",
    )
    parser.add_argument(
        "--no-tracemalloc",
        dest="tracemalloc",
        action="store_false",
        help="skip the extra pipeline pass under tracemalloc",
    )
    parser.add_argument(
        "--no-settle-heap",
        dest="settle_heap",
        action="store_false",
        help="keep Python's default garbage collector settings instead of app.runtime's",
    )
    parser.add_argument(
        "--profile",
        metavar="PATH",
        help="instead of benchmarking, run the pipeline under cProfile; stats go to "
        "PATH.<backend>.prof",
    )
    args = parser.parse_args(argv)
    args.analyze = args.analyze == "auto"
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    workdir = Path(tempfile.mkdtemp(prefix="tally-bench-"))
    load_before = _load()
    try:
        if args.profile:
            for backend in backends:
                profile_backend(backend, args, workdir)
            return 0
        results = [bench_backend(backend, args, workdir) for backend in backends]
    finally:
        set_database(None)
        shutil.rmtree(workdir, ignore_errors=True)
    report(results, args, f"{load_before} before, {_load()} after")
    return 0


def _load() -> str:
    """The 1-minute load average: other processes on the machine skew every figure."""
    return f"{os.getloadavg()[0]:.1f}"


if __name__ == "__main__":
    sys.exit(main())
