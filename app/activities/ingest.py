"""Write one page of a connector's messages: observations, messages, activities, contacts.

Idempotent twice over: an item already observed on this connection is skipped (provider id),
and messages, activities and links are inserted with ON CONFLICT DO NOTHING on the message
identity, so the same message from another mailbox, or a replayed page, changes nothing.
The caller owns the transaction (the sync runner stores the page's cursor in the same one).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, update
from sqlalchemy.orm import Session

from app.activities import directory as directories
from app.activities import events, facts, store
from app.activities.directory import load_directory as load_directory
from app.activities.inference import (
    Directory,
    EmailInference,
    infer_email,
    key_hash,
    message_key,
)
from app.activities.models import Message, MessageAddress, Observation
from app.contacts import service as contacts
from app.contacts.signature import extract
from app.db import insert_ignore, lookup
from app.models import ActivityType, Connection, utcnow
from connectors.base import Address, Page, RemoteMessage
from connectors.mail import text_body

MESSAGES = cast(Table, Message.__table__)
OBSERVATIONS = cast(Table, Observation.__table__)
MESSAGE_ADDRESSES = cast(Table, MessageAddress.__table__)
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
    messages: dict[str, dict[str, Any]] = field(default_factory=dict)  # by key hash
    bcc: dict[str, list[Address]] = field(default_factory=dict)  # key hash -> copies' Bcc
    activities: dict[ActivityKey, dict[str, object]] = field(default_factory=dict)
    links: dict[ActivityKey, set[str]] = field(default_factory=dict)  # -> contact addresses
    sightings: dict[str, contacts.Sighting] = field(default_factory=dict)
    undated: dict[str, datetime] = field(default_factory=dict)  # key hash -> provider date
    received_from: dict[str, RemoteMessage] = field(default_factory=dict)
    legacy: set[str] = field(default_factory=set)  # observed before 0012: read again


def _unseen(session: Session, connection_id: int, page: Page) -> tuple[set[str], set[str]]:
    """The page's items to read: those this connection never observed, and (the second set,
    also in the first) those observed before migration 0012, which kept no facts (`sent` is
    NULL): a re-import or a backfill that meets them again gives them their facts."""
    ids = {m.source_id for m in page.messages} | {f.source_id for f in page.failures}
    if not ids:
        return set(), set()
    where = {"connection_id": connection_id}
    known = lookup(session, OBSERVATIONS, ["source_id", "sent"], where, "source_id", ids)
    legacy = {source_id for source_id, sent in known if sent is None}
    return ids - {source_id for source_id, _ in known} | legacy, legacy


def _keep(batch: _Batch, message: RemoteMessage, found: EmailInference, when: datetime) -> str:
    """The message's row with its facts (facts.py), once per page; the key hash."""
    digest = key_hash(message_key(message))
    row = batch.messages.get(digest)
    if row is None:
        batch.messages[digest] = {
            "key_hash": digest,
            "message_id": message.message_id,
            "occurred_at": when,
            "subject": message.subject[:2000],
            "sender": message.sender.email if message.sender else None,
            "kind": found.kind,
            "facts": facts.facts_of(message),
        }
    else:  # another copy in the same page: it may know other Bcc recipients
        row["facts"] = facts.with_bcc(row["facts"], message.bcc) or row["facts"]
        if found.kind == "email":
            row["kind"] = "email"
    if message.bcc:
        batch.bcc.setdefault(digest, []).extend(message.bcc)
    return digest


def _add_email(
    batch: _Batch,
    message: RemoteMessage,
    found: EmailInference,
    when: datetime,
    digest: str,
) -> None:
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
                    "sent": False,
                    "provider_date": None,
                }
            )
            result.failed += 1
    for message in page.messages:
        if message.source_id not in unseen:
            continue
        unseen.discard(message.source_id)
        found = infer_email(message, directory, owner_id=connection.user_id)
        when = message.date or message.provider_date
        # a copy with no date at all never counts, whatever the directory: nothing to keep
        kept = when is not None and facts.kept(found.kind, message)
        digest = _keep(batch, message, found, when) if kept and when is not None else None
        copy = {
            "source_id": message.source_id,
            "digest": digest,
            "sent": message.folder_role == "sent",
            "provider_date": message.provider_date if message.date is None else None,
        }
        if found.kind == "email" and when is None:
            reason = "no Date header and no provider date"
            batch.observations.append({**copy, "status": "failed", "reason": reason})
            result.failed += 1
        elif found.kind != "email" or when is None or digest is None:
            batch.observations.append({**copy, "status": "filtered", "reason": found.reason})
            result.filtered += 1
        else:
            _add_email(batch, message, found, when, digest)
            batch.observations.append({**copy, "status": "imported", "reason": found.reason})
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
    fresh = [(pk, batch.messages[key]["facts"]) for key, pk in inserted]
    grown: list[tuple[int, facts.Facts]] = []
    known = [key for key in batch.messages if key not in found]
    columns = ["key_hash", "id", "facts"]
    changed: list[dict[str, Any]] = []
    for key, pk, stored in lookup(session, table, columns, {"org_id": org_id}, "key_hash", known):
        found[key] = pk
        # stored before migration 0012 (no facts), or this page's copies name more Bcc
        new = batch.messages[key]["facts"] if stored is None else None
        new = new or (facts.with_bcc(stored, batch.bcc[key]) if key in batch.bcc else None)
        if new is not None:
            changed.append({"message_pk": pk, "new_facts": new})
            grown.append((pk, new))
    if changed:
        statement = (
            update(table)
            .where(table.c.id == bindparam("message_pk"))
            .values(facts=bindparam("new_facts"))
        )
        session.connection().execute(statement, changed)
    _index(session, org_id, fresh, grown)
    return found


def _index(
    session: Session,
    org_id: int,
    fresh: list[tuple[int, facts.Facts]],
    grown: list[tuple[int, facts.Facts]],
) -> None:
    """The address index entries of the messages inserted now (`fresh`) and of those whose
    facts grew. On PostgreSQL the fresh ones are COPYed: nobody else can have entries for a
    message this transaction made, and COPY took 12 µs a row where INSERT … ON CONFLICT took
    17 (about 3.5 rows a message)."""

    def keys(kept: facts.Facts) -> set[str]:
        return {facts.address_key(email) for email in facts.addresses(kept)}

    if fresh and session.get_bind().dialect.name == "postgresql":
        driver = session.connection().connection.driver_connection
        assert driver is not None
        columns = "org_id, address_key, message_id"
        with (
            driver.cursor() as cursor,
            cursor.copy(f"COPY message_addresses ({columns}) FROM STDIN") as copy,
        ):
            for pk, kept in fresh:
                for key in keys(kept):
                    copy.write_row((org_id, key, pk))
        fresh = []
    rows = [
        {"address_key": key, "message_id": pk}
        for pk, kept in (*fresh, *grown)
        for key in keys(kept)
    ]
    conflict = ["org_id", "address_key", "message_id"]
    insert_ignore(session, MESSAGE_ADDRESSES, rows, conflict, shared={"org_id": org_id})


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
            "sent": o["sent"],
            "provider_date": o["provider_date"],
        }
        for o in batch.observations
    ]
    shared = {"connection_id": connection.id}
    conflict = ["connection_id", "source_id"]
    fresh = [o for o in observations if o["source_id"] not in batch.legacy]
    insert_ignore(session, OBSERVATIONS, fresh, conflict, shared=shared)
    if batch.legacy:
        _reread(session, connection.id, [o for o in observations if o not in fresh])
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


def _reread(session: Session, connection_id: int, observations: list[dict[str, Any]]) -> None:
    """Observations from before 0012 read again: what they say now, with their facts."""
    table = OBSERVATIONS
    statement = (
        update(table)
        .where(table.c.connection_id == connection_id, table.c.source_id == bindparam("sid"))
        .values({name: bindparam(f"new_{name}") for name in _REREAD})
    )
    rows = [
        {"sid": o["source_id"], **{f"new_{name}": o[name] for name in _REREAD}}
        for o in observations
    ]
    session.connection().execute(statement, rows)


_REREAD = ("status", "reason", "message_pk", "sent", "provider_date")


def _move_undated(session: Session, org_id: int, undated: dict[str, datetime]) -> None:
    """A message without a Date header is dated by its provider; of its copies in several
    mailboxes, the earliest date wins."""
    types = [ActivityType.email_sent.value, ActivityType.email_received.value]
    rows = store.stored(session, org_id, undated, types)
    earliest = dict(undated)  # and earlier than an activity stored before, from another copy
    for row in rows:
        earliest[row.source_key] = min(earliest[row.source_key], row.occurred_at)
    edits = [
        store.Edit(row.id, row.user_id, row.type, row.occurred_at, earliest[row.source_key])
        for row in rows
        if row.occurred_at > earliest[row.source_key]
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
    unseen, legacy = _unseen(session, connection.id, page)
    if not unseen:
        return IngestResult()
    directory = directories.current(session, connection.org_id, directory)
    batch = _Batch(legacy=legacy)
    result = _collect(batch, connection, page, unseen, directory)
    for observation in batch.observations:  # counted when they were first seen
        if observation["source_id"] in legacy:
            result.seen -= 1
            status = str(observation["status"])
            setattr(result, status, getattr(result, status) - 1)
    if batch.received_from:
        _read_signatures(session, connection.org_id, batch)
    result.activities_created = _write(session, connection, batch, known)
    connection.messages_seen += result.seen
    connection.messages_imported += result.imported
    connection.messages_filtered += result.filtered
    connection.messages_failed += result.failed
    connection.activities_created += result.activities_created
    return result
