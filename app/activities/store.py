"""The one owner of activity rows: every insert, change and delete of `activities` and
`activity_contacts` goes through here (a test reads the code to hold every other module to
it), and so do the stored rollups that count them, in the same transaction:

- `activity_days`: activities per user, local day of the organization's zone, and type;
- `contact_days`: activity links per user, local day and contact (the `contacts_engaged`
  distinct count, and the (user, contact) relation that decides which contacts a rep sees).

Only rows really written count: an insert that meets a duplicate, or a delete that another
transaction got to first, changes no rollup. Rows with a count of 0 are deleted. Each
function returns what it changed, the one place later features (deal timelines, webhooks)
hear about activities.

Concurrency (PostgreSQL): every write reads the zone under a key-share lock of the
organization's row, and `rebuild` (alone or after a change of zone) locks that row for
update first: it waits for the writers in flight, recounts after they committed, and the
next writers wait for it, so no rollup is left counted in a zone the organization no longer
has. Rollup keys are upserted in sorted order, so concurrent pages cannot deadlock on them.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, cast
from zoneinfo import ZoneInfo

from sqlalchemy import Date, Table, case, func, select
from sqlalchemy import cast as sql_cast
from sqlalchemy.orm import Session

from app.activities.days import ContactKey, DayKey, day_counts, local_day, offsets
from app.db import insert_ignore, lookup, one_of
from app.models import Activity, ActivityContact, ActivityDay, ContactDay, User

ACTIVITIES = cast(Table, Activity.__table__)
LINKS = cast(Table, ActivityContact.__table__)
ACTIVITY_DAYS = cast(Table, ActivityDay.__table__)
CONTACT_DAYS = cast(Table, ContactDay.__table__)
IDENTITY = ["org_id", "source_key", "user_id", "type"]
Ident = tuple[str, int, str]  # (source key, user id, activity type): one activity
CHUNK = 5_000  # ids per statement: well under SQLite's 32,766 variables


@dataclass
class Added:
    ids: dict[Ident, int] = field(default_factory=dict)  # every activity named, old or new
    inserted: list[int] = field(default_factory=list)  # the activities inserted now
    links: int = 0  # links inserted now


@dataclass(frozen=True)
class Edit:
    """Move a stored activity to `new_occurred_at` (and retitle it, unless `subject` is
    None); applied only if it still has `occurred_at`, the time it was read with."""

    id: int
    user_id: int
    type: str
    occurred_at: datetime
    new_occurred_at: datetime
    subject: str | None = None


def _zone(session: Session, org_id: int, *, exclusive: bool = False) -> ZoneInfo:
    """The organization's zone. On PostgreSQL under FOR KEY SHARE, the lock each
    foreign-key check of the page's rows takes on the organization anyway (no extra write),
    so writers run side by side; a rebuild's FOR UPDATE waits for them to commit and makes
    the next ones wait for it. Straight to the driver: the ORM's select cost 4 ms a page."""
    connection = session.connection()
    if not _postgresql(session):
        sql = "SELECT timezone FROM organizations WHERE id = ?"
    else:
        lock = "UPDATE" if exclusive else "KEY SHARE"
        sql = f"SELECT timezone FROM organizations WHERE id = %s FOR {lock}"
    return ZoneInfo(connection.exec_driver_sql(sql, (org_id,)).scalar_one())


def _postgresql(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def add(
    session: Session,
    org_id: int,
    rows: Sequence[dict[str, Any]],
    links: Mapping[Ident, Iterable[int]],
    *,
    shared: dict[str, Any] | None = None,
    known: Mapping[Ident, int] | None = None,
) -> Added:
    """Insert activities (those whose identity is taken are left as they are) and link
    activities to contacts: the new ones, those whose ids `known` gives, or others found by
    identity.

    `rows`: user_id, type, occurred_at, source_key, subject, and the source columns unless
    `shared` gives them for all."""
    if not rows and not links:
        return Added()
    zone = _zone(session, org_id)
    c = ACTIVITIES.c
    inserted = insert_ignore(
        session,
        ACTIVITIES,
        list(rows),
        IDENTITY,
        returning=(c.source_key, c.user_id, c.type, c.id),
        shared={"org_id": org_id, **(shared or {})},
    )
    moment = {(r["source_key"], r["user_id"], r["type"]): r["occurred_at"] for r in rows}
    result = Added()
    days: Counter[DayKey] = Counter()
    placed: dict[int, tuple[int, date]] = {}  # activity id -> (user, local day)
    for key, user_id, kind, pk in inserted:
        day = local_day(moment[(key, user_id, kind)], zone)
        days[(user_id, day, kind)] += 1
        placed[pk] = (user_id, day)
        result.ids[(key, user_id, kind)] = pk
        result.inserted.append(pk)
    result.ids.update({i: pk for i, pk in (known or {}).items() if i not in result.ids})
    unknown = {i for i in (*moment, *links) if i not in result.ids}
    if unknown:
        result.ids.update(_by_identity(session, org_id, {key for key, _, _ in unknown}))
    wanted = {
        (result.ids[ident], contact)
        for ident, contacts in links.items()
        if ident in result.ids
        for contact in contacts
    }
    new_links = insert_ignore(
        session,
        LINKS,
        [{"activity_id": a, "contact_id": c} for a, c in wanted],
        ["activity_id", "contact_id"],
        returning=(LINKS.c.activity_id, LINKS.c.contact_id),
    )
    # Linked to an activity stored before: its day is read now, after the link's foreign-key
    # check locked it, so a concurrent move (which locks it first) counted this link or
    # waits for it (update)
    older = sorted({a for a, _ in new_links if a not in placed})
    for start in range(0, len(older), CHUNK):
        query = select(c.id, c.user_id, c.occurred_at).where(
            one_of(session, c.id, older[start : start + CHUNK])
        )
        for pk, user_id, when in session.execute(query):
            placed[pk] = (user_id, local_day(when, zone))
    engaged: Counter[ContactKey] = Counter()
    for activity_id, contact_id in new_links:
        user_id, day = placed[activity_id]
        engaged[(user_id, day, contact_id)] += 1
    result.links = len(new_links)
    _bump(session, org_id, days, engaged)
    return result


def _by_identity(session: Session, org_id: int, keys: set[str]) -> dict[Ident, int]:
    columns = ["source_key", "user_id", "type", "id"]
    rows = lookup(session, ACTIVITIES, columns, {"org_id": org_id}, "source_key", keys)
    return {(key, user, kind): pk for key, user, kind, pk in rows}


def stored(session: Session, org_id: int, keys: Iterable[str], types: Iterable[str]) -> list[Any]:
    """The stored activities of these source keys and types: rows of id, source_key,
    user_id, type, occurred_at, subject (what `update` and `delete` are given)."""
    keys = sorted(set(keys))
    if not keys:
        return []
    c = ACTIVITIES.c
    query = select(c.id, c.source_key, c.user_id, c.type, c.occurred_at, c.subject).where(
        c.org_id == org_id, one_of(session, c.source_key, keys), c.type.in_(list(types))
    )
    return list(session.execute(query.order_by(c.id)))


def update(session: Session, org_id: int, edits: Iterable[Edit]) -> list[int]:
    """Apply edits (in id order); the ids of the activities that changed."""
    edits = sorted(edits, key=lambda e: e.id)
    if not edits:
        return []
    zone = _zone(session, org_id)
    c = ACTIVITIES.c
    if _postgresql(session):  # a link being added to one of them commits first (see add)
        ids = [edit.id for edit in edits]
        session.execute(
            select(c.id).where(one_of(session, c.id, ids)).order_by(c.id).with_for_update()
        )
    days: Counter[DayKey] = Counter()
    moved: dict[int, tuple[int, date, date]] = {}  # id -> (user, old day, new day)
    changed: list[int] = []
    for edit in edits:
        values: dict[str, Any] = {"occurred_at": edit.new_occurred_at}
        if edit.subject is not None:
            values["subject"] = edit.subject
        done = session.execute(
            ACTIVITIES.update()
            .where(c.id == edit.id, c.org_id == org_id, c.occurred_at == edit.occurred_at)
            .values(**values)
            .returning(c.id)
        ).first()
        if done is None:  # moved or deleted meanwhile by another writer
            continue
        changed.append(edit.id)
        old, new = local_day(edit.occurred_at, zone), local_day(edit.new_occurred_at, zone)
        if old != new:
            days[(edit.user_id, old, edit.type)] -= 1
            days[(edit.user_id, new, edit.type)] += 1
            moved[edit.id] = (edit.user_id, old, new)
    engaged: Counter[ContactKey] = Counter()
    for activity_id, contact_id in _links_of(session, list(moved)):
        user_id, old, new = moved[activity_id]
        engaged[(user_id, old, contact_id)] -= 1
        engaged[(user_id, new, contact_id)] += 1
    _bump(session, org_id, days, engaged)
    return changed


def _links_of(session: Session, activity_ids: list[int]) -> list[tuple[int, int]]:
    found: list[tuple[int, int]] = []
    for start in range(0, len(activity_ids), CHUNK):
        chunk = activity_ids[start : start + CHUNK]
        query = select(LINKS.c.activity_id, LINKS.c.contact_id).where(
            one_of(session, LINKS.c.activity_id, chunk)
        )
        found.extend((a, c) for a, c in session.execute(query))
    return found


def delete(session: Session, org_id: int, ids: Iterable[int]) -> list[int]:
    """Delete activities and their links; the ids of those this transaction deleted."""
    wanted = sorted(set(ids))
    if not wanted:
        return []
    zone = _zone(session, org_id)
    c = ACTIVITIES.c
    gone: list[tuple[int, int, str, datetime]] = []
    engaged: Counter[ContactKey] = Counter()
    for start in range(0, len(wanted), CHUNK):
        query = (
            select(c.id, c.user_id, c.type, c.occurred_at)
            .where(c.org_id == org_id, one_of(session, c.id, wanted[start : start + CHUNK]))
            .order_by(c.id)
        )
        if _postgresql(session):  # held until commit: nobody links to them meanwhile
            query = query.with_for_update()
        rows = [(pk, user, kind, when) for pk, user, kind, when in session.execute(query)]
        if not rows:
            continue
        chunk = [pk for pk, _, _, _ in rows]
        placed = {pk: (user, local_day(when, zone)) for pk, user, _, when in rows}
        unlinked = session.execute(
            LINKS.delete()
            .where(one_of(session, LINKS.c.activity_id, chunk))
            .returning(LINKS.c.activity_id, LINKS.c.contact_id)
        )
        for activity_id, contact_id in unlinked:
            user_id, day = placed[activity_id]
            engaged[(user_id, day, contact_id)] -= 1
        session.execute(ACTIVITIES.delete().where(one_of(session, c.id, chunk)))
        gone.extend(rows)
    days = day_counts(((user, kind, when) for _, user, kind, when in gone), zone, -1)
    _bump(session, org_id, days, engaged)
    return [pk for pk, _, _, _ in gone]


# --- rollups -----------------------------------------------------------------------------


def _bump(
    session: Session, org_id: int, days: Counter[DayKey], engaged: Counter[ContactKey]
) -> None:
    """Add these increments to the rollups, then drop the rows they brought to 0. One upsert
    per table; on PostgreSQL both in one statement (a page's round trip and plan fewer)."""
    tables = ((ACTIVITY_DAYS, "type", days), (CONTACT_DAYS, "contact_id", engaged))
    changes = [(t, last, sorted((k, n) for k, n in c.items() if n)) for t, last, c in tables]
    changes = [(table, last, rows) for table, last, rows in changes if rows]
    connection = session.connection()
    postgresql = _postgresql(session)
    statements = [_upsert(table, last, org_id, rows, postgresql) for table, last, rows in changes]
    if postgresql and len(statements) == 2:  # both tables: one statement, the first a CTE
        (first, first_args), (second, second_args) = statements
        statements = [(f"WITH days AS ({first}) {second}", (*first_args, *second_args))]
    for sql, arguments in statements:
        if postgresql:
            connection.exec_driver_sql(sql, arguments)
        else:
            connection.exec_driver_sql(sql, list(arguments))
    for table, last, rows in changes:
        falling = [(u, d.isoformat(), k) for (u, d, k), n in rows if n < 0]
        if falling and postgresql:
            kind = "text" if last == "type" else "integer"
            connection.exec_driver_sql(
                f"DELETE FROM {table.name} t USING json_to_recordset(CAST(%s AS json)) "
                f"AS r(u integer, d date, k {kind}) WHERE t.user_id = r.u AND t.day = r.d "
                f"AND t.{last} = r.k AND t.count <= 0",
                (json.dumps([{"u": u, "d": d, "k": k} for u, d, k in falling]),),
            )
        elif falling:
            connection.exec_driver_sql(
                f"DELETE FROM {table.name} WHERE user_id = ? AND day = ? AND {last} = ? "
                "AND count <= 0",
                falling,
            )


def _upsert(
    table: Table, last: str, org_id: int, rows: list[tuple[Any, int]], postgresql: bool
) -> tuple[str, tuple[Any, ...]]:
    """The statement adding these counts to the table (SQLite: for executemany)."""
    key = f"user_id, day, {last}"
    add = f"ON CONFLICT ({key}) DO UPDATE SET count = {table.name}.count + excluded.count"
    if not postgresql:
        sql = f"INSERT INTO {table.name} (org_id, {key}, count) VALUES (?, ?, ?, ?, ?) {add}"
        return sql, tuple((org_id, u, d.isoformat(), k, n) for (u, d, k), n in rows)
    kind = "text" if last == "type" else "integer"
    document = json.dumps([{"u": u, "d": d.isoformat(), "k": k, "n": n} for (u, d, k), n in rows])
    sql = (
        f"INSERT INTO {table.name} (org_id, {key}, count) SELECT %s, u, d, k, n "
        f"FROM json_to_recordset(CAST(%s AS json)) AS r(u integer, d date, k {kind}, "
        f"n integer) {add}"
    )
    return sql, (org_id, document)


@dataclass(frozen=True)
class Rebuilt:
    activity_days: int
    contact_days: int


def rebuild(session: Session, org_id: int) -> Rebuilt:
    """Recount the organization's rollups from its activities and links, in its current
    zone: after a change of zone (same transaction), or by `tally rollups rebuild`.

    Set-based: PostgreSQL finds local days with AT TIME ZONE; SQLite has no zones, so each
    UTC time is shifted by the offset of its span (a CASE over the zone's offset changes
    between the first and last activity), which measured faster than a Python function
    called per row (docs/architecture.md)."""
    zone = _zone(session, org_id, exclusive=True)
    if _postgresql(session):
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
        .join(LINKS, link.activity_id == a.id)
        .where(a.org_id == org_id)
        .group_by(a.org_id, a.user_id, day, link.contact_id)
    )
    connection = session.connection()
    days = connection.execute(
        ACTIVITY_DAYS.insert().from_select(["org_id", "user_id", "day", "type", "count"], per_type)
    ).rowcount
    contacts = connection.execute(
        CONTACT_DAYS.insert().from_select(
            ["org_id", "user_id", "day", "contact_id", "count"], per_contact
        )
    ).rowcount
    return Rebuilt(days, contacts)


def _day_expression(session: Session, org_id: int, zone: ZoneInfo) -> Any:
    moment = ACTIVITIES.c.occurred_at
    if _postgresql(session):
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
