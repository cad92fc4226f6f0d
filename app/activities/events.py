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

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, delete, select, update
from sqlalchemy.orm import Session

from app.activities import directory as directories
from app.activities import meetings, store
from app.activities.dedupe import WINDOW, duplicate_call
from app.activities.eventdata import event_key, from_json, people, to_json
from app.activities.facts import address_key
from app.activities.inference import Directory
from app.activities.models import EventAddress, EventCopy
from app.contacts import service as contacts
from app.db import insert_ignore, one_of
from app.models import ActivityType, Connection, Organization, utcnow
from connectors.base import CalendarObject, RemoteEvent

EVENT_TYPES = (ActivityType.meeting_scheduled, ActivityType.meeting_held, ActivityType.call)
EVENT_ADDRESSES = cast(Table, EventAddress.__table__)


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
    for chunk in _distinct_runs(objects):
        touched |= _store_objects(session, connection, chunk, now)
    created = reconcile(session, connection.org_id, touched, directory, now=now)
    return sum(len(item.events) for item in objects), created


def _distinct_runs(objects: Sequence[CalendarObject]) -> list[list[CalendarObject]]:
    """The page in order, cut wherever a resource comes again (a later version of it must see
    what the earlier one stored)."""
    runs: list[list[CalendarObject]] = [[]]
    resources: set[str] = set()
    for item in objects:
        if item.resource in resources:
            runs.append([])
            resources = set()
        runs[-1].append(item)
        resources.add(item.resource)
    return [run for run in runs if run]


def _store_objects(
    session: Session, connection: Connection, items: list[CalendarObject], now: datetime
) -> set[str]:
    """Store objects of distinct resources: their stored copies read in one query, the new
    ones inserted in one batch."""
    stored: dict[str, dict[str, EventCopy]] = defaultdict(dict)
    query = select(EventCopy).where(
        EventCopy.connection_id == connection.id,
        one_of(session, EventCopy.resource, {item.resource for item in items}),
    )
    for copy in session.scalars(query):
        stored[copy.resource][copy.source_id] = copy
    touched: set[str] = set()
    rows: list[dict[str, Any]] = []
    index: set[tuple[str, str]] = set()  # (address key, event key) of the copies written
    for item in items:
        touched |= _store_object(item, stored[item.resource], rows, index, session, now)
    session.flush()
    insert_ignore(
        session,
        EVENT_ADDRESSES,
        [{"address_key": a, "event_key": k} for a, k in sorted(index)],
        ["org_id", "address_key", "event_key"],
        shared={"org_id": connection.org_id},
    )
    shared = {
        "org_id": connection.org_id,
        "connection_id": connection.id,
        "user_id": connection.user_id,
        "settled": False,
        "updated_at": now,
    }
    conflict = ["connection_id", "source_id"]
    insert_ignore(session, EventCopy.__table__, rows, conflict, shared=shared)
    return touched


def _store_object(
    item: CalendarObject,
    stored: dict[str, EventCopy],
    rows: list[dict[str, Any]],
    index: set[tuple[str, str]],
    session: Session,
    now: datetime,
) -> set[str]:
    """Update or delete the resource's stored copies, add its new ones to `rows` and the
    addresses of those it writes to `index`; the event keys touched."""
    touched: set[str] = set()
    current = {event.source_id: event for event in item.events}
    for source_id, copy in stored.items():
        if source_id in current:
            continue
        inside = item.window is None or item.window[0] <= copy.starts_at < item.window[1]
        if item.deleted or inside:  # gone from the server, or from its series
            touched.add(copy.event_key)
            session.delete(copy)
    for source_id, event in current.items():
        key = event_key(event)
        known = stored.get(source_id)
        if known is not None and known.version == event.version and known.event_key == key:
            continue
        index.update((address_key(email), key) for email in people(event))
        if known is not None:
            touched |= {known.event_key, key}
            known.event_key, known.version, known.data = key, event.version, to_json(event)
            known.starts_at, known.ends_at = event.start, event.end
            known.settled, known.updated_at = False, now
            continue
        touched.add(key)
        rows.append(
            {
                "resource": item.resource,
                "source_id": source_id,
                "event_key": key,
                "version": event.version,
                "starts_at": event.start,
                "ends_at": event.end,
                "data": to_json(event),
            }
        )
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
    session: Session,
    org_id: int,
    keys: Iterable[str],
    directory: Directory,
    *,
    now: datetime,
    unlinked: set[int] | None = None,
) -> int:
    """Make the stored activities of these events and their links what their copies say
    under the directory as it is now (`directory` if still current); activities created.
    `unlinked` collects the contacts that lost a link (to an activity gone, or a person no
    longer external) for the caller to forget once nothing holds them; without it they are
    forgotten here (contacts.forget_unlinked).

    The events are worked out one by one (in key order), and written together: their
    contacts in one upsert, their activities through the store (one insert of the new ones
    and their links, then the moved ones, the links no longer due, then the activities no
    longer due)."""
    keys = sorted(set(keys))
    if not keys:
        return 0
    directory = directories.current(session, org_id, directory)
    org = session.get_one(Organization, org_id)
    copies, source = _copies(session, org_id, keys)
    types = [t.value for t in EVENT_TYPES]
    existing = {
        (row.source_key, row.user_id, row.type): row
        for row in store.stored(session, org_id, keys, types)
    }
    outcomes = {
        key: meetings.event_activities(copies[key], directory, org.call_pattern, now)
        for key in keys
        if copies.get(key)
    }
    sightings: dict[str, contacts.Sighting] = {}
    for outcome in outcomes.values():
        for person in outcome.contacts:
            sightings.setdefault(person.email, contacts.Sighting(person.email)).seen(person.name)
    contact_of = contacts.upsert_contacts(session, org_id, sightings.values())
    wanted: dict[Ident, list[int]] = {}  # the activities due -> their contacts
    new: list[dict[str, Any]] = []
    edits: list[store.Edit] = []
    calls = _Calls(session, org_id)
    for key, outcome in outcomes.items():
        emails = [p.email for p in outcome.contacts if p.email in contact_of]
        contact_ids = list(dict.fromkeys(contact_of[email] for email in emails))
        for due in outcome.activities:
            ident = (key, due.user_id, due.type)
            row = existing.get(ident)
            if (
                row is None
                and due.type == ActivityType.call
                and calls.duplicate(due.user_id, contact_ids, due.occurred_at)
            ):
                continue  # the phone system (or another event) logged this call: one call
            wanted[ident] = contact_ids
            if row is None:
                new.append(_new_row(key, due, source[key]))
            elif (row.occurred_at, row.subject) != (due.occurred_at, due.subject):
                edits.append(
                    store.Edit(
                        row.id, row.user_id, row.type, row.occurred_at, due.occurred_at, due.subject
                    )
                )
    known = {ident: row.id for ident, row in existing.items()}
    created = len(store.add(session, org_id, new, wanted, known=known).inserted)
    store.update(session, org_id, edits)
    kept = {known[ident]: set(ids) for ident, ids in wanted.items() if ident in known}
    # links of activities kept that are no longer due, and of those about to go
    stale = [
        (activity_id, contact_id)
        for activity_id, contact_id in store.links(session, list(known.values()))
        if contact_id not in kept.get(activity_id, ())
    ]
    store.unlink(session, org_id, [pair for pair in stale if pair[0] in kept])
    store.delete(session, org_id, [pk for ident, pk in known.items() if ident not in wanted])
    if unlinked is not None:
        unlinked.update(contact_id for _, contact_id in stale)
    else:  # a sync: a contact only this event held goes now, as a fresh import never makes it
        contacts.forget_unlinked(session, org_id, {contact_id for _, contact_id in stale})
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


Ident = tuple[str, int, str]  # (event key, user id, activity type)


def _copies(
    session: Session, org_id: int, keys: list[str]
) -> tuple[dict[str, list[tuple[int, RemoteEvent]]], dict[str, tuple[int, str]]]:
    """key -> its live copies (user, event), and key -> its first copy's connection and
    provider (the source its activities are credited to)."""
    copies: dict[str, list[tuple[int, RemoteEvent]]] = defaultdict(list)
    source: dict[str, tuple[int, str]] = {}
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
    return copies, source


class _Calls:
    """The one-call rule (calls.dedupe) for a batch of events: a call is a duplicate of one
    stored before, or of one this batch is about to add."""

    def __init__(self, session: Session, org_id: int) -> None:
        self.session, self.org_id = session, org_id
        self.added: list[tuple[int, set[int], datetime]] = []

    def duplicate(self, user_id: int, contact_ids: list[int], at: datetime) -> bool:
        if duplicate_call(self.session, self.org_id, user_id, contact_ids, at) is not None:
            return True
        if any(
            user == user_id and people & set(contact_ids) and abs(when - at) <= WINDOW
            for user, people, when in self.added
        ):
            return True
        self.added.append((user_id, set(contact_ids), at))
        return False


def _new_row(key: str, due: meetings.DueActivity, source: tuple[int, str]) -> dict[str, Any]:
    return {
        "user_id": due.user_id,
        "type": due.type,
        "occurred_at": due.occurred_at,
        "source_key": key,
        "subject": due.subject[:2000],
        "connection_id": source[0],
        "provider": source[1],
    }


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
