"""The one owner of activity rows: every insert, change and delete of `activities` and
`activity_contacts` goes through here (a test reads the code to hold every other module to
it), and so do the stored rollups that count them, in the same transaction (their SQL is in
app/activities/rollups.py, which only this module calls):

- `activity_days`: activities per user, local day of the organization's zone, and type;
- `contact_days`: activity links per user, local day and contact (the `contacts_engaged`
  distinct count), with the first and last `occurred_at` of those links (contacts' and
  companies' first and latest interaction);
- `user_contacts`: activity links per user and contact (which contacts a rep or a manager
  sees, and where their search starts).

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

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, tuple_
from sqlalchemy.orm import Session

from app.activities import rollups
from app.activities.days import DayKey, day_counts, local_day
from app.activities.rollups import ACTIVITIES, LINKS, Engaged
from app.db import insert_ignore, lookup, one_of

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
    placed: dict[int, tuple[int, date, datetime]] = {}  # activity -> (user, local day, time)
    for key, user_id, kind, pk in inserted:
        when = moment[(key, user_id, kind)]
        day = local_day(when, zone)
        days[(user_id, day, kind)] += 1
        placed[pk] = (user_id, day, when)
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
            placed[pk] = (user_id, local_day(when, zone), when)
    engaged = Engaged()
    for activity_id, contact_id in new_links:
        user_id, day, when = placed[activity_id]
        engaged.touch((user_id, day, contact_id), when, 1)
    result.links = len(new_links)
    rollups.bump(session, org_id, zone, days, engaged)
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
    moved: dict[int, Edit] = {}  # the edits that changed the time
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
        if edit.occurred_at != edit.new_occurred_at:  # even within a day: the spans move
            moved[edit.id] = edit
    engaged = Engaged()
    for activity_id, contact_id in _links_of(session, list(moved)):
        edit = moved[activity_id]
        old, new = local_day(edit.occurred_at, zone), local_day(edit.new_occurred_at, zone)
        if old == new:
            engaged.moved((edit.user_id, old, contact_id), edit.occurred_at, edit.new_occurred_at)
        else:
            engaged.touch((edit.user_id, old, contact_id), edit.occurred_at, -1)
            engaged.touch((edit.user_id, new, contact_id), edit.new_occurred_at, 1)
    rollups.bump(session, org_id, zone, days, engaged)
    return changed


def links(session: Session, activity_ids: list[int]) -> list[tuple[int, int]]:
    """The (activity, contact) links of these activities."""
    return _links_of(session, activity_ids)


def unlink(session: Session, org_id: int, pairs: Iterable[tuple[int, int]]) -> int:
    """Remove these (activity, contact) links, the activities staying; how many this
    transaction removed. contact_days and user_contacts lose what they counted."""
    wanted = sorted(set(pairs))
    if not wanted:
        return 0
    zone = _zone(session, org_id)
    c = ACTIVITIES.c
    by_activity: dict[int, set[int]] = {}
    for activity_id, contact_id in wanted:
        by_activity.setdefault(activity_id, set()).add(contact_id)
    engaged = Engaged()
    removed = 0
    ids = sorted(by_activity)
    for start in range(0, len(ids), CHUNK):
        chunk = ids[start : start + CHUNK]
        query = select(c.id, c.user_id, c.occurred_at).where(
            c.org_id == org_id, one_of(session, c.id, chunk)
        )
        if _postgresql(session):  # not moved meanwhile (update locks them the same way)
            query = query.order_by(c.id).with_for_update()
        placed = {pk: (user, when) for pk, user, when in session.execute(query)}
        pairs = [(a, contact) for a in sorted(placed) for contact in sorted(by_activity[a])]
        if not pairs:
            continue
        gone = session.execute(
            LINKS.delete()
            .where(tuple_(LINKS.c.activity_id, LINKS.c.contact_id).in_(pairs))
            .returning(LINKS.c.activity_id, LINKS.c.contact_id)
        )
        for activity_id, contact_id in gone:
            user_id, when = placed[activity_id]
            engaged.touch((user_id, local_day(when, zone), contact_id), when, -1)
            removed += 1
    rollups.bump(session, org_id, zone, Counter(), engaged)
    return removed


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
    engaged = Engaged()
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
        placed = {pk: (user, local_day(when, zone), when) for pk, user, _, when in rows}
        unlinked = session.execute(
            LINKS.delete()
            .where(one_of(session, LINKS.c.activity_id, chunk))
            .returning(LINKS.c.activity_id, LINKS.c.contact_id)
        )
        for activity_id, contact_id in unlinked:
            user_id, day, when = placed[activity_id]
            engaged.touch((user_id, day, contact_id), when, -1)
        session.execute(ACTIVITIES.delete().where(one_of(session, c.id, chunk)))
        gone.extend(rows)
    days = day_counts(((user, kind, when) for _, user, kind, when in gone), zone, -1)
    rollups.bump(session, org_id, zone, days, engaged)
    return [pk for pk, _, _, _ in gone]


def rebuild(session: Session, org_id: int) -> rollups.Rebuilt:
    """Recount the organization's rollups from its activities and links, in its current
    zone: after a change of zone (same transaction), or by `tally rollups rebuild`. Locks the
    organization's row for update first (see the module's docstring)."""
    return rollups.rebuild(session, org_id, _zone(session, org_id, exclusive=True))
