"""The stored rollups' SQL, called only by app/activities/store.py (which owns the rows they
count and calls this in the same transaction):

- `activity_days`: activities per user, local day of the organization's zone, and type;
- `contact_days`: activity links per user, local day and contact, with `first_at` and
  `last_at`, the earliest and latest `occurred_at` among them, so a contact's first and
  latest interaction is two index probes instead of a read of its whole history;
- `user_contacts`: activity links per user and contact over all time: who may see a contact,
  and where a rep's or a manager's contact search starts.

Increments are written with one upsert per table (all in one statement on PostgreSQL), keys
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
from app.activities.models import Activity, ActivityDay
from app.contacts.models import ActivityContact, ContactDay, UserContact
from app.models import User

ACTIVITIES = cast(Table, Activity.__table__)
LINKS = cast(Table, ActivityContact.__table__)
ACTIVITY_DAYS = cast(Table, ActivityDay.__table__)
CONTACT_DAYS = cast(Table, ContactDay.__table__)
USER_CONTACTS = cast(Table, UserContact.__table__)


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


@dataclass(frozen=True)
class Rollup:
    """A rollup table: its key columns with their PostgreSQL types, and whether its rows
    carry the span of the moments they count (first_at, last_at)."""

    table: Table
    key: tuple[tuple[str, str], ...]
    spans: bool = False


PER_TYPE = Rollup(ACTIVITY_DAYS, (("user_id", "integer"), ("day", "date"), ("type", "text")))
PER_CONTACT_DAY = Rollup(
    CONTACT_DAYS, (("user_id", "integer"), ("day", "date"), ("contact_id", "integer")), True
)
PER_CONTACT = Rollup(USER_CONTACTS, (("user_id", "integer"), ("contact_id", "integer")))

Row = tuple[tuple[Any, ...], int, Any]  # (key, increment, span or None)


def bump(
    session: Session, org_id: int, zone: ZoneInfo, days: Counter[DayKey], engaged: Engaged
) -> None:
    """Add these increments to the rollups, drop the rows they brought to 0 and recount the
    spans of the contact_days rows that lost or moved a link. One upsert per table; on
    PostgreSQL all in one statement (a page's round trips and plans fewer), and the deletes
    with the recount in one more, only when something was removed or moved."""
    is_pg = postgresql(session)
    connection = session.connection()
    dialect = connection.dialect
    day_rows: list[Row] = sorted((k, n, None) for k, n in days.items() if n)
    # a recounted key is upserted even at a net 0: the upsert locks its row before the recount
    contact_keys = sorted(k for k, n in engaged.counts.items() if n or k in engaged.recount)
    contact_rows: list[Row] = [(k, engaged.counts[k], engaged.spans[k]) for k in contact_keys]
    pairs: Counter[tuple[int, int]] = Counter()
    for (user_id, _, contact_id), n in engaged.counts.items():
        pairs[(user_id, contact_id)] += n
    pair_rows: list[Row] = sorted((k, n, None) for k, n in pairs.items() if n)
    tables = ((PER_TYPE, day_rows), (PER_CONTACT_DAY, contact_rows), (PER_CONTACT, pair_rows))
    changes = [(rollup, rows) for rollup, rows in tables if rows]
    statements = [_upsert(rollup, rows, dialect) for rollup, rows in changes]
    if is_pg and len(statements) > 1:  # one statement, the first ones as CTEs
        *ctes, (last_sql, _) = statements
        prefix = ", ".join(f"x{i} AS ({sql})" for i, (sql, _) in enumerate(ctes))
        arguments = tuple(a for _, args in statements for a in args)
        statements = [(f"WITH {prefix} {last_sql}", arguments)]
    for sql, arguments in statements:
        connection.exec_driver_sql(sql, arguments if is_pg else list(arguments))
    falling = [
        (rollup, [tuple(map(_plain, key)) for key, n, _ in rows if n <= 0])
        for rollup, rows in changes
    ]
    recount = sorted(engaged.recount)
    if is_pg:
        _settle_postgresql(session, falling, recount, zone)
        return
    for rollup, keys in falling:
        if keys:
            match = " AND ".join(f"{column} = ?" for column, _ in rollup.key)
            connection.exec_driver_sql(
                f"DELETE FROM {rollup.table.name} WHERE {match} AND count <= 0", keys
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


def _plain(value: Any) -> Any:
    """A key's value as SQLite and the JSON documents take it: dates as ISO text."""
    return value.isoformat() if isinstance(value, date) else value


def _record(rollup: Rollup, keys: list[tuple[Any, ...]]) -> tuple[list[dict[str, Any]], str, str]:
    """The JSON document's items for these keys (short names: the documents are parsed per
    page), the recordset's column list, and the condition matching its rows `r` to the
    table's `t`."""
    short = [f"k{i}" for i in range(len(rollup.key))]
    items = [dict(zip(short, key, strict=True)) for key in keys]
    record = ", ".join(f"{s} {kind}" for s, (_, kind) in zip(short, rollup.key, strict=True))
    match = " AND ".join(
        f"t.{column} = r.{s}" for s, (column, _) in zip(short, rollup.key, strict=True)
    )
    return items, record, match


def _settle_postgresql(
    session: Session,
    falling: list[tuple[Rollup, list[tuple[Any, ...]]]],
    recount: list[ContactKey],
    zone: ZoneInfo,
) -> None:
    """The deletes of rows at 0 and the recount of spans, in one statement: they touch
    different rows (a row at 0 has no links left to recount)."""
    parts: list[tuple[str, tuple[Any, ...]]] = []
    for rollup, keys in falling:
        if keys:
            items, record, match = _record(rollup, keys)
            parts.append(
                (
                    f"DELETE FROM {rollup.table.name} t USING json_to_recordset("
                    f"CAST(%s AS json)) AS r({record}) WHERE {match} AND t.count <= 0",
                    (json.dumps(items),),
                )
            )
    if recount:
        document = json.dumps(
            [
                {"u": u, "d": d.isoformat(), "k": c, "lo": lo.isoformat(), "hi": hi.isoformat()}
                for u, d, c in recount
                for lo, hi in [_bounds(d, zone)]
            ]
        )
        parts.append(
            (
                "UPDATE contact_days t SET first_at = s.f, last_at = s.l FROM (SELECT r.u, r.d, "
                "r.k, min(a.occurred_at) AS f, max(a.occurred_at) AS l FROM json_to_recordset("
                "CAST(%s AS json)) AS r(u integer, d date, k integer, lo timestamptz, "
                "hi timestamptz) JOIN activities a ON a.user_id = r.u AND a.occurred_at >= r.lo "
                "AND a.occurred_at < r.hi JOIN activity_contacts l ON l.activity_id = a.id AND "
                "l.contact_id = r.k GROUP BY r.u, r.d, r.k) s WHERE t.user_id = s.u AND "
                "t.day = s.d AND t.contact_id = s.k",
                (document,),
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


def _upsert(rollup: Rollup, rows: list[Row], dialect: Dialect) -> tuple[str, tuple[Any, ...]]:
    """The statement adding these counts (and widening the spans, where the table keeps
    them) to the table (SQLite: the statement and its rows, for executemany)."""
    name = rollup.table.name
    names = [column for column, _ in rollup.key]
    key = ", ".join(names)
    add = f"ON CONFLICT ({key}) DO UPDATE SET count = {name}.count + excluded.count"
    sqlite = dialect.name != "postgresql"
    if rollup.spans:
        least, greatest = ("min", "max") if sqlite else ("LEAST", "GREATEST")
        add += (
            f", first_at = {least}({name}.first_at, excluded.first_at), "
            f"last_at = {greatest}({name}.last_at, excluded.last_at)"
        )
    columns = f"{key}, count" + (", first_at, last_at" if rollup.spans else "")
    if sqlite:
        marks = ", ".join("?" * (len(names) + (3 if rollup.spans else 1)))
        sql = f"INSERT INTO {name} ({columns}) VALUES ({marks}) {add}"
        if not rollup.spans:
            return sql, tuple((*map(_plain, k), n) for k, n, _ in rows)
        stamp = _stamp(dialect)
        return sql, tuple((*map(_plain, k), n, stamp(f), stamp(t)) for k, n, (f, t) in rows)
    items, record, _ = _record(rollup, [tuple(map(_plain, k)) for k, _, _ in rows])
    for item, (_, n, span) in zip(items, rows, strict=True):
        item["n"] = n
        if span is not None:
            item["f"], item["l"] = span[0].isoformat(), span[1].isoformat()
    record += ", n integer" + (", f timestamptz, l timestamptz" if rollup.spans else "")
    picked = ", ".join(f"k{i}" for i in range(len(names))) + ", n"
    picked += ", f, l" if rollup.spans else ""
    sql = (
        f"INSERT INTO {name} ({columns}) SELECT {picked} "
        f"FROM json_to_recordset(CAST(%s AS json)) AS r({record}) {add}"
    )
    return sql, (json.dumps(items),)


@dataclass(frozen=True)
class Rebuilt:
    activity_days: int
    contact_days: int
    user_contacts: int


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
    for table in (ACTIVITY_DAYS, CONTACT_DAYS, USER_CONTACTS):  # the primary keys' first column
        session.execute(table.delete().where(table.c.user_id.in_(users)))
    a, link = ACTIVITIES.c, LINKS.c
    day = _day_expression(session, org_id, zone)
    if day is None:  # no activities
        return Rebuilt(0, 0, 0)
    # Written in key order, so that a user's days lie together on disk: a team's quarter of
    # contact_days then reads ~225 heap pages at 10M activities, where the rows in the order
    # a hash aggregate left them read 11,105 (`contacts_engaged` for a team by week: 33 ms
    # against 77-126 ms)
    per_type = (
        select(a.user_id, day.label("day"), a.type, func.count().label("count"))
        .where(a.org_id == org_id)
        .group_by(a.user_id, day, a.type)
        .order_by(a.user_id, day, a.type)
    )
    per_contact_day = (
        select(a.user_id, day.label("day"), link.contact_id, func.count())
        .add_columns(func.min(a.occurred_at), func.max(a.occurred_at))
        .join(LINKS, link.activity_id == a.id)
        .where(a.org_id == org_id)
        .group_by(a.user_id, day, link.contact_id)
        .order_by(a.user_id, day, link.contact_id)
    )
    # from the contact-days just counted: a third of the rows the links are
    d = CONTACT_DAYS.c
    per_contact = (
        select(d.user_id, d.contact_id, func.sum(d.count))
        .where(d.user_id.in_(users))
        .group_by(d.user_id, d.contact_id)
        .order_by(d.user_id, d.contact_id)  # stored in key order: a user's contacts together
    )
    # SQLAlchemy keeps an INSERT's row count only when asked (PostgreSQL answered -1)
    connection = session.connection().execution_options(preserve_rowcount=True)
    days = connection.execute(
        ACTIVITY_DAYS.insert().from_select(["user_id", "day", "type", "count"], per_type)
    ).rowcount
    columns = ["user_id", "day", "contact_id", "count", "first_at", "last_at"]
    contacts = connection.execute(
        CONTACT_DAYS.insert().from_select(columns, per_contact_day)
    ).rowcount
    pairs = connection.execute(
        USER_CONTACTS.insert().from_select(["user_id", "contact_id", "count"], per_contact)
    ).rowcount
    return Rebuilt(days, contacts, pairs)


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
