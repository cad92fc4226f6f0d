"""Engine, sessions and the transaction rule: whoever opens the session owns the commit."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from operator import itemgetter
from typing import Any, cast

from sqlalchemy import (
    JSON,
    ColumnElement,
    DateTime,
    Engine,
    MetaData,
    Table,
    TypeDecorator,
    any_,
    bindparam,
    create_engine,
    event,
    select,
)
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from app import dbtimeouts
from app.config import settings

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    # checkpoint (and fsync) every ~40 MB of WAL rather than every 4 MB: ingest commits a
    # page at a time, and ten times fewer checkpoints halve what a commit waits for
    cursor.execute("PRAGMA wal_autocheckpoint=10000")
    cursor.close()


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            from pathlib import Path

            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    # No server-side prepared statements: their generic plans ignore the values of the
    # IN (...) look-ups ingest makes, and batched inserts vary in size so they rarely repeat.
    return create_engine(
        url,
        pool_pre_ping=True,
        pool_size=10,
        max_overflow=20,
        connect_args={"prepare_threshold": None},
    )


class Database:
    """One engine and its session factory; swapped wholesale by tests and the CLI."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)
        # each transaction bounded by its role's time limits (PostgreSQL; app/dbtimeouts.py)
        event.listen(self.sessions, "after_begin", dbtimeouts.apply_limits)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"


_database: Database | None = None


def get_database() -> Database:
    global _database
    if _database is None:
        _database = Database(settings.resolved_database_url)
    return _database


def set_database(database: Database | None) -> None:
    global _database
    _database = database


def get_session() -> Iterator[Session]:
    """An API request's one transaction: commit if the route returns, roll back if it raises.
    Bounded by the API's lock and statement timeouts; a request that hits one, or finds no
    free database connection, answers 503 with Retry-After (app/dbtimeouts.py)."""
    try:
        with get_database().sessions.begin() as session:
            session.info[dbtimeouts.ROLE] = dbtimeouts.API
            yield session
    except (DBAPIError, PoolTimeout) as error:
        busy = dbtimeouts.unavailable(error)
        if busy is None:
            raise
        raise busy from error


@contextmanager
def session_scope(role: str = dbtimeouts.JOB) -> Iterator[Session]:
    """The same rule for jobs and the CLI; `role` picks the time limits (dbtimeouts.WORKER for
    the sync worker's transactions)."""
    with get_database().sessions.begin() as session:
        session.info[dbtimeouts.ROLE] = role
        yield session


def commit_without_waiting(session: Session) -> None:
    """Let this transaction's COMMIT return before the server has flushed it to disk
    (PostgreSQL `synchronous_commit = off`, for this transaction only).

    For transactions that hold only what can be fetched again: a page of synced items with
    the cursor that covers it. A server crash may lose the last moment of such commits, and
    with them their cursor, so the next sync fetches those items again; nothing is lost and
    the database stays consistent. SQLite runs WAL with `synchronous=NORMAL`, the same
    trade. Never for credentials (a rotated refresh token must not be lost)."""
    if session.get_bind().dialect.name == "postgresql":
        with _driver(session).cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit = off")


def insert_ignore(
    session: Session,
    table: Any,
    rows: list[dict[str, Any]],
    conflict: list[str],
    *,
    returning: tuple[Any, ...] = (),
    shared: dict[str, Any] | None = None,
) -> list[Any]:
    """INSERT … ON CONFLICT DO NOTHING, batched, on SQLite and PostgreSQL alike; with
    `returning`, the given columns of the rows actually inserted (not of the conflicting ones).
    `shared`: values every row has (the organization, the connection), given once.

    Rows are sorted on the conflict columns so concurrent writers lock in the same order.
    """
    if not rows:
        return []
    shared = shared or {}
    order = [c for c in conflict if c not in shared]
    rows = sorted(rows, key=itemgetter(*order)) if order else rows
    columns, fixed = _batch_columns(table, {**rows[0], **shared})
    fixed.update(shared)
    if session.get_bind().dialect.name == "postgresql":
        return _insert_recordset(session, table, rows, columns, fixed, conflict, returning)
    return _insert_values(session, table, rows, columns, fixed, conflict, returning)


def one_of(session: Session, column: Any, values: Iterable[Any]) -> ColumnElement[bool]:
    """`column IN (values)` for a page's worth of values. On PostgreSQL as `= ANY(array)`: one
    parameter instead of one per value, so the server parses and plans a short statement."""
    values = list(values)
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import ARRAY

        matches: ColumnElement[bool] = column == any_(
            bindparam(None, values, type_=ARRAY(column.type))
        )
        return matches
    return cast("ColumnElement[bool]", column.in_(values))


def lookup(
    session: Session,
    table: Table,
    columns: Sequence[str],
    where: dict[str, Any],
    key: str,
    values: Iterable[Any],
) -> list[tuple[Any, ...]]:
    """`SELECT columns FROM table WHERE <column = value for where> AND key IN values`: the
    look-ups ingest makes on every page, for plain columns (numbers, text, JSON) and a text
    `key`.

    On PostgreSQL straight to the driver, the values as one array literal: SQLAlchemy's
    statement building and psycopg's adaptation of a list of hundreds of values cost three
    times the query itself (bench/README.md). The literal reaches the planner as a constant
    array, so the look-up is an index condition on every column even on a table without
    statistics (a JSON array unpacked by a subquery is not, and made a backfill quadratic)."""
    values = list(values)
    if not values:
        return []
    if session.get_bind().dialect.name != "postgresql":
        query = select(*(table.c[c] for c in columns)).where(
            *(table.c[c] == v for c, v in where.items()), table.c[key].in_(values)
        )
        return [tuple(row) for row in session.connection().execute(query)]
    conditions = [f"{column} = %s" for column in where]
    conditions.append(f"{key} = ANY(CAST(%s AS text[]))")
    sql = f"SELECT {', '.join(columns)} FROM {table.name} WHERE {' AND '.join(conditions)}"
    with _driver(session).cursor() as cursor:
        cursor.execute(sql, (*where.values(), _text_array(values)))
        return list(cursor.fetchall())


def _text_array(values: list[str]) -> str:
    """A PostgreSQL array literal of strings: each element quoted, `\\` and `"` escaped."""
    quoted = ('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values)
    return "{" + ",".join(quoted) + "}"


def _driver(session: Session) -> Any:
    """The DB-API connection under the session's transaction."""
    return session.connection().connection.driver_connection


def _insert_recordset(
    session: Session,
    table: Table,
    rows: list[dict[str, Any]],
    columns: list[Any],
    fixed: dict[str, Any],
    conflict: list[str],
    returning: tuple[Any, ...],
) -> list[Any]:
    """PostgreSQL: one `INSERT … SELECT FROM json_to_recordset(document)` for the whole batch.

    A multi-row VALUES statement (SQLAlchemy's executemany) carries one parameter per cell,
    which the server parses and plans afresh for every page; one JSON document, encoded by
    the C json module and read by the server in one pass, costs about a third of it per row
    (bench/README.md). Values the rows share travel once, as parameters of the SELECT.
    """
    dialect = session.get_bind().dialect
    varying = [c for c in columns if c.name not in fixed]
    # column types that convert values on the way in; aware datetimes (UTCDateTime) need none
    # here: the JSON encoder writes them with their offset, which the server reads exactly
    convert = {
        c.name: c.type.process_bind_param
        for c in varying
        if isinstance(c.type, TypeDecorator)
        and not isinstance(c.type, JSON)
        and not isinstance(c.type.impl, DateTime)
    }
    document = rows
    if convert:  # copies: the caller's rows stay as they were
        document = [
            {**row, **{name: process(row[name], dialect) for name, process in convert.items()}}
            for row in rows
        ]
    selected, parameters = [], []
    for column in columns:
        if column.name in fixed:
            selected.append(f"CAST(%s AS {column.type.compile(dialect=dialect)})")
            parameters.append(_parameter(column, fixed[column.name], dialect))
        else:
            selected.append(column.name)
    definition = ", ".join(f"{c.name} {c.type.compile(dialect=dialect)}" for c in varying)
    sql = (
        f"INSERT INTO {table.name} ({', '.join(c.name for c in columns)}) "
        f"SELECT {', '.join(selected)} "
        f"FROM json_to_recordset(CAST(%s AS json)) AS batch({definition}) "
        f"ON CONFLICT ({', '.join(conflict)}) DO NOTHING"
    )
    if returning:
        sql += " RETURNING " + ", ".join(c.name for c in returning)
    parameters.append(json.dumps(document, default=_json_value))
    with _driver(session).cursor() as cursor:
        cursor.execute(sql, parameters)
        return cursor.fetchall() if returning else []


def _parameter(column: Any, value: Any, dialect: Any) -> Any:
    """A shared value as the driver takes it: JSON as its text, others through their type."""
    if isinstance(column.type, JSON):
        return json.dumps(value)
    if isinstance(column.type, TypeDecorator):
        return column.type.process_bind_param(value, dialect)
    return value


def _batch_columns(table: Table, first: dict[str, Any]) -> tuple[list[Any], dict[str, Any]]:
    """The columns a batch writes (those of its rows, then those with a Python-side default)
    and those defaults, evaluated once for the batch: the rows of a page share a moment."""
    columns = [c for c in table.c if c.name in first]
    defaults: dict[str, Any] = {}
    for column in table.c:
        default: Any = column.default
        if column.name not in first and default is not None and not default.is_sequence:
            defaults[column.name] = default.arg(None) if default.is_callable else default.arg
            columns.append(column)
    return columns, defaults


_SQLITE_VARIABLES = 32_766  # SQLITE_MAX_VARIABLE_NUMBER since 3.32


def _insert_values(
    session: Session,
    table: Table,
    rows: list[dict[str, Any]],
    columns: list[Any],
    fixed: dict[str, Any],
    conflict: list[str],
    returning: tuple[Any, ...],
) -> list[Any]:
    """SQLite: straight to the sqlite3 cursor, each value through its column type's own bind
    processor (the same text SQLAlchemy would store); `executemany` without `returning`, else
    multi-row VALUES statements as large as SQLite takes. SQLAlchemy's per-row parameter
    building cost more than the insert itself."""
    dialect = session.get_bind().dialect
    processors = [c.type.dialect_impl(dialect).bind_processor(dialect) for c in columns]
    constant = {
        c.name: process(fixed[c.name]) if process else fixed[c.name]
        for c, process in zip(columns, processors, strict=True)
        if c.name in fixed
    }
    params = [
        tuple(
            constant[c.name]
            if c.name in constant
            else (process(row[c.name]) if process else row[c.name])
            for c, process in zip(columns, processors, strict=True)
        )
        for row in rows
    ]
    names = ", ".join(c.name for c in columns)
    one = "(" + ", ".join("?" * len(columns)) + ")"
    tail = f" ON CONFLICT ({', '.join(conflict)}) DO NOTHING"
    cursor = _driver(session).cursor()
    if not returning:
        cursor.executemany(f"INSERT INTO {table.name} ({names}) VALUES {one}{tail}", params)
        return []
    tail += " RETURNING " + ", ".join(c.name for c in returning)
    found: list[Any] = []
    size = max(1, _SQLITE_VARIABLES // len(columns))
    for start in range(0, len(params), size):
        chunk = params[start : start + size]
        values = ", ".join([one] * len(chunk))
        flat = [value for row in chunk for value in row]
        cursor.execute(f"INSERT INTO {table.name} ({names}) VALUES {values}{tail}", flat)
        found.extend(cursor.fetchall())
    return found


def _json_value(value: object) -> str:
    if isinstance(value, datetime) and value.tzinfo is None:
        raise ValueError("naive datetime given to a UTC column")
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} cannot be written in a batch")


def upgrade(database: Database) -> None:
    """Apply every migration (`alembic upgrade head`) to this database.

    The migrations ship inside the package, so this works from a checkout and when installed.
    """
    from pathlib import Path

    from alembic import command
    from alembic.config import Config

    import migrations

    config = Config()
    config.set_main_option("script_location", str(Path(migrations.__file__).resolve().parent))
    with database.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
