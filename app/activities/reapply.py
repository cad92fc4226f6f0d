"""Derive a page of kept messages and events again under the directory as it is now, and
write only the difference, through the store (rollups stay exact) and the contact service.

Nothing is fetched: messages are read from their facts and their copies' observations,
events from their stored copies. Contacts the page unlinked and that nothing links to any
more (no activity, no deal, no person's edit) go, and so do companies left with no contact
and no deal (app/contacts/service.py `forget_unlinked`). The caller owns the transaction.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.activities import events, rederive, store
from app.activities.inference import Directory
from app.activities.models import Message, Observation
from app.activities.rederive import Held, Ident
from app.contacts import service as contacts
from app.contacts.models import ActivityContact, Contact
from app.db import one_of
from app.models import ActivityType, Connection

EMAIL_TYPES = [ActivityType.email_sent.value, ActivityType.email_received.value]


def messages(
    session: Session, org_id: int, ids: Sequence[int], directory: Directory, unlinked: set[int]
) -> None:
    """Re-derive these messages (those without facts, stored before migration 0012, stay as
    they are); `unlinked` collects the contacts that lost a link."""
    kept = _kept(session, org_id, ids)
    if not kept:
        return
    copies = _copies(session, list(kept))
    due: dict[Ident, rederive.Due] = {}
    for pk, message in kept.items():
        due.update(rederive.due_of(message, copies.get(pk, []), directory))
    held = _held(session, org_id, [m.key for m in kept.values()])
    change = rederive.plan(due, held)
    message_pk = {message.key: pk for pk, message in kept.items()}
    known = {ident: stored.id for ident, stored in held.items()}
    _apply(session, org_id, change, message_pk, known, unlinked)


def _kept(session: Session, org_id: int, ids: Sequence[int]) -> dict[int, rederive.Kept]:
    query = select(
        Message.id, Message.key_hash, Message.facts, Message.subject, Message.occurred_at
    ).where(
        Message.org_id == org_id,
        one_of(session, Message.id, list(ids)),
        Message.facts.is_not(None),
    )
    return {
        pk: rederive.Kept(key, facts, subject or "", None if facts.get("undated") else when)
        for pk, key, facts, subject, when in session.connection().execute(query)
    }


def _copies(session: Session, ids: list[int]) -> dict[int, list[rederive.Copy]]:
    """message id -> its copies, first seen first."""
    found: dict[int, list[rederive.Copy]] = defaultdict(list)
    query = (
        select(
            Observation.message_pk,
            Observation.sent,
            Observation.provider_date,
            Observation.connection_id,
            Connection.user_id,
            Connection.provider,
        )
        .join(Connection, Connection.id == Observation.connection_id)
        .where(one_of(session, Observation.message_pk, ids))
        .order_by(Observation.id)
    )
    rows = session.connection().execute(query)
    for pk, sent, provider_date, connection_id, user_id, provider in rows:
        assert pk is not None  # selected by it
        found[pk].append(
            rederive.Copy(user_id, bool(sent), provider_date, (connection_id, provider))
        )
    return found


def _held(session: Session, org_id: int, keys: list[str]) -> dict[Ident, Held]:
    rows = store.stored(session, org_id, keys, EMAIL_TYPES)
    linked: dict[int, set[str]] = defaultdict(set)
    ids = [row.id for row in rows]
    for start in range(0, len(ids), store.CHUNK):
        query = (
            select(ActivityContact.activity_id, Contact.email)
            .join(Contact, Contact.id == ActivityContact.contact_id)
            .where(one_of(session, ActivityContact.activity_id, ids[start : start + store.CHUNK]))
        )
        for activity_id, email in session.connection().execute(query):
            linked[activity_id].add(email)
    return {
        (row.source_key, row.user_id, row.type): Held(
            row.id, row.user_id, row.type, row.occurred_at, row.subject, frozenset(linked[row.id])
        )
        for row in rows
    }


def _apply(
    session: Session,
    org_id: int,
    change: rederive.Plan,
    message_pk: dict[str, int],
    known: dict[Ident, int],
    unlinked: set[int],
) -> None:
    sightings: dict[str, contacts.Sighting] = {}
    wanted = {ident: list(due.contacts) for ident, due in change.add.items()} | change.link
    for people in wanted.values():
        for person in people:
            sightings.setdefault(person.email, contacts.Sighting(person.email)).seen(person.name)
    contact_of = contacts.upsert_contacts(session, org_id, sightings.values())
    rows: list[dict[str, Any]] = [
        {
            "user_id": user_id,
            "type": kind,
            "occurred_at": due.occurred_at,
            "source_key": key,
            "message_pk": message_pk[key],
            "subject": due.subject,
            "connection_id": due.source[0],
            "provider": due.source[1],
        }
        for (key, user_id, kind), due in sorted(change.add.items())
    ]
    links = {ident: sorted(contact_of[p.email] for p in people) for ident, people in wanted.items()}
    store.add(session, org_id, rows, links, known=known)
    store.update(
        session,
        org_id,
        [
            store.Edit(
                held.id, held.user_id, held.type, held.occurred_at, due.occurred_at, due.subject
            )
            for held, due in change.move
        ],
    )
    stale = _contact_ids(session, org_id, {email for _, email in change.unlink})
    store.unlink(session, org_id, [(a, stale[e]) for a, e in change.unlink if e in stale])
    unlinked.update(stale.values())
    gone = [held.id for held in change.delete]
    unlinked.update(contact for _, contact in store.links(session, gone))
    store.delete(session, org_id, gone)


def _contact_ids(session: Session, org_id: int, emails: set[str]) -> dict[str, int]:
    if not emails:
        return {}
    query = select(Contact.email, Contact.id).where(
        Contact.org_id == org_id, one_of(session, Contact.email, emails)
    )
    return {key: value for key, value in session.execute(query)}


def event_keys(
    session: Session,
    org_id: int,
    keys: Sequence[str],
    directory: Directory,
    unlinked: set[int],
    *,
    now: datetime,
) -> None:
    """Recompute these events from their stored copies (events.reconcile)."""
    events.reconcile(session, org_id, keys, directory, now=now, unlinked=unlinked)
