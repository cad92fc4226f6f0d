"""Write a page of calendar objects: event copies, then the activities of every event touched.

Each occurrence a calendar holds is stored as an `EventCopy`; the copies of one event in
several users' calendars share its key (UID + original start). Whenever a copy appears,
changes or goes, the event's activities are recomputed from all its live copies by the pure
rules of `meetings.event_activities` and reconciled with what is stored: missing ones
inserted, moved ones updated, ones no longer due (cancelled, declined, deleted) removed.
`meeting_held` and `call` only exist once an event has ended, so events that end later are
recomputed once more then (`settle_ended`). The caller owns the transaction.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from app.activities import meetings
from app.activities.inference import Directory
from app.calls.dedupe import duplicate_call
from app.contacts import service as contacts
from app.db import insert_ignore, one_of
from app.models import (
    Activity,
    ActivityContact,
    ActivityType,
    Connection,
    EventCopy,
    Organization,
    utcnow,
)
from connectors.base import Address, Attendee, CalendarObject, RemoteEvent

EVENT_TYPES = (ActivityType.meeting_scheduled, ActivityType.meeting_held, ActivityType.call)


def event_key(event: RemoteEvent) -> str:
    """One event however many calendars hold it: its UID and, for an occurrence of a series,
    its original start. A single event keeps its key when it moves."""
    original = event.recurrence_id.isoformat() if event.recurrence_id else ""
    return hashlib.sha256(f"{event.uid}\n{original}".encode()).hexdigest()


def to_json(event: RemoteEvent) -> dict[str, Any]:
    data = asdict(event)
    for name in ("recurrence_id", "start", "end", "created"):
        value = data[name]
        data[name] = value.isoformat() if value is not None else None
    return data


def from_json(data: dict[str, Any]) -> RemoteEvent:
    def moment(name: str) -> datetime | None:
        value = data.get(name)
        return datetime.fromisoformat(value) if value else None

    organizer = data.get("organizer")
    start, end = moment("start"), moment("end")
    assert start is not None and end is not None
    return RemoteEvent(
        source_id=data["source_id"],
        uid=data["uid"],
        recurrence_id=moment("recurrence_id"),
        start=start,
        end=end,
        all_day=data["all_day"],
        status=data["status"],
        summary=data["summary"],
        location=data["location"],
        description=data["description"],
        conference=tuple(data["conference"]),
        organizer=Address(**organizer) if organizer else None,
        attendees=tuple(Attendee(**a) for a in data["attendees"]),
        created=moment("created"),
        version=data["version"],
    )


def ingest_calendar(
    session: Session,
    connection: Connection,
    objects: Sequence[CalendarObject],
    directory: Directory,
    *,
    now: datetime,
) -> tuple[int, int]:
    """Store one page's calendar objects and reconcile the events they touch.
    Returns (occurrences seen, activities created)."""
    touched: set[str] = set()
    seen = 0
    for item in objects:
        seen += len(item.events)
        touched |= _store_object(session, connection, item, now)
    created = reconcile(session, connection.org_id, touched, directory, now=now)
    return seen, created


def _store_object(
    session: Session, connection: Connection, item: CalendarObject, now: datetime
) -> set[str]:
    stored = {
        copy.source_id: copy
        for copy in session.scalars(
            select(EventCopy).where(
                EventCopy.connection_id == connection.id, EventCopy.resource == item.resource
            )
        )
    }
    touched: set[str] = set()
    current = {event.source_id: event for event in item.events}
    for source_id, copy in stored.items():
        if source_id in current:
            continue
        inside = item.window is None or item.window[0] <= copy.starts_at < item.window[1]
        if item.deleted or inside:  # gone from the server, or from its series
            touched.add(copy.event_key)
            session.delete(copy)
    rows: list[dict[str, Any]] = []
    for source_id, event in current.items():
        key = event_key(event)
        known = stored.get(source_id)
        if known is not None:
            if known.version == event.version and known.event_key == key:
                continue
            touched |= {known.event_key, key}
            known.event_key, known.version, known.data = key, event.version, to_json(event)
            known.starts_at, known.ends_at = event.start, event.end
            known.settled, known.updated_at = False, now
            continue
        touched.add(key)
        rows.append(
            {
                "org_id": connection.org_id,
                "connection_id": connection.id,
                "user_id": connection.user_id,
                "resource": item.resource,
                "source_id": source_id,
                "event_key": key,
                "version": event.version,
                "starts_at": event.start,
                "ends_at": event.end,
                "data": to_json(event),
                "settled": False,
                "updated_at": now,
            }
        )
    session.flush()
    insert_ignore(session, EventCopy.__table__, rows, ["connection_id", "source_id"])
    return touched


def settle_ended(session: Session, org_id: int, directory: Directory, *, now: datetime) -> int:
    """Recompute the events that ended since they were last computed; activities created."""
    keys = set(
        session.scalars(
            select(EventCopy.event_key).where(
                EventCopy.org_id == org_id,
                EventCopy.settled.is_(False),
                EventCopy.ends_at <= now,
            )
        )
    )
    return reconcile(session, org_id, keys, directory, now=now) if keys else 0


def reconcile(
    session: Session, org_id: int, keys: Iterable[str], directory: Directory, *, now: datetime
) -> int:
    """Make the stored activities of these events what their copies say; activities created."""
    keys = sorted(set(keys))
    if not keys:
        return 0
    org = session.get_one(Organization, org_id)
    copies: dict[str, list[tuple[int, RemoteEvent]]] = defaultdict(list)
    source: dict[str, tuple[int, str]] = {}  # key -> the first copy's connection and provider
    for user_id, key, data, connection_id, provider in session.execute(
        select(
            EventCopy.user_id,
            EventCopy.event_key,
            EventCopy.data,
            EventCopy.connection_id,
            Connection.provider,
        )
        .join(Connection, Connection.id == EventCopy.connection_id)
        .where(EventCopy.org_id == org_id, one_of(session, EventCopy.event_key, keys))
        .order_by(EventCopy.id)
    ):
        copies[key].append((user_id, from_json(data)))
        source.setdefault(key, (connection_id, provider))
    existing = {
        (row.source_key, row.user_id, row.type): row
        for row in session.scalars(
            select(Activity).where(
                Activity.org_id == org_id,
                one_of(session, Activity.source_key, keys),
                Activity.type.in_([t.value for t in EVENT_TYPES]),
            )
        )
    }
    created = 0
    wanted: set[tuple[str, int, str]] = set()
    for key in keys:
        if not copies.get(key):
            continue
        outcome = meetings.event_activities(copies[key], directory, org.call_pattern, now)
        people = [contacts.Sighting(a.email, a.name) for a in outcome.contacts]
        contact_ids = list(contacts.upsert_contacts(session, org_id, people).values())
        for due in outcome.activities:
            ident = (key, due.user_id, due.type)
            row = existing.get(ident)
            if (
                row is None
                and due.type == ActivityType.call
                and duplicate_call(session, org_id, due.user_id, contact_ids, due.occurred_at)
            ):
                continue  # the phone system logged this call already: one call
            wanted.add(ident)
            if row is None:
                created += _insert(session, org_id, key, due, source[key])
                row = existing[ident] = _find(session, org_id, ident)
            elif (row.occurred_at, row.subject) != (due.occurred_at, due.subject):
                row.occurred_at, row.subject = due.occurred_at, due.subject
            links = [{"activity_id": row.id, "contact_id": c} for c in contact_ids]
            insert_ignore(session, ActivityContact.__table__, links, ["activity_id", "contact_id"])
    gone = [row.id for ident, row in existing.items() if ident not in wanted]
    if gone:
        session.execute(delete(Activity).where(Activity.id.in_(gone)))
    session.execute(
        update(EventCopy)
        .where(
            EventCopy.org_id == org_id,
            one_of(session, EventCopy.event_key, keys),
            EventCopy.ends_at <= now,
        )
        .values(settled=True)
    )
    return created


def _insert(
    session: Session, org_id: int, key: str, due: meetings.DueActivity, source: tuple[int, str]
) -> int:
    row = {
        "org_id": org_id,
        "user_id": due.user_id,
        "type": due.type,
        "occurred_at": due.occurred_at,
        "source_key": key,
        "subject": due.subject[:2000],
        "connection_id": source[0],
        "provider": source[1],
    }
    table = Activity.__table__
    inserted = insert_ignore(
        session, table, [row], ["org_id", "source_key", "user_id", "type"], returning=(table.c.id,)
    )
    return len(inserted)


def _find(session: Session, org_id: int, ident: tuple[str, int, str]) -> Activity:
    key, user_id, kind = ident
    return session.scalars(
        select(Activity).where(
            Activity.org_id == org_id,
            Activity.source_key == key,
            Activity.user_id == user_id,
            Activity.type == kind,
        )
    ).one()


def forget_unlisted(
    session: Session,
    connection: Connection,
    listed: set[str],
    window: tuple[datetime, datetime],
    directory: Directory,
    *,
    now: datetime,
) -> int:
    """After a complete listing of the calendar's `window` (a first sync, or one started afresh
    because the provider forgot the cursor): a stored resource with an occurrence inside the
    window that the listing did not name was deleted meanwhile, unseen. Its copies go and its
    events are recomputed. Resources that only have occurrences outside the window are
    history the listing could not show, and stay. Returns how many resources went."""
    inside = set(
        session.scalars(
            select(EventCopy.resource)
            .where(
                EventCopy.connection_id == connection.id,
                EventCopy.starts_at >= window[0],
                EventCopy.starts_at < window[1],
            )
            .distinct()
        )
    )
    gone = inside - listed
    if not gone:
        return 0
    where = (EventCopy.connection_id == connection.id, one_of(session, EventCopy.resource, gone))
    keys = set(session.scalars(select(EventCopy.event_key).where(*where)))
    session.execute(delete(EventCopy).where(*where))
    reconcile(session, connection.org_id, keys, directory, now=now)
    return len(gone)


def forget_connection(session: Session, connection: Connection, directory: Directory) -> None:
    """Purge: drop this calendar's copies and recompute the events they belonged to."""
    keys = set(
        session.scalars(select(EventCopy.event_key).where(EventCopy.connection_id == connection.id))
    )
    session.execute(delete(EventCopy).where(EventCopy.connection_id == connection.id))
    reconcile(session, connection.org_id, keys, directory, now=utcnow())
