"""Write one page of a connector's messages: observations, messages, activities, contacts.

Idempotent twice over: an item already observed on this connection is skipped (provider id),
and messages, activities and links are inserted with ON CONFLICT DO NOTHING on the message
identity, so the same message from another mailbox, or a replayed page, changes nothing.
The caller owns the transaction (the sync runner stores the page's cursor in the same one).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import cast

from sqlalchemy import Table, select
from sqlalchemy.orm import Session

from app.activities import events, store
from app.activities.inference import (
    Directory,
    EmailInference,
    infer_email,
    key_hash,
    message_key,
)
from app.contacts import service as contacts
from app.contacts.signature import extract
from app.db import insert_ignore, lookup
from app.models import (
    ActivityType,
    Connection,
    Message,
    Observation,
    Organization,
    UserAddress,
    utcnow,
)
from connectors.base import Page, RemoteMessage
from connectors.mail import text_body

MESSAGES = cast(Table, Message.__table__)
OBSERVATIONS = cast(Table, Observation.__table__)
ActivityKey = tuple[str, int, str]  # (message key hash, user id, activity type)


@dataclass
class IngestResult:
    seen: int = 0
    imported: int = 0
    filtered: int = 0
    failed: int = 0
    activities_created: int = 0

    def add(self, other: IngestResult) -> None:
        for counter in fields(IngestResult):
            setattr(self, counter.name, getattr(self, counter.name) + getattr(other, counter.name))


@dataclass
class _Batch:
    observations: list[dict[str, object]] = field(default_factory=list)
    messages: dict[str, dict[str, object]] = field(default_factory=dict)  # by key hash
    activities: dict[ActivityKey, dict[str, object]] = field(default_factory=dict)
    links: dict[ActivityKey, set[str]] = field(default_factory=dict)  # -> contact addresses
    sightings: dict[str, contacts.Sighting] = field(default_factory=dict)
    undated: dict[str, datetime] = field(default_factory=dict)  # key hash -> provider date
    received_from: dict[str, RemoteMessage] = field(default_factory=dict)


def load_directory(session: Session, org_id: int) -> Directory:
    org = session.get_one(Organization, org_id)
    addresses = session.execute(
        select(UserAddress.email, UserAddress.user_id).where(UserAddress.org_id == org_id)
    )
    return Directory(
        internal_domains=frozenset(d.lower() for d in org.domains),
        user_by_address={email.lower(): user_id for email, user_id in addresses},
    )


def _unseen(session: Session, connection_id: int, page: Page) -> set[str]:
    ids = {m.source_id for m in page.messages} | {f.source_id for f in page.failures}
    if not ids:
        return set()
    where = {"connection_id": connection_id}
    known = lookup(session, OBSERVATIONS, ["source_id"], where, "source_id", ids)
    return ids - {source_id for (source_id,) in known}


def _add_email(
    batch: _Batch,
    connection: Connection,
    message: RemoteMessage,
    found: EmailInference,
    when: datetime,
) -> str:
    digest = key_hash(message_key(message))
    batch.messages.setdefault(
        digest,
        {
            "key_hash": digest,
            "message_id": message.message_id,
            "occurred_at": when,
            "subject": message.subject[:2000],
            "sender": message.sender.email if message.sender else None,
            "kind": found.kind,
        },
    )
    if message.date is None:
        batch.undated[digest] = min(when, batch.undated.get(digest, when))
    owners = [(found.sent_by, ActivityType.email_sent)] if found.sent_by is not None else []
    owners += [(u, ActivityType.email_received) for u in found.received_by]
    for user_id, kind in owners:
        key = (digest, user_id, kind.value)
        batch.activities.setdefault(
            key,
            {
                "user_id": user_id,
                "type": kind.value,
                "occurred_at": when,
                "source_key": digest,
                "subject": message.subject[:2000],
            },
        )
        batch.links.setdefault(key, set()).update(a.email for a in found.contacts)
    for person in found.contacts:
        batch.sightings.setdefault(person.email, contacts.Sighting(person.email)).seen(person.name)
    if found.received_by and message.body and message.sender is not None:
        batch.received_from.setdefault(message.sender.email, message)
    return digest


def _collect(
    batch: _Batch, connection: Connection, page: Page, unseen: set[str], directory: Directory
) -> IngestResult:
    result = IngestResult()
    for failure in page.failures:
        if failure.source_id in unseen:
            unseen.discard(failure.source_id)
            batch.observations.append(
                {
                    "source_id": failure.source_id,
                    "status": "failed",
                    "reason": failure.reason[:1000],
                    "digest": None,
                }
            )
            result.failed += 1
    for message in page.messages:
        if message.source_id not in unseen:
            continue
        unseen.discard(message.source_id)
        found = infer_email(message, directory, owner_id=connection.user_id)
        when = message.date or message.provider_date
        if found.kind == "email" and when is None:
            batch.observations.append(
                {
                    "source_id": message.source_id,
                    "status": "failed",
                    "reason": "no Date header and no provider date",
                    "digest": None,
                }
            )
            result.failed += 1
            continue
        if found.kind != "email" or when is None:
            batch.observations.append(
                {
                    "source_id": message.source_id,
                    "status": "filtered",
                    "reason": found.reason,
                    "digest": None,
                }
            )
            result.filtered += 1
            continue
        digest = _add_email(batch, connection, message, found, when)
        batch.observations.append(
            {
                "source_id": message.source_id,
                "status": "imported",
                "reason": found.reason,
                "digest": digest,
            }
        )
        result.imported += 1
    result.seen = len(batch.observations)
    return result


def _read_signatures(session: Session, org_id: int, batch: _Batch) -> None:
    """Signatures are read only for senders whose contact still lacks a phone or a title."""
    wanting = contacts.contacts_missing_details(session, org_id, batch.received_from)
    for email in wanting:
        message = batch.received_from[email]
        text = text_body(message)
        if text:
            name = message.sender.name if message.sender else None
            batch.sightings[email].signature = extract(text, sender_email=email, sender_name=name)


def _message_ids(session: Session, org_id: int, batch: _Batch) -> dict[str, int]:
    """key hash -> message id: the ones inserted now come back from RETURNING, only the ones
    another mailbox stored before are selected."""
    table = MESSAGES
    inserted = insert_ignore(
        session,
        table,
        list(batch.messages.values()),
        ["org_id", "key_hash"],
        returning=(table.c.key_hash, table.c.id),
        shared={"org_id": org_id},
    )
    found: dict[str, int] = {key: pk for key, pk in inserted}
    known = [key for key in batch.messages if key not in found]
    columns = ["key_hash", "id"]
    found.update(lookup(session, table, columns, {"org_id": org_id}, "key_hash", known))
    return found


def _write(
    session: Session, connection: Connection, batch: _Batch, known: contacts.KnownContacts | None
) -> int:
    org_id = connection.org_id
    message_pk = _message_ids(session, org_id, batch)
    observations = [
        {
            "source_id": o["source_id"],
            "status": o["status"],
            "reason": o["reason"],
            "message_pk": message_pk.get(str(o["digest"])),
        }
        for o in batch.observations
    ]
    shared = {"connection_id": connection.id}
    conflict = ["connection_id", "source_id"]
    insert_ignore(session, OBSERVATIONS, observations, conflict, shared=shared)
    if not batch.activities:
        return 0
    contact_ids = contacts.upsert_contacts(session, org_id, batch.sightings.values(), known)
    rows = [{**row, "message_pk": message_pk[key[0]]} for key, row in batch.activities.items()]
    links = {
        key: [contact_ids[email] for email in emails if email in contact_ids]
        for key, emails in batch.links.items()
    }
    source = {"connection_id": connection.id, "provider": connection.provider}
    added = store.add(session, org_id, rows, links, shared=source)
    if batch.undated:
        _move_undated(session, org_id, batch.undated)
    return len(added.inserted)


def _move_undated(session: Session, org_id: int, undated: dict[str, datetime]) -> None:
    """A message without a Date header is dated by its provider; of its copies in several
    mailboxes, the earliest date wins."""
    types = [ActivityType.email_sent.value, ActivityType.email_received.value]
    edits = [
        store.Edit(row.id, row.user_id, row.type, row.occurred_at, undated[row.source_key])
        for row in store.stored(session, org_id, undated, types)
        if row.occurred_at > undated[row.source_key]
    ]
    store.update(session, org_id, edits)


def ingest_page(
    session: Session,
    connection: Connection,
    page: Page,
    directory: Directory,
    known: contacts.KnownContacts | None = None,
) -> IngestResult:
    """Infer and store one page; update the connection's counts. Never commits. `known`: the
    contacts this run has met so far (see KnownContacts), for a run of many pages."""
    result = IngestResult()
    if page.calendar:
        seen, created = events.ingest_calendar(
            session, connection, page.calendar, directory, now=utcnow()
        )
        connection.events_seen += seen
        connection.activities_created += created
        result.activities_created += created
    result.add(_ingest_mail(session, connection, page, directory, known))
    return result


def _ingest_mail(
    session: Session,
    connection: Connection,
    page: Page,
    directory: Directory,
    known: contacts.KnownContacts | None,
) -> IngestResult:
    """Messages and failures: each item once per connection, whatever the page repeats."""
    unseen = _unseen(session, connection.id, page)
    if not unseen:
        return IngestResult()
    batch = _Batch()
    result = _collect(batch, connection, page, unseen, directory)
    if batch.received_from:
        _read_signatures(session, connection.org_id, batch)
    result.activities_created = _write(session, connection, batch, known)
    connection.messages_seen += result.seen
    connection.messages_imported += result.imported
    connection.messages_filtered += result.filtered
    connection.messages_failed += result.failed
    connection.activities_created += result.activities_created
    return result
