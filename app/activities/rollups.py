"""The stored rollups' SQL, called only by app/activities/store.py (which owns the rows they
count and calls this in the same transaction):

- `activity_days`: activities per user, local day of the organization's zone, and type;
- `contact_days`: activity links per user, local day and contact, with `first_at` and
  `last_at`, the earliest and latest `occurred_at` among them, so a contact's first and
  latest interaction is two index probes instead of a read of its whole history.

Increments are written with one upsert per table (both in one statement on PostgreSQL), keys
sorted so concurrent writers lock rows in the same order. Adding links only widens a row's
span (least/greatest); removing or moving a link may narrow it, so those rows' spans are
recounted from the raw rows of that user, local day and contact, after the upsert locked them
(a later statement: under READ COMMITTED it sees whatever a concurrent writer committed).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Date, Table, case, func, select
from sqlalchemy import cast as sql_cast
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session

from app.activities.days import ContactKey, DayKey, offsets
from app.models import Activity, ActivityContact, ActivityDay, ContactDay, User

ACTIVITIES = cast(Table, Activity.__table__)
LINKS = cast(Table, ActivityContact.__table__)
ACTIVITY_DAYS = cast(Table, ActivityDay.__table__)
CONTACT_DAYS = cast(Table, ContactDay.__table__)


@dataclass
class Engaged:
    """contact_days changes: links added (+1) or removed (-1) per key, the span of the moments
    they touched, and the keys that lost a link (their span is recounted)."""

    counts: Counter[ContactKey] = field(default_factory=Counter)
    spans: dict[ContactKey, tuple[datetime, datetime]] = field(default_factory=dict)
    recount: set[ContactKey] = field(default_factory=set)

    def touch(self, key: ContactKey, moment: datetime, sign: int) -> None:
        self.counts[key] += sign
        span = self.spans.get(key)
        if span is None:
            self.spans[key] = (moment, moment)
        elif moment < span[0] or moment > span[1]:
            self.spans[key] = (min(span[0], moment), max(span[1], moment))
        if sign < 0:
            self.recount.add(key)

    def moved(self, key: ContactKey, old: datetime, new: datetime) -> None:
        """A linked activity moved within the key's day: the count stays, the span may not."""
        self.touch(key, old, 0)
        self.touch(key, new, 0)
        self.recount.add(key)


def postgresql(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def bump(
    session: Session, org_id: int, zone: ZoneInfo, days: Counter[DayKey], engaged: Engaged
) -> None:
    """Add these increments to the rollups, drop the rows they brought to 0 and recount the
    spans of the contact_days rows that lost or moved a link. One upsert per table; on
    PostgreSQL both in one statement (a page's round trip and plan fewer), and the deletes
    with the recount in one more, only when something was removed or moved."""
    is_pg = postgresql(session)
    connection = session.connection()
    dialect = connection.dialect
    day_rows: list[Any] = sorted((k, n, None) for k, n in days.items() if n)
    # a recounted key is upserted even at a net 0: the upsert locks its row before the recount
    contact_keys = sorted(k for k, n in engaged.counts.items() if n or k in engaged.recount)
    contact_rows: list[Any] = [(k, engaged.counts[k], engaged.spans[k]) for k in contact_keys]
    tables = ((ACTIVITY_DAYS, "type", day_rows), (CONTACT_DAYS, "contact_id", contact_rows))
    changes: list[tuple[Table, str, list[Any]]] = [c for c in tables if c[2]]
    statements = [_upsert(table, last, org_id, rows, dialect) for table, last, rows in changes]
    if is_pg and len(statements) == 2:  # both tables: one statement, the first a CTE
        (first, first_args), (second, second_args) = statements
        statements = [(f"WITH days AS ({first}) {second}", (*first_args, *second_args))]
    for sql, arguments in statements:
        connection.exec_driver_sql(sql, arguments if is_pg else list(arguments))
    falling = [
        (table, last, [(u, d.isoformat(), k) for (u, d, k), n, _ in rows if n <= 0])
        for table, last, rows in changes
    ]
    recount = sorted(engaged.recount)
    if is_pg:
        _settle_postgresql(session, falling, recount, zone)
        return
    for table, last, keys in falling:
        if keys:
            connection.exec_driver_sql(
                f"DELETE FROM {table.name} WHERE user_id = ? AND day = ? AND {last} = ? "
                "AND count <= 0",
                keys,
            )
    if recount:
        stamp = _stamp(dialect)
        connection.exec_driver_sql(
            "UPDATE contact_days SET (first_at, last_at) = (SELECT min(a.occurred_at), "
            "max(a.occurred_at) FROM activities a JOIN activity_contacts l ON l.activity_id = "
            "a.id AND l.contact_id = ?3 WHERE a.user_id = ?1 AND a.occurred_at >= ?4 AND "
            "a.occurred_at < ?5) WHERE user_id = ?1 AND day = ?2 AND contact_id = ?3",
            [
                (u, d.isoformat(), c, stamp(lo), stamp(hi))
                for u, d, c in recount
                for lo, hi in [_bounds(d, zone)]
            ],
        )


def _settle_postgresql(
    session: Session,
    falling: list[tuple[Table, str, list[tuple[int, str, Any]]]],
    recount: list[ContactKey],
    zone: ZoneInfo,
) -> None:
    """The deletes of rows at 0 and the recount of spans, in one statement: they touch
    different rows (a row at 0 has no links left to recount)."""
    parts: list[tuple[str, tuple[Any, ...]]] = []
    for table, last, keys in falling:
        if keys:
            kind = "text" if last == "type" else "integer"
            parts.append(
                (
                    f"DELETE FROM {table.name} t USING json_to_recordset(CAST(%s AS json)) "
                    f"AS r(u integer, d date, k {kind}) WHERE t.user_id = r.u AND t.day = r.d "
                    f"AND t.{last} = r.k AND t.count <= 0",
                    (json.dumps([{"u": u, "d": d, "k": k} for u, d, k in keys]),),
                )
            )
    if recount:
        document = [
            {"u": u, "d": d.isoformat(), "k": c, "lo": lo.isoformat(), "hi": hi.isoformat()}
            for u, d, c in recount
            for lo, hi in [_bounds(d, zone)]
        ]
        parts.append(
            (
                "UPDATE contact_days t SET first_at = s.f, last_at = s.l FROM (SELECT r.u, r.d, "
                "r.k, min(a.occurred_at) AS f, max(a.occurred_at) AS l FROM json_to_recordset("
                "CAST(%s AS json)) AS r(u integer, d date, k integer, lo timestamptz, "
                "hi timestamptz) JOIN activities a ON a.user_id = r.u AND a.occurred_at >= r.lo "
                "AND a.occurred_at < r.hi JOIN activity_contacts l ON l.activity_id = a.id AND "
                "l.contact_id = r.k GROUP BY r.u, r.d, r.k) s WHERE t.user_id = s.u AND "
                "t.day = s.d AND t.contact_id = s.k",
                (json.dumps(document),),
            )
        )
    if not parts:
        return
    *ctes, (last_sql, last_args) = parts
    prefix = ", ".join(f"x{i} AS ({sql})" for i, (sql, _) in enumerate(ctes))
    arguments = tuple(a for _, args in ctes for a in args) + last_args
    sql = f"WITH {prefix} {last_sql}" if ctes else last_sql
    session.connection().exec_driver_sql(sql, arguments)


def _bounds(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The UTC instants a local day of the zone spans: [its first instant, the next day's)."""
    start = datetime.combine(day, time(), zone).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(), zone).astimezone(UTC)
    return start, end


def _stamp(dialect: Dialect) -> Any:
    """SQLite: a UTC instant as the column type stores it (text compared as text)."""
    process = ACTIVITIES.c.occurred_at.type.bind_processor(dialect)
    assert process is not None
    return process


def _upsert(
    table: Table, last: str, org_id: int, rows: list[tuple[Any, int, Any]], dialect: Dialect
) -> tuple[str, tuple[Any, ...]]:
    """The statement adding these counts (and for contact_days, widening the spans) to the
    table (SQLite: for executemany)."""
    key = f"user_id, day, {last}"
    name = table.name
    add = f"ON CONFLICT ({key}) DO UPDATE SET count = {name}.count + excluded.count"
    spans = table is CONTACT_DAYS
    sqlite = dialect.name != "postgresql"
    if spans:
        least, greatest = ("min", "max") if sqlite else ("LEAST", "GREATEST")
        add += (
            f", first_at = {least}({name}.first_at, excluded.first_at), "
            f"last_at = {greatest}({name}.last_at, excluded.last_at)"
        )
    columns = f"org_id, {key}, count" + (", first_at, last_at" if spans else "")
    if sqlite:
        marks = ", ".join("?" * (7 if spans else 5))
        sql = f"INSERT INTO {name} ({columns}) VALUES ({marks}) {add}"
        if not spans:
            return sql, tuple((org_id, u, d.isoformat(), k, n) for (u, d, k), n, _ in rows)
        stamp = _stamp(dialect)
        return sql, tuple(
            (org_id, u, d.isoformat(), k, n, stamp(f), stamp(t)) for (u, d, k), n, (f, t) in rows
        )
    kind = "text" if last == "type" else "integer"
    if spans:
        document = [
            {"u": u, "d": d.isoformat(), "k": k, "n": n, "f": f.isoformat(), "l": t.isoformat()}
            for (u, d, k), n, (f, t) in rows
        ]
        record = f"u integer, d date, k {kind}, n integer, f timestamptz, l timestamptz"
        picked = "u, d, k, n, f, l"
    else:
        document = [{"u": u, "d": d.isoformat(), "k": k, "n": n} for (u, d, k), n, _ in rows]
        record, picked = f"u integer, d date, k {kind}, n integer", "u, d, k, n"
    sql = (
        f"INSERT INTO {name} ({columns}) SELECT %s, {picked} "
        f"FROM json_to_recordset(CAST(%s AS json)) AS r({record}) {add}"
    )
    return sql, (org_id, json.dumps(document))


@dataclass(frozen=True)
class Rebuilt:
    activity_days: int
    contact_days: int


def rebuild(session: Session, org_id: int, zone: ZoneInfo) -> Rebuilt:
    """Recount the organization's rollups from its activities and links in `zone` (the store
    holds the organization's row locked).

    Set-based: PostgreSQL finds local days with AT TIME ZONE; SQLite has no zones, so each
    UTC time is shifted by the offset of its span (a CASE over the zone's offset changes
    between the first and last activity), which measured faster than a Python function
    called per row (docs/architecture.md)."""
    if postgresql(session):
        return _recount(session, org_id, zone)
    # SQLite's default 2 MiB page cache spills the rollups' indexes to disk at every row:
    # deleting 300,000 contact_days rows took 9.5 s with it, 3.5 s with 256 MiB
    connection = session.connection()
    default = int(connection.exec_driver_sql("PRAGMA cache_size").scalar() or -2000)
    connection.exec_driver_sql("PRAGMA cache_size = -262144")
    try:
        return _recount(session, org_id, zone)
    finally:
        connection.exec_driver_sql(f"PRAGMA cache_size = {default}")


def _recount(session: Session, org_id: int, zone: ZoneInfo) -> Rebuilt:
    users = select(User.id).where(User.org_id == org_id).scalar_subquery()
    for table in (ACTIVITY_DAYS, CONTACT_DAYS):  # by user: the primary key's first column
        session.execute(table.delete().where(table.c.user_id.in_(users)))
    a, link = ACTIVITIES.c, LINKS.c
    day = _day_expression(session, org_id, zone)
    if day is None:  # no activities
        return Rebuilt(0, 0)
    per_type = (
        select(a.org_id, a.user_id, day.label("day"), a.type, func.count().label("count"))
        .where(a.org_id == org_id)
        .group_by(a.org_id, a.user_id, day, a.type)
    )
    per_contact = (
        select(a.org_id, a.user_id, day.label("day"), link.contact_id, func.count())
        .add_columns(func.min(a.occurred_at), func.max(a.occurred_at))
        .join(LINKS, link.activity_id == a.id)
        .where(a.org_id == org_id)
        .group_by(a.org_id, a.user_id, day, link.contact_id)
    )
    # SQLAlchemy keeps an INSERT's row count only when asked (PostgreSQL answered -1)
    connection = session.connection().execution_options(preserve_rowcount=True)
    days = connection.execute(
        ACTIVITY_DAYS.insert().from_select(["org_id", "user_id", "day", "type", "count"], per_type)
    ).rowcount
    columns = ["org_id", "user_id", "day", "contact_id", "count", "first_at", "last_at"]
    contacts = connection.execute(CONTACT_DAYS.insert().from_select(columns, per_contact)).rowcount
    return Rebuilt(days, contacts)


def _day_expression(session: Session, org_id: int, zone: ZoneInfo) -> Any:
    moment = ACTIVITIES.c.occurred_at
    if postgresql(session):
        return sql_cast(func.timezone(zone.key, moment), Date)
    first, last = session.execute(
        select(func.min(moment), func.max(moment)).where(ACTIVITIES.c.org_id == org_id)
    ).one()
    if first is None:
        return None
    spans = offsets(zone, first, last)
    shift = [f"{offset:+d} seconds" for _, offset in spans]
    if len(spans) == 1:
        return func.date(moment, shift[0])
    # newest span first: recent activity, the bulk of it, is decided by the first tests
    whens = [(moment >= start, shift[i]) for i, (start, _) in enumerate(spans) if i][::-1]
    return func.date(moment, case(*whens, else_=shift[0]))
