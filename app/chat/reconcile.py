"""Make the stored chat_conversation activities of a channel's runs exactly what the rules
(app/chat/conversations.py) say, through the activity store: missing ones added, changed
ones edited and relinked, ones no longer due deleted; contacts and companies of the external
writers created as semantics §4 says. The caller owns the transaction and holds the channel's
lock (service.lock_channel)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from app.activities import store
from app.activities.inference import Directory
from app.chat import conversations as rules
from app.chat.conversations import Sent
from app.contacts import service as contacts
from app.models import ActivityType

TYPE = ActivityType.chat_conversation.value
Ident = tuple[str, int, str]  # (source key, user id, type)


@dataclass(frozen=True, slots=True)
class Place:
    """Where the messages were written: what a conversation's key and its activities'
    source columns are made of."""

    org_id: int
    source: str
    channel_id: str
    connection_id: int | None


@dataclass
class Changes:
    added: int = 0
    removed: int = 0
    changed: int = 0  # kept, with a new time, subject or linked contacts


def source_key(place: Place, first_id: str) -> str:
    """A conversation's key: its channel and its first message. A late message that moves
    the start makes another conversation (the old one's activities go, the new ones come)."""
    basis = "\x1f".join(("chat", place.source, place.channel_id, first_id))
    return hashlib.sha256(basis.encode("utf-8")).hexdigest()


def keys_of(place: Place, runs: Iterable[Sequence[Sent]]) -> set[str]:
    return {source_key(place, run[0].id) for run in runs if run}


def reconcile(
    session: Session,
    place: Place,
    before: set[str],
    now: Sequence[Sequence[Sent]],
    directory: Directory,
) -> Changes:
    """`before`: the keys of the runs the stored activities may belong to (the runs of the
    messages as they were, in the span); `now`: the span's runs as they are."""
    due = rules.due(c for run in now if (c := rules.conversation_of(run, directory)))
    keys = before | keys_of(place, now)
    existing = {
        (row.source_key, row.user_id, row.type): row
        for row in store.stored(session, place.org_id, keys, [TYPE])
    }
    sightings = {e: contacts.Sighting(e) for d in due for e in d.externals}
    contact_of = contacts.upsert_contacts(session, place.org_id, sightings.values())
    wanted: dict[Ident, list[int]] = {}
    new: list[dict[str, Any]] = []
    edits: list[store.Edit] = []
    for item in due:
        ident = (source_key(place, item.first_id), item.user_id, TYPE)
        wanted[ident] = sorted({contact_of[e] for e in item.externals if e in contact_of})
        subject = rules.subject(place.source, item.externals)
        row = existing.get(ident)
        if row is None:
            new.append(_row(place, ident, item.occurred_at, subject))
        elif (row.occurred_at, row.subject) != (item.occurred_at, subject):
            edits.append(
                store.Edit(row.id, row.user_id, TYPE, row.occurred_at, item.occurred_at, subject)
            )
    known = {ident: row.id for ident, row in existing.items()}
    changes = Changes()
    changes.added = len(store.add(session, place.org_id, new, wanted, known=known).inserted)
    changed = set(store.update(session, place.org_id, edits))
    kept = {known[ident]: set(ids) for ident, ids in wanted.items() if ident in known}
    stale = [
        (activity_id, contact_id)
        for activity_id, contact_id in store.links(session, list(known.values()))
        if contact_id not in kept.get(activity_id, ())
    ]
    store.unlink(session, place.org_id, [pair for pair in stale if pair[0] in kept])
    changed |= {activity_id for activity_id, _ in stale if activity_id in kept}
    gone = [pk for ident, pk in known.items() if ident not in wanted]
    changes.removed = len(store.delete(session, place.org_id, gone))
    # a contact only a vanished conversation held goes, as a fresh import never makes it
    contacts.forget_unlinked(session, place.org_id, {contact_id for _, contact_id in stale})
    changes.changed = len(changed)
    return changes


def _row(place: Place, ident: Ident, occurred_at: datetime, subject: str) -> dict[str, Any]:
    key, user_id, kind = ident
    return {
        "user_id": user_id,
        "type": kind,
        "occurred_at": occurred_at,
        "source_key": key,
        "message_pk": None,
        "subject": subject,
        "connection_id": place.connection_id,
        "provider": place.source,
    }
