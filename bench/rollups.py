"""Benchmark metric reads, attainment and lists at 10 million activities, through the HTTP API.

    .venv/bin/python bench/rollups.py [--backend postgresql|sqlite] [--activities N[,N…]]
                                      [--deals N] [--repeat 20] [--keep] [--reuse URL]
                                      [--json OUT] [--baseline EARLIER.json] [--settle S]
                                      [--vacuum] [--explain N]

For each size: a throw-away database, migrated as `tally migrate` does, holding the
organization of `bench/orggen.py` (200 reps in 20 teams, five years of activities, contacts,
companies and deals) bulk-loaded (COPY on PostgreSQL, executemany on SQLite) with its indexes
rebuilt afterwards, and its stored rollups filled by `tally rollups rebuild` (checked against
the generator's own count). Then Tally as deployed, on 127.0.0.1 (`tally serve` on SQLite,
`tally api` + `tally worker` on PostgreSQL), given the time its scheduler takes to analyze a
fresh database (`--settle`), and, sequentially on one keep-alive connection, warm (one round
first): `GET /metrics` for each of the 13 metrics (a team, weeks over a quarter; a rep, months
over a year), `GET /quotas/attainment` for a team of ten with a quota on every metric
(created through the API), the first and tenth page of `GET /activities` for a team (its
manager) and for the admin, and `GET /contacts?q=` for a rep, a manager and the admin.
p50/p95/max wall time per call over `--repeat` rounds, and the CPU the server and its
database backends spent per call; targets p95 ≤ 50 ms, and at most 2× from the smallest size
to the largest. `--explain N` replays the worst calls in process and shows their SQL plans.

See bench/README.md ("Metrics and lists at 10 million activities") for the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import math
import os
import platform
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

from ingest import fresh_database, say  # the same throw-away databases
from orggen import (
    COLUMNS,
    FIRST_DAY,
    ORG_DOMAIN,
    ORG_NAME,
    ORG_TIMEZONE,
    SEARCH_TERM,
    History,
    Row,
    Rows,
    Shape,
    Staff,
    roster,
)
from sqlalchemy import JSON, event, inspect, select, text

from app.db import Base, Database, session_scope, set_database, upgrade
from app.deals.models import PipelineStage
from app.models import Connection, ConnectionStatus, Role, Team, User
from app.users import schemas
from app.users.service import create_org, create_team, create_user, issue_key

ROOT = Path(__file__).resolve().parent.parent
SQLITE_DIR = Path(tempfile.gettempdir()) / "tally-bench-rollups"
TARGET_P95_MS = 50.0
TARGET_RATIO = 2.0
DEFAULT_SIZES = {"postgresql": (100_000, 10_000_000), "sqlite": (100_000, 1_000_000)}

# Every metric of semantics §6, in its order, and the measured team's quota on it.
QUOTAS = {
    "emails_sent": ("month", 2000),
    "emails_received": ("month", 2200),
    "meetings_scheduled": ("month", 300),
    "meetings_held": ("month", 500),
    "calls": ("month", 800),
    "contacts_engaged": ("month", 400),
    "opportunities_created": ("quarter", 300),
    "win_rate": ("quarter", 0.3),
    "avg_deal_value": ("quarter", 20000),
    "sales_cycle_days": ("quarter", 40),
    "deals_won": ("quarter", 80),
    "revenue": ("quarter", 1500000),
    "gross_margin": ("quarter", 500000),
}
METRICS = tuple(QUOTAS)
# What is asked: a quarter in weeks, twelve months, and a day of attainment, all inside history.
QUARTER = ("2026-07-01", "2026-09-30")
YEAR = ("2025-12-01", "2026-11-30")
ATTAINMENT_DAY = "2026-11-16"
# Generated tables, in the order they are loaded (foreign keys).
LOADED = tuple(COLUMNS)


@contextmanager
def timed(steps: dict[str, float], name: str) -> Iterator[None]:
    say(f"  {name}…", err=True)
    t0 = time.perf_counter()
    yield
    steps[name] = time.perf_counter() - t0
    say(f"  {name}: {steps[name]:.1f} s", err=True)


# -- databases ------------------------------------------------------------------------------


@contextmanager
def reused_database(url: str) -> Iterator[Database]:
    """A database an earlier run kept, brought to the latest schema (as `tally migrate`), and
    compared with a fresh migrated one: a migration edited in place since the database was
    made leaves it behind, which alembic cannot see."""
    database = Database(url)
    try:
        upgrade(database)
        backend = "sqlite" if database.is_sqlite else "postgresql"
        with fresh_database(backend, SQLITE_DIR, "rollups_0") as fresh:
            differences = schema(database) ^ schema(fresh)
        for line in sorted(differences):
            say(f"  schema differs from a fresh database: {line}", err=True)
        if differences:
            raise RuntimeError(f"{url} no longer has the schema the migrations make")
        yield database
    finally:
        database.engine.dispose()


def schema(database: Database) -> set[str]:
    """Columns and indexes, as text to compare."""
    with database.engine.connect() as connection:
        if database.is_sqlite:
            rows = connection.execute(
                text(
                    "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL AND name != 'sqlite_stat1'"
                )
            )
        else:
            rows = connection.execute(
                text(
                    "SELECT table_name || '.' || column_name || ' ' || data_type || ' ' || "
                    "is_nullable FROM information_schema.columns WHERE table_schema = 'public' "
                    "UNION ALL SELECT indexdef FROM pg_indexes WHERE schemaname = 'public'"
                )
            )
        return {" ".join(str(row[0]).split()) for row in rows}


# -- the organization -----------------------------------------------------------------------

# the pipeline when Tally gives a new organization none
DEFAULT_STAGES = (
    ("Qualification", "0.1"),
    ("Discovery", "0.25"),
    ("Proposal", "0.5"),
    ("Negotiation", "0.75"),
)


def create_staff(database: Database) -> Staff:
    """Globex, its admin, 20 managers and 200 reps through the user service; each rep's IMAP
    and CalDAV connection (idle, never due); the pipeline (Tally's defaults if it made one)."""
    set_database(database)
    with session_scope() as session:
        org, _key = create_org(
            session,
            schemas.OrgCreate(name=ORG_NAME, domains=[ORG_DOMAIN], timezone=ORG_TIMEZONE),
        )
        admin = session.scalars(select(User).where(User.org_id == org.id)).one()
        for plan in roster():
            manager, _ = create_user(
                session,
                admin,
                schemas.UserCreate(
                    email=plan.manager.email, name=plan.manager.name, role=Role.manager
                ),
            )
            team = create_team(
                session, admin, schemas.TeamCreate(name=plan.name, manager_id=manager.id)
            )
            for person in plan.reps:
                rep, _ = create_user(
                    session,
                    admin,
                    schemas.UserCreate(
                        email=person.email, name=person.name, role=Role.rep, team_id=team.id
                    ),
                )
                for provider in ("imap", "caldav"):
                    session.add(
                        Connection(
                            org_id=org.id,
                            user_id=rep.id,
                            provider=provider,
                            status=ConnectionStatus.idle,
                            config={"host": f"{provider}.{ORG_DOMAIN}", "username": rep.email},
                            cursors={},
                        )
                    )
        has_stages = session.scalar(select(PipelineStage.id).where(PipelineStage.org_id == org.id))
        if has_stages is None:
            for position, (name, probability) in enumerate(DEFAULT_STAGES):
                session.add(
                    PipelineStage(
                        org_id=org.id,
                        position=position,
                        name=name,
                        probability=Decimal(probability),
                        rotten_days=14,
                    )
                )
    return load_staff(database)


def load_staff(database: Database) -> Staff:
    """The ids of Globex and its people, from a database that holds it."""
    set_database(database)
    with session_scope() as session:
        org_id = session.scalars(
            select(User.org_id).where(User.email == f"admin@{ORG_DOMAIN}")
        ).one()
        admin_id = session.scalars(
            select(User.id).where(User.org_id == org_id, User.role == Role.admin)
        ).first()
        teams = session.scalars(select(Team).where(Team.org_id == org_id).order_by(Team.id)).all()
        rep_ids = tuple(
            tuple(session.scalars(select(User.id).where(User.team_id == t.id).order_by(User.id)))
            for t in teams
        )
        connections = session.execute(
            select(Connection.user_id, Connection.provider, Connection.id).where(
                Connection.org_id == org_id
            )
        ).all()
        stages = session.execute(
            select(PipelineStage.name, PipelineStage.probability)
            .where(PipelineStage.org_id == org_id)
            .order_by(PipelineStage.position)
        ).all()
    assert admin_id is not None
    return Staff(
        org_id=org_id,
        admin_id=admin_id,
        team_ids=tuple(t.id for t in teams),
        manager_ids=tuple(t.manager_id or 0 for t in teams),
        rep_ids=rep_ids,
        imap={u: c for u, p, c in connections if p == "imap"},
        caldav={u: c for u, p, c in connections if p == "caldav"},
        stages=tuple((name, Decimal(p)) for name, p in stages),
    )


# -- bulk load ------------------------------------------------------------------------------


class Loader:
    """Streams generated rows into their tables, each table in one transaction, with the
    tables' indexes and constraints dropped meanwhile and rebuilt by `rebuild_indexes()`
    (a sort per index instead of ten million random insertions).

    PostgreSQL: one connection per table, `TRUNCATE` + `COPY … FREEZE` (the rows arrive
    frozen and all-visible, as VACUUM leaves rows that are years old; no ANALYZE).
    SQLite: the sqlite3 cursor's executemany, values through the columns' bind processors
    (the text SQLAlchemy stores), committed every 200,000 rows."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.rows: Counter[str] = Counter()
        self._saved: list[str] = []  # the statements that make them again, in order

    def drop_indexes(self) -> None:
        if self.database.is_sqlite:
            self._drop_sqlite()
        else:
            self._drop_postgres()

    def _drop_postgres(self) -> None:
        with self.database.engine.begin() as connection:
            oids = [
                connection.scalar(text("SELECT CAST(:t AS regclass)::oid"), {"t": t})
                for t in LOADED
            ]
            constraints = connection.execute(
                text(
                    "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid), contype "
                    "FROM pg_constraint WHERE contype IN ('p', 'u', 'f') "
                    "AND (conrelid = ANY(:oids) OR confrelid = ANY(:oids))"
                ),
                {"oids": oids},
            ).all()
            indexes = connection.execute(
                text(
                    "SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index "
                    "WHERE indrelid = ANY(:oids) AND NOT EXISTS (SELECT 1 FROM pg_constraint c "
                    "WHERE c.conindid = indexrelid AND c.contype IN ('p', 'u', 'x'))"
                ),
                {"oids": oids},
            ).all()
            foreign = [c for c in constraints if c[3] == "f"]
            keys = [c for c in constraints if c[3] != "f"]
            for table, name, _, _ in foreign + keys:
                connection.execute(text(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"'))
            for name, _ in indexes:
                connection.execute(text(f"DROP INDEX {name}"))
        add = 'ALTER TABLE {} ADD CONSTRAINT "{}" {}'
        self._saved = [add.format(t, n, d) for t, n, d, _ in keys]
        self._saved += [d for _, d in indexes]
        self._saved += [add.format(t, n, d) for t, n, d, _ in foreign]

    def _drop_sqlite(self) -> None:
        with self.database.engine.begin() as connection:
            indexes = connection.execute(
                text(
                    "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
                    "AND tbl_name IN (" + ", ".join(f"'{t}'" for t in LOADED) + ")"
                )
            ).all()
            for name, _ in indexes:
                connection.execute(text(f'DROP INDEX "{name}"'))
        self._saved = [sql for _, sql in indexes]

    def rebuild_indexes(self) -> None:
        """Every index and constraint dropped, as it was (PostgreSQL: keys, indexes, then
        foreign keys, each validated), and the id sequences moved past the loaded ids."""
        with self.database.engine.begin() as connection:
            if not self.database.is_sqlite:
                connection.execute(text("SET maintenance_work_mem = '512MB'"))
            for sql in self._saved:
                connection.execute(text(sql))
            if not self.database.is_sqlite:
                for table in LOADED:
                    if "id" in COLUMNS[table]:
                        connection.execute(
                            text(
                                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                f"(SELECT coalesce(max(id), 0) + 1 FROM {table}), false)"
                            )
                        )
        self._saved = []

    @contextmanager
    def streams(self, tables: Iterable[str]) -> Iterator[Any]:
        """A `write(rows: Rows)` for these tables, open until the block ends."""
        tables = list(tables)
        if self.database.is_sqlite:
            with self._sqlite(tables) as write:
                yield write
        else:
            with self._postgres(tables) as write:
                yield write

    @contextmanager
    def _postgres(self, tables: list[str]) -> Iterator[Any]:
        kept = {t: _kept(t) for t in tables}
        json_columns = {
            t: [i for i, c in enumerate(kept[t]) if isinstance(_column(t, c).type, JSON)]
            for t in tables
        }
        with ExitStack() as connections, ExitStack() as stack:
            copies = {}
            for table in tables:
                raw = self.database.engine.raw_connection()
                connections.callback(raw.close)
                connection = raw.driver_connection
                assert connection is not None
                connections.callback(connection.commit)  # after the COPY ends (LIFO)
                cursor = connection.cursor()
                cursor.execute("SET synchronous_commit = off")
                cursor.execute(f"TRUNCATE {table}")
                columns = ", ".join(kept[table])
                copies[table] = stack.enter_context(
                    cursor.copy(f"COPY {table} ({columns}) FROM STDIN (FREEZE)")
                )

            def write(batch: Rows) -> None:
                for table, rows in batch.items():
                    copy, as_json = copies[table], json_columns[table]
                    for row in _project(table, rows, len(kept[table])):
                        if as_json:
                            row = tuple(
                                json.dumps(v) if i in as_json else v for i, v in enumerate(row)
                            )
                        copy.write_row(row)
                    self.rows[table] += len(rows)

            yield write

    @contextmanager
    def _sqlite(self, tables: list[str]) -> Iterator[Any]:
        dialect = self.database.engine.dialect
        kept = {t: _kept(t) for t in tables}
        processors = {
            t: [_column(t, c).type.dialect_impl(dialect).bind_processor(dialect) for c in kept[t]]
            for t in tables
        }
        statements = {
            t: f"INSERT INTO {t} ({', '.join(kept[t])}) VALUES ({', '.join('?' * len(kept[t]))})"
            for t in tables
        }
        raw = self.database.engine.raw_connection()
        try:
            connection = raw.driver_connection
            assert connection is not None
            connection.execute("PRAGMA foreign_keys = OFF")
            connection.execute("PRAGMA synchronous = OFF")
            pending = 0

            def write(batch: Rows) -> None:
                nonlocal pending
                for table, rows in batch.items():
                    convert = processors[table]
                    connection.executemany(
                        statements[table],
                        [
                            tuple(p(v) if p else v for p, v in zip(convert, row, strict=True))
                            for row in _project(table, rows, len(kept[table]))
                        ],
                    )
                    self.rows[table] += len(rows)
                    pending += len(rows)
                if pending >= 200_000:
                    connection.commit()
                    pending = 0

            yield write
            connection.commit()
        finally:
            raw.close()


def _column(table: str, name: str) -> Any:
    return Base.metadata.tables[table].c[name]


def _kept(table: str) -> list[str]:
    """The generated columns the table has: the generator may know columns (the rollups'
    `first_at`, `last_at`) a schema does not have yet; they come last in its rows."""
    return [c for c in COLUMNS[table] if c in Base.metadata.tables[table].c]


def _project(table: str, rows: list[Row], width: int) -> Iterable[Row]:
    return rows if width == len(COLUMNS[table]) else (row[:width] for row in rows)


# -- generation -----------------------------------------------------------------------------


@dataclass
class Generated:
    backend: str
    url: str
    activities: int
    deals: int
    rows: dict[str, int] = field(default_factory=dict)
    steps: dict[str, float] = field(default_factory=dict)
    rollups_by: str = ""  # "tally rollups rebuild" or "the generator"
    rollups_check: str = ""
    statistics: str = ""
    vacuumed: bool = False  # --vacuum: the bench ran VACUUM (ANALYZE) itself
    database_mb: float = 0.0


def generate(database: Database, backend: str, shape: Shape, rollups: str) -> Generated:
    result = Generated(backend, str(database.url), shape.activities, shape.deals)
    steps = result.steps
    t0 = time.perf_counter()
    with timed(steps, "organization, teams, users, connections (user service)"):
        staff = create_staff(database)
    history = History(shape, staff)
    loader = Loader(database)
    loader.drop_indexes()
    with timed(steps, "companies and contacts"), loader.streams(("companies", "contacts")) as w:
        w({"companies": list(history.companies()), "contacts": list(history.contacts())})
    # Tally's own rebuild fills the rollups when it has one: the generator's count is then
    # only kept as totals to check it against (loading it too would leave its rows behind,
    # deleted but never vacuumed, in the tables every metric reads).
    by_tally = rollups == "tally" or (rollups == "auto" and tally_has_rollups())
    counted: Counter[str] = Counter()
    with timed(steps, "activities, contact links (and rollups)"):
        tables = ["activities", "activity_contacts"]
        if not by_tally:
            tables += ["activity_days", "contact_days"]
        with loader.streams(tables) as write:
            for number, day in enumerate(history.activity_days(), start=1):
                for table in ("activity_days", "contact_days"):
                    counted[f"{table} rows"] += len(day[table])
                    counted[f"{table} sum"] += sum(row[3] for row in day[table])
                    if by_tally:
                        del day[table]
                write(day)
                if number % 365 == 0:
                    say(f"    year {number // 365}: {loader.rows['activities']:,}", err=True)
    with timed(steps, "exchange rates, deals and their contacts"):
        with loader.streams(("exchange_rates",)) as write:
            write({"exchange_rates": history.exchange_rates()})
        with loader.streams(("deals", "deal_contacts")) as write:
            for batch in history.deals():
                write(batch)
    with timed(steps, "indexes and constraints rebuilt"):
        loader.rebuild_indexes()
    result.rows = dict(loader.rows)
    expected = {
        table: (counted[f"{table} rows"], counted[f"{table} sum"])
        for table in ("activity_days", "contact_days")
    }
    if by_tally:
        with timed(steps, "tally rollups rebuild"):
            run_tally(["rollups", "rebuild"], database_url(database))
        result.rollups_by = "`tally rollups rebuild`"
    else:
        result.rollups_by = "the generator (counted per local day while generating)"
        if "user_contacts" in inspect(database.engine).get_table_names():
            with database.engine.begin() as connection:  # the pairs, from its contact-days
                connection.execute(
                    text(
                        "INSERT INTO user_contacts (user_id, contact_id, count) SELECT user_id, "
                        "contact_id, sum(count) FROM contact_days GROUP BY user_id, contact_id"
                    )
                )
    stored = rollup_totals(database)
    result.rollups_check = (
        f"{'the same' if stored == expected else 'DIFFERENT'} (rows, sum of counts) as the "
        f"generator counted: {stored}"
        + ("" if stored == expected else f" stored, {expected} counted")
    )
    steps["total"] = time.perf_counter() - t0
    return result


def rollup_totals(database: Database) -> dict[str, tuple[int, int]]:
    with database.engine.connect() as connection:
        return {
            table: tuple(
                connection.execute(
                    text(f"SELECT count(*), coalesce(sum(count), 0) FROM {table}")
                ).one()
            )
            for table in ("activity_days", "contact_days")
        }


def database_url(database: Database) -> str:
    return database.engine.url.render_as_string(hide_password=False)


def tally_command() -> list[str]:
    script = Path(sys.executable).parent / "tally"
    return [str(script)] if script.exists() else [sys.executable, "-m", "app.cli"]


def tally_has_rollups() -> bool:
    probe = subprocess.run(
        [*tally_command(), "rollups", "--help"], cwd=ROOT, capture_output=True, text=True
    )
    return probe.returncode == 0 and "rebuild" in probe.stdout


def run_tally(arguments: list[str], url: str) -> None:
    env = {**os.environ, "TALLY_DATABASE_URL": url, "TALLY_LOG_LEVEL": "WARNING"}
    subprocess.run([*tally_command(), *arguments], cwd=ROOT, env=env, check=True)


def describe(database: Database, result: Generated) -> None:
    """Row counts and size on disk."""
    with database.engine.connect() as connection:
        for table in LOADED:
            result.rows[table] = connection.scalar(text(f"SELECT count(*) FROM {table}")) or 0
        if database.is_sqlite:
            path = Path(str(database.engine.url.database))
            files = path.parent.glob(path.name + "*")
            result.database_mb = sum(p.stat().st_size for p in files) / 2**20
        else:
            size = connection.scalar(text("SELECT pg_database_size(current_database())"))
            result.database_mb = (size or 0) / 2**20


def analyzed(database: Database) -> list[str]:
    """The loaded tables the planner has statistics on (the bench never runs ANALYZE:
    whatever is there, Tally did)."""
    with database.engine.connect() as connection:
        if database.is_sqlite:
            query = "SELECT DISTINCT tbl FROM sqlite_stat1"
            if not connection.scalar(
                text("SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'")
            ):
                return []
        else:
            query = (
                "SELECT relname FROM pg_stat_user_tables "
                "WHERE coalesce(last_analyze, last_autoanalyze) IS NOT NULL"
            )
        found = set(connection.scalars(text(query)))
    return [t for t in LOADED if t in found]


def vacuum(database: Database) -> None:
    """What autovacuum would have done by now on a server that runs it (this one does not):
    statistics, and the visibility map that lets index-only scans skip the heap. Not Tally's
    doing: only with --vacuum, to tell a plan's fault from the code's."""
    with database.engine.connect() as connection:
        connection = connection.execution_options(isolation_level="AUTOCOMMIT")
        for table in LOADED:
            connection.execute(
                text(f"ANALYZE {table}" if database.is_sqlite else f"VACUUM (ANALYZE) {table}")
            )


def await_statistics(database: Database, seconds: float) -> str:
    """Wait (up to `seconds`) until Tally has analyzed the tables the reads use most, as its
    scheduler does in a running installation; what it found, and when."""
    wanted = {"activities", "activity_days", "contact_days", "deals"}
    t0 = time.monotonic()
    while True:
        tables = analyzed(database)
        waited = time.monotonic() - t0
        if wanted <= set(tables) or waited >= seconds:
            break
        time.sleep(5)
    if not tables:
        return f"no statistics on the loaded tables when measuring began ({waited:.0f} s in)"
    when = "already there when" if waited < 1 else f"{waited:.0f} s after"
    return f"statistics on {', '.join(tables)} ({when} the server started)"


# -- the server -----------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def tally_server(database: Database, workdir: Path) -> Iterator[tuple[int, int]]:
    """Tally as it is deployed, on 127.0.0.1: `tally serve` on SQLite (the embedded mode:
    API, scheduler and sync worker in one process), `tally api` and `tally worker` (the
    scheduler) on PostgreSQL. Yields the API's port and pid once /healthz answers. The
    generated connections are never due, so the workers sync nothing."""
    from cryptography.fernet import Fernet

    port = _free_port()
    env = {
        **os.environ,
        "TALLY_DATABASE_URL": database_url(database),
        "TALLY_ADMIN_TOKEN": secrets.token_urlsafe(24),
        "TALLY_SECRET_KEYS": Fernet.generate_key().decode(),
        "TALLY_DATA_DIR": str(workdir),
        "TALLY_LOG_LEVEL": "WARNING",
    }
    listen = ["--host", "127.0.0.1", "--port", str(port)]
    commands = [["serve", *listen]] if database.is_sqlite else [["api", *listen], ["worker"]]
    log = (workdir / f"server-{port}.log").open("wb")
    processes = [
        subprocess.Popen(
            [*tally_command(), *command], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
        for command in commands
    ]
    try:
        deadline = time.monotonic() + 180
        while True:
            if any(process.poll() is not None for process in processes):
                raise RuntimeError(f"a tally process exited: see {log.name}")
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                connection.request("GET", "/healthz")
                if connection.getresponse().status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"tally did not answer: see {log.name}")
            time.sleep(0.2)
        pids = ", ".join(str(process.pid) for process in processes)
        say(f"  tally {' + '.join(c[0] for c in commands)} (pids {pids}), port {port}", err=True)
        yield port, processes[0].pid
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.close()


class CpuClock:
    """CPU seconds (user + system, from /proc) of the Tally server process and of the
    PostgreSQL backends connected to its database: what a call costs the machine, whatever
    else shares its two cores. Ticks are 10 ms, so only means over many calls say much."""

    def __init__(self, database: Database, server_pid: int) -> None:
        self.pids = [server_pid]
        self.ticks = os.sysconf("SC_CLK_TCK")
        if not database.is_sqlite:
            with database.engine.connect() as connection:
                self.pids += connection.scalars(
                    text(
                        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                        "AND pid <> pg_backend_pid()"
                    )
                ).all()

    def __call__(self) -> float:
        total = 0
        for pid in self.pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])
        return total / self.ticks


class Api:
    """One keep-alive HTTP connection to the server; each call's wall time, answer read."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=300)

    def call(self, method: str, path: str, key: str, body: object = None) -> tuple[int, Any, float]:
        headers = {"Authorization": f"Bearer {key}"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        for attempt in (1, 2):
            try:
                t0 = time.perf_counter()
                self.connection.request(method, "/api/v1" + path, body=data, headers=headers)
                response = self.connection.getresponse()
                raw = response.read()
                elapsed = time.perf_counter() - t0
                break
            except (http.client.RemoteDisconnected, ConnectionError):
                if attempt == 2:
                    raise
                self.connection.close()
                self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=300)
        return response.status, json.loads(raw) if raw else None, elapsed


# -- the calls ------------------------------------------------------------------------------


@dataclass
class Keys:
    admin: str
    manager: str
    rep: str


def issue_keys(database: Database, staff: Staff) -> Keys:
    """Fresh API keys for the admin, the first team's manager and its first rep."""
    set_database(database)
    with session_scope() as session:
        users = [
            session.get_one(User, i)
            for i in (staff.admin_id, staff.manager_ids[0], staff.rep_ids[0][0])
        ]
        return Keys(*(issue_key(session, u) for u in users))


@dataclass
class Call:
    name: str
    caller: str  # admin | manager | rep
    path: str
    pages: int = 1  # > 1: time page `pages`, reached by following next_cursor


@dataclass
class Timing:
    name: str
    caller: str
    path: str  # the page asked for (its cursor followed to the tenth page)
    status: int = 0
    items: int = 0  # series rows or list items in the answer
    samples: list[float] = field(default_factory=list)  # seconds
    cpu: list[float] = field(default_factory=list)  # server + database CPU seconds
    other_statuses: list[int] = field(default_factory=list)  # answers unlike the warm-up's

    @property
    def cpu_ms(self) -> float:
        return sum(self.cpu) / len(self.cpu) * 1000 if self.cpu else 0.0

    def ms(self, share: float) -> float:
        """Nearest-rank percentile (share 1.0 = max) in milliseconds."""
        ordered = sorted(self.samples)
        return ordered[max(0, math.ceil(share * len(ordered)) - 1)] * 1000

    @property
    def available(self) -> bool:
        return self.status == 200


def plan_calls(staff: Staff) -> list[Call]:
    team, rep = staff.team_ids[0], staff.rep_ids[0][0]
    calls = [
        Call(
            f"metrics {metric}: team, weeks of a quarter",
            "manager",
            f"/metrics?metric={metric}&period=week&start={QUARTER[0]}&end={QUARTER[1]}"
            f"&team_id={team}",
        )
        for metric in METRICS
    ]
    calls += [
        Call(
            f"metrics {metric}: rep, months of a year",
            "manager",
            f"/metrics?metric={metric}&period=month&start={YEAR[0]}&end={YEAR[1]}&user_id={rep}",
        )
        for metric in METRICS
    ]
    calls.append(
        Call(
            "attainment: team of 10, 13 quotas",
            "manager",
            f"/quotas/attainment?team_id={team}&date={ATTAINMENT_DAY}",
        )
    )
    for caller, path, who in (
        ("manager", f"/activities?team_id={team}", "team (manager)"),
        ("admin", "/activities", "admin, unfiltered"),
    ):
        calls.append(Call(f"activities page 1: {who}", caller, path))
        calls.append(Call(f"activities page 10: {who}", caller, path, pages=10))
    calls += [
        Call(f"contacts ?q={SEARCH_TERM}: {caller}", caller, f"/contacts?q={SEARCH_TERM}")
        for caller in ("rep", "manager", "admin")
    ]
    return calls


def create_quotas(api: Api, keys: Keys, staff: Staff) -> dict[str, int]:
    """A quota on every metric for the first team, through the API (as its admin); the
    status per metric (201 created, 409 already there from a kept run, 400 not available)."""
    statuses = {}
    for metric, (period, target) in QUOTAS.items():
        body = {
            "metric": metric,
            "period": period,
            "target": target,
            "team_id": staff.team_ids[0],
            "effective_from": FIRST_DAY.isoformat(),
        }
        statuses[metric], _, _ = api.call("POST", "/quotas", keys.admin, body)
    return statuses


def _count(answer: Any) -> int:
    if isinstance(answer, dict):
        for name in ("series", "items"):
            if isinstance(answer.get(name), list):
                return len(answer[name])
    return 0


def resolve(api: Api, keys: Keys, call: Call) -> str:
    """The path of the call's page: the first, or the one reached by following next_cursor."""
    path = call.path
    key = getattr(keys, call.caller)
    for _ in range(call.pages - 1):
        status, answer, _ = api.call("GET", path, key)
        cursor = answer.get("next_cursor") if status == 200 else None
        if not cursor:
            raise RuntimeError(f"{call.name}: no next page after {path} ({status})")
        path = f"{call.path}{'&' if '?' in call.path else '?'}cursor={quote(cursor)}"
    return path


def measure(
    api: Api, keys: Keys, calls: list[Call], repeat: int, cpu: Callable[[], CpuClock]
) -> list[Timing]:
    """A warm-up pass, then `repeat` rounds over all the calls in order (so a slow phase of
    the shared machine hits every call alike), each call sequential."""
    paths = [resolve(api, keys, call) for call in calls]
    timings = [Timing(c.name, c.caller, p) for c, p in zip(calls, paths, strict=True)]
    for call, path, timing in zip(calls, paths, timings, strict=True):
        timing.status, answer, _ = api.call("GET", path, getattr(keys, call.caller))
        timing.items = _count(answer)
    clock = cpu()  # after the warm-up: every database connection the server uses is open
    for round_ in range(repeat):
        for call, path, timing in zip(calls, paths, timings, strict=True):
            before = clock()
            status, _, seconds = api.call("GET", path, getattr(keys, call.caller))
            timing.cpu.append(clock() - before)
            if status != timing.status:
                timing.other_statuses.append(status)
            timing.samples.append(seconds)
        if (round_ + 1) % 5 == 0:
            say(f"    round {round_ + 1}/{repeat}", err=True)
    return timings


# -- why a call is slow (--explain) ---------------------------------------------------------


@dataclass
class Statement:
    sql: str
    parameters: Any
    seconds: float


def explain(database: Database, keys: Keys, call: Call, path: str) -> str:
    """Serve the call once more in this process (the same app, the same database) while
    recording its SQL; EXPLAIN ANALYZE (PostgreSQL) or EXPLAIN QUERY PLAN (SQLite) of its
    slowest statement."""
    from app.main import create_app

    set_database(database)
    recorded: list[Statement] = []
    started: list[float] = []

    def before(*_: Any) -> None:
        started.append(time.perf_counter())

    def after(_c: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        recorded.append(Statement(statement, parameters, time.perf_counter() - started.pop()))

    event.listen(database.engine, "before_cursor_execute", before)
    event.listen(database.engine, "after_cursor_execute", after)
    try:
        status = asyncio.run(_asgi_get(create_app(), path, getattr(keys, call.caller)))
    finally:
        event.remove(database.engine, "before_cursor_execute", before)
        event.remove(database.engine, "after_cursor_execute", after)
    if not recorded:
        return f"{call.name}: {status}, no SQL recorded"
    slowest = max(recorded, key=lambda s: s.seconds)
    total = sum(s.seconds for s in recorded)
    lines = [
        f"### {call.name} ({status}): {len(recorded)} statements, {total * 1000:.1f} ms in SQL; "
        f"slowest {slowest.seconds * 1000:.1f} ms:",
        "",
        *(
            f"- {r.seconds * 1000:.1f} ms: `{_shorten(' '.join(r.sql.split()), 110)}`"
            for r in sorted(recorded, key=lambda r: -r.seconds)[:5]
        ),
        "",
        "The slowest:",
        "",
        "```sql",
        _shorten(slowest.sql.strip(), 1500),
        _shorten(f"-- parameters: {slowest.parameters!r}", 600),
        "```",
        "",
        "```text",
    ]
    raw = database.engine.raw_connection()
    try:
        cursor = raw.driver_connection.cursor()  # type: ignore[union-attr]
        prefix = "EXPLAIN QUERY PLAN " if database.is_sqlite else "EXPLAIN (ANALYZE, BUFFERS) "
        cursor.execute(prefix + slowest.sql, slowest.parameters)
        lines += [" | ".join(str(v) for v in row) for row in cursor.fetchall()]
    finally:
        raw.rollback()
        raw.close()
    return "\n".join([*lines, "```"])


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else f"{text[:limit]} … ({len(text):,} characters)"


async def _asgi_get(app: Any, path: str, key: str) -> int:
    """One GET through the ASGI app, without a network: the answer's status."""
    target, _, query = f"/api/v1{path}".partition("?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": target,
        "raw_path": target.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(b"authorization", f"Bearer {key}".encode()), (b"host", b"127.0.0.1")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    status = 0

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


# -- one size -------------------------------------------------------------------------------


@dataclass
class SizeResult:
    generated: Generated
    quotas: dict[str, int]
    timings: list[Timing]
    explained: list[str] = field(default_factory=list)
    load: str = ""

    @property
    def activities(self) -> int:
        return self.generated.rows.get("activities", self.generated.activities)


def bench_size(
    args: argparse.Namespace,
    backend: str,
    activities: int,
    workdir: Path,
    smaller: SizeResult | None,
) -> SizeResult:
    """Generate (or reuse) one database and measure every call on it; `smaller`, the
    smallest size measured so far, decides which calls grew too much to go unexplained."""
    deals = args.deals if args.deals is not None else activities // 20
    shape = Shape(activities, deals, args.seed)
    if args.reuse:
        context = reused_database(args.reuse)
    else:
        context = fresh_database(backend, SQLITE_DIR, f"rollups_{activities}", keep=args.keep)
    with context as database:
        if args.reuse:
            say(f"[{backend}] reusing {args.reuse}", err=True)
            generated = Generated(backend, args.reuse, 0, 0, rollups_by="(kept database)")
        else:
            say(f"[{backend}] generating {activities:,} activities, {deals:,} deals", err=True)
            generated = generate(database, backend, shape, args.rollups)
        describe(database, generated)
        if args.vacuum:
            with timed(generated.steps, "VACUUM (ANALYZE) by the bench (--vacuum)"):
                vacuum(database)
            generated.vacuumed = True
        staff = load_staff(database)
        keys = issue_keys(database, staff)
        calls = plan_calls(staff)
        load_before = f"{os.getloadavg()[0]:.1f}"
        with tally_server(database, workdir) as (port, pid):
            generated.statistics = await_statistics(database, args.settle)
            api = Api(port)
            quotas = create_quotas(api, keys, staff)
            say(f"[{backend}] measuring {len(calls)} calls × {args.repeat}", err=True)
            timings = measure(api, keys, calls, args.repeat, lambda: CpuClock(database, pid))
            api.connection.close()
        result = SizeResult(generated, quotas, timings)
        result.load = f"load average {load_before} before, {os.getloadavg()[0]:.1f} after"
        before = {}
        if smaller is not None and smaller.activities < result.activities:
            before = {t.name: t for t in smaller.timings}
        over = [
            (timing.cpu_ms, call, timing)
            for call, timing in zip(calls, timings, strict=True)
            if timing.available
            and (timing.ms(0.95) > TARGET_P95_MS or _grew(before.get(call.name), timing))
        ]
        over.sort(key=lambda o: -o[0])
        for _, call, timing in over[: args.explain]:
            say(f"  explaining {call.name}", err=True)
            result.explained.append(explain(database, keys, call, timing.path))
    return result


def _grew(before: Timing | None, after: Timing) -> bool:
    """More than the target ratio from a smaller size to this one (p95)."""
    if before is None or not before.available:
        return False
    return after.ms(0.95) > TARGET_RATIO * before.ms(0.95)


# -- report ---------------------------------------------------------------------------------


def machine() -> str:
    return f"{os.cpu_count()} vCPU, {platform.python_implementation()} {platform.python_version()}"


def report(results: list[SizeResult], baseline: list[SizeResult], repeat: int) -> None:
    for result in results:
        g = result.generated
        rows = ", ".join(f"{t} {n:,}" for t, n in g.rows.items())
        say()
        say(
            f"## {g.backend}, {result.activities:,} activities, {g.rows.get('deals', 0):,} deals "
            f"({machine()}; {result.load})"
        )
        say()
        say(f"Rows: {rows}. Database {g.database_mb:,.0f} MB. Rollups filled by {g.rollups_by}")
        if g.rollups_check:
            say(f"Rollups check: {g.rollups_check}.")
        by = "the bench ran VACUUM (ANALYZE): --vacuum" if g.vacuumed else "the bench ran none"
        say(f"Planner: {g.statistics} ({by}).")
        missing = [m for m, status in result.quotas.items() if status not in (201, 409)]
        say(
            "Quotas on the team: "
            + ("all 13 metrics" if not missing else f"not available for {', '.join(missing)}")
            + "."
        )
        if g.steps:
            say()
            say("| generation step | seconds |")
            say("|---|---:|")
            for step, seconds in g.steps.items():
                say(f"| {step} | {seconds:,.1f} |")
        say()
        say(
            "| call | caller | status | items | p50 ms | p95 ms | max ms | CPU ms "
            f"| p95 ≤ {TARGET_P95_MS:.0f} ms |"
        )
        say("|---|---|---:|---:|---:|---:|---:|---:|---|")
        for t in result.timings:
            verdict = ("yes" if t.ms(0.95) <= TARGET_P95_MS else "**NO**") if t.available else "-"
            status = f"{t.status}" + "".join(f", {n}" for n in sorted(set(t.other_statuses)))
            say(
                f"| {t.name} | {t.caller} | {status} | {t.items} | {t.ms(0.5):.1f} "
                f"| {t.ms(0.95):.1f} | {t.ms(1.0):.1f} | {t.cpu_ms:.1f} | {verdict} |"
            )
        say()
        say(
            f"Wall times over {repeat} rounds, after one warm-up round; CPU ms: the mean CPU "
            "the server process and its PostgreSQL backends spent per call."
        )
    sizes = baseline + results
    if len(sizes) >= 2:
        small, large = (
            min(sizes, key=lambda r: r.activities),
            max(sizes, key=lambda r: r.activities),
        )
        say()
        say(
            f"## p95 from {small.activities:,} to {large.activities:,} activities "
            f"({small.generated.backend} → {large.generated.backend})"
        )
        say()
        say(
            f"| call | p95 ms at {small.activities:,} | p95 ms at {large.activities:,} | ratio "
            f"| CPU ms at {small.activities:,} | CPU ms at {large.activities:,} | CPU ratio "
            f"| p95 ratio ≤ {TARGET_RATIO:.0f} |"
        )
        say("|---|---:|---:|---:|---:|---:|---:|---|")
        before = {t.name: t for t in small.timings}
        for t in large.timings:
            b = before.get(t.name)
            if b is None or not (t.available and b.available):
                say(f"| {t.name} | - | - | - | - | - | - | - |")
                continue
            ratio = t.ms(0.95) / b.ms(0.95)
            cpu = f"{t.cpu_ms / b.cpu_ms:.2f}" if b.cpu_ms else "-"
            verdict = "yes" if ratio <= TARGET_RATIO else "**NO**"
            say(
                f"| {t.name} | {b.ms(0.95):.1f} | {t.ms(0.95):.1f} | {ratio:.2f} "
                f"| {b.cpu_ms:.1f} | {t.cpu_ms:.1f} | {cpu} | {verdict} |"
            )
    for result in results:
        for text_ in result.explained:
            say()
            say(text_)


def to_json(result: SizeResult) -> dict[str, Any]:
    return {
        "generated": asdict(result.generated),
        "quotas": result.quotas,
        "load": result.load,
        "timings": [asdict(t) for t in result.timings],
        "explained": result.explained,
    }


def from_json(data: dict[str, Any]) -> SizeResult:
    return SizeResult(
        Generated(**data["generated"]),
        data["quotas"],
        [Timing(**t) for t in data["timings"]],
        data.get("explained", []),
        data.get("load", ""),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--backend", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument(
        "--activities",
        help="sizes, comma-separated (default: 100000,10000000 on PostgreSQL, "
        "100000,1000000 on SQLite)",
    )
    parser.add_argument("--deals", type=int, help="deals per size (default: activities / 20)")
    parser.add_argument("--repeat", type=int, default=20, help="timed rounds per call")
    parser.add_argument("--seed", type=int, default=20261207)
    parser.add_argument("--keep", action="store_true", help="keep the generated databases")
    parser.add_argument("--reuse", metavar="URL", help="measure a kept database instead")
    parser.add_argument("--json", metavar="OUT", help="write every figure to this file")
    parser.add_argument(
        "--baseline",
        metavar="JSON",
        help="an earlier --json output: its sizes join the 100k → 10M comparison",
    )
    parser.add_argument(
        "--rollups",
        choices=("auto", "tally", "generator"),
        default="auto",
        help="fill the rollups with `tally rollups rebuild` (auto: when Tally has it) or keep "
        "the generator's count",
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=180.0,
        metavar="SECONDS",
        help="before measuring, wait up to this long (until it has) for Tally's scheduler to "
        "analyze the tables, as it does in a fresh installation's first minute (0: measure "
        "at once)",
    )
    parser.add_argument(
        "--vacuum",
        action="store_true",
        help="VACUUM (ANALYZE) the loaded tables before measuring, as autovacuum would on a "
        "server that runs it (not what Tally does; SQLite: ANALYZE)",
    )
    parser.add_argument(
        "--explain",
        type=int,
        default=0,
        metavar="N",
        help="for the N calls over target that cost the most CPU, the plan of their slowest "
        "SQL statement (EXPLAIN ANALYZE on PostgreSQL)",
    )
    args = parser.parse_args(argv)
    if args.reuse:
        sizes = [0]
        args.backend = "sqlite" if args.reuse.startswith("sqlite") else "postgresql"
    elif args.activities:
        sizes = [int(n) for n in args.activities.split(",")]
    else:
        sizes = list(DEFAULT_SIZES[args.backend])
    baseline = []
    if args.baseline:
        baseline = [from_json(d) for d in json.loads(Path(args.baseline).read_text())]
    workdir = Path(tempfile.mkdtemp(prefix="tally-bench-rollups-"))
    results: list[SizeResult] = []
    try:
        for activities in sizes:
            measured = baseline + results
            smaller = min(measured, key=lambda r: r.activities) if measured else None
            results.append(bench_size(args, args.backend, activities, workdir, smaller))
            if args.json:
                Path(args.json).write_text(json.dumps([to_json(r) for r in results], indent=1))
    finally:
        set_database(None)
        shutil.rmtree(workdir, ignore_errors=True)
    report(results, baseline, args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
