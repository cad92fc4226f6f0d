"""Chat ingest (semantics §11): store new messages, re-derive the conversations around them,
bring the stored chat_conversation activities to exactly what they should be.

The result depends only on which messages exist: a conversation is a run of the channel's
messages, and adding messages only joins or extends runs, so re-deriving the runs that hold
a new message (and the old runs they swallowed) is enough. Every ingest of a channel holds
its row's lock, so two deliveries to one channel never derive from each other's half."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, select, update
from sqlalchemy.orm import Session

from app.access import require_role
from app.activities import directory as directories
from app.chat import conversations as rules
from app.chat.conversations import Sent
from app.chat.models import (
    DEFAULT_GAP_MINUTES,
    ChatChannel,
    ChatDeleted,
    ChatMessageRow,
    ChatParticipant,
    ChatSettings,
)
from app.chat.reconcile import Changes, Place, keys_of, reconcile
from app.chat.schemas import ChatSettingsBody
from app.db import insert_ignore, lookup
from app.errors import Unprocessable
from app.models import Role, User, utcnow
from connectors.chat import MAX_ADDRESS_LENGTH, MAX_ID_LENGTH, ChatMessage

CHANNELS = cast(Table, ChatChannel.__table__)
MESSAGES = cast(Table, ChatMessageRow.__table__)
PARTICIPANTS = cast(Table, ChatParticipant.__table__)
DELETED = cast(Table, ChatDeleted.__table__)
MAX_TEXT_LENGTH = 2**31 - 1  # an INTEGER column


@dataclass(frozen=True, slots=True)
class IngestResult:
    stored: int  # messages new to the channel
    duplicates: int  # messages already stored (or repeated in this call)
    activities_added: int
    activities_removed: int
    activities_moved: int  # kept, with a new time, subject or linked contacts


def gap_of(session: Session, org_id: int) -> timedelta:
    minutes = session.scalar(select(ChatSettings.gap_minutes).where(ChatSettings.org_id == org_id))
    return timedelta(minutes=minutes or DEFAULT_GAP_MINUTES)


def ingest(
    session: Session,
    org_id: int,
    *,
    source: str,
    channel_id: str,
    messages: Sequence[ChatMessage],
    participants: Sequence[str] = (),
    connection_id: int | None = None,
    name: str | None = None,
    kind: str | None = None,
    synced_to: datetime | None = None,
) -> IngestResult:
    """Store `messages` of one channel and re-derive its conversations around them.
    `participants`: e-mail addresses of the channel's members (senders are members anyway;
    only writers count). `name`, `kind`, `synced_to`: what the source says of the channel
    (kept when None). Flushes, never commits: one caller transaction per call.
    Raises Unprocessable (422) on an id, source or time the tables cannot hold."""
    _check(source, channel_id, messages)
    directory = directories.current(session, org_id, None)
    about = {"name": name and name[:200], "kind": kind and kind[:32], "synced_to": synced_to}
    channel_pk = lock_channel(
        session,
        org_id,
        source,
        channel_id,
        connection_id,
        about={k: v for k, v in about.items() if v is not None},
    )
    _store_participants(session, channel_pk, participants, messages)
    batch: dict[str, ChatMessage] = {}
    for message in messages:
        batch.setdefault(message.id, message)  # a second delivery changes nothing
    for message_id in deleted(session, channel_pk, sorted(batch)):
        del batch[message_id]  # its source deleted it: it no longer exists (§11)
    rows = [
        {
            "message_id": m.id,
            "sender": rules.address_of(m.sender),
            "sent_at": m.sent_at.astimezone(UTC),
            "text_length": m.text_length,
        }
        for m in batch.values()
    ]
    inserted = insert_ignore(
        session,
        MESSAGES,
        rows,
        ["channel_pk", "message_id"],
        returning=(MESSAGES.c.message_id,),
        shared={"channel_pk": channel_pk},
    )
    changes = Changes()
    if inserted:
        sent_at = {m.id: m.sent_at.astimezone(UTC) for m in batch.values()}
        new = {message_id: sent_at[message_id] for (message_id,) in inserted}
        place = Place(org_id, source, channel_id, connection_id)
        gap = gap_of(session, org_id)
        span = affected_runs(session, channel_pk, new, gap)
        before = rules.runs([m for run in span for m in run if m.id not in new], gap)
        changes = reconcile(session, place, keys_of(place, before), span, directory)
    return IngestResult(
        stored=len(inserted),
        duplicates=len(messages) - len(inserted),
        activities_added=changes.added,
        activities_removed=changes.removed,
        activities_moved=changes.changed,
    )


def deleted(session: Session, channel_pk: int, message_ids: Sequence[str]) -> set[str]:
    """Those of `message_ids` the channel's source said were deleted (chat_deleted)."""
    found = lookup(
        session, DELETED, ["message_id"], {"channel_pk": channel_pk}, "message_id", message_ids
    )
    return {message_id for (message_id,) in found}


def _check(source: str, channel_id: str, messages: Sequence[ChatMessage]) -> None:
    if not source or len(source) > 32:
        raise Unprocessable("source: 1 to 32 characters")
    if not channel_id or len(channel_id) > MAX_ID_LENGTH:
        raise Unprocessable(f"channel_id: 1 to {MAX_ID_LENGTH} characters")
    for message in messages:
        if not message.id or len(message.id) > MAX_ID_LENGTH:
            raise Unprocessable(f"message id: 1 to {MAX_ID_LENGTH} characters")
        if message.sent_at.tzinfo is None:
            raise Unprocessable(f"message {message.id}: sent_at has no time zone")
        if message.text_length is not None and not 0 <= message.text_length <= MAX_TEXT_LENGTH:
            raise Unprocessable(f"message {message.id}: text_length out of range")


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def lock_channel(
    session: Session,
    org_id: int,
    source: str,
    channel_id: str,
    connection_id: int | None,
    *,
    about: dict[str, Any] | None = None,
) -> int:
    """The channel's row, created if new and locked to the end of the transaction (an
    UPDATE: a row lock on PostgreSQL, the database's write lock on SQLite); `about` sets its
    name, kind or synced_to on the way."""
    identity = {"org_id": org_id, "source": source, "channel_id": channel_id}
    now = utcnow()
    insert_ignore(
        session,
        CHANNELS,
        [{"connection_id": connection_id, "created_at": now, "updated_at": now}],
        ["org_id", "source", "channel_id"],
        shared=identity,
    )
    values: dict[str, Any] = {"updated_at": now, **(about or {})}
    if connection_id is not None:
        values["connection_id"] = connection_id
    locked = lock_existing_channel(session, org_id, source, channel_id, values)
    assert locked is not None  # inserted just above, and nothing deletes it in between
    return locked[0]


def lock_existing_channel(
    session: Session,
    org_id: int,
    source: str,
    channel_id: str,
    values: dict[str, Any] | None = None,
) -> tuple[int, int | None] | None:
    """The channel's (id, connection_id), its row locked as `lock_channel` does, without
    creating it: None for a channel never seen."""
    identity = {"org_id": org_id, "source": source, "channel_id": channel_id}
    statement = (
        update(CHANNELS)
        .where(*(CHANNELS.c[name] == value for name, value in identity.items()))
        .values(**(values or {"updated_at": utcnow()}))
        .returning(CHANNELS.c.id, CHANNELS.c.connection_id)
    )
    row = session.execute(statement).one_or_none()
    return None if row is None else (int(row[0]), row[1])


def _store_participants(
    session: Session, channel_pk: int, listed: Sequence[str], messages: Sequence[ChatMessage]
) -> None:
    """The listed members and every sender (a sender is a participant even when the list
    leaves them out); unmappable ones are not kept."""
    found = {rules.address_of(a) for a in (*listed, *(m.sender for m in messages))}
    addresses = sorted(a for a in found if a is not None and len(a) <= MAX_ADDRESS_LENGTH)
    insert_ignore(
        session,
        PARTICIPANTS,
        [{"address": a} for a in addresses],
        ["channel_pk", "address"],
        shared={"channel_pk": channel_pk},
    )


def _load(
    session: Session, channel_pk: int, low: datetime | None, high: datetime | None
) -> list[Sent]:
    c = MESSAGES.c
    query = select(c.message_id, c.sender, c.sent_at).where(c.channel_pk == channel_pk)
    if low is not None:
        query = query.where(c.sent_at >= low)
    if high is not None:
        query = query.where(c.sent_at <= high)
    return [Sent(i, s, _utc(t)) for i, s, t in session.execute(query)]


def affected_runs(
    session: Session, channel_pk: int, new: dict[str, datetime], gap: timedelta
) -> list[list[Sent]]:
    """The channel's runs (as they are now) that hold a message of `new` (just stored, or
    about to be removed by app.chat.forget). Messages are read in a window around those,
    widened until the runs end inside it: a run is whole once a gap-long stretch with no
    message separates it from the window's edge."""
    earliest, latest = min(new.values()), max(new.values())
    reach = gap * 4
    while True:
        low = earliest - reach if reach < timedelta(days=3650) else None
        high = latest + reach if reach < timedelta(days=3650) else None
        span = [
            run
            for run in rules.runs(_load(session, channel_pk, low, high), gap)
            if any(m.id in new for m in run)
        ]
        whole_before = low is None or span[0][0].sent_at - gap >= low
        whole_after = high is None or span[-1][-1].sent_at + gap <= high
        if whole_before and whole_after:
            return span
        reach *= 4


def rederive(session: Session, org_id: int, *, previous_gap: timedelta | None = None) -> Changes:
    """Derive every channel's conversations again, from all its messages: after a change of
    the gap (`previous_gap`: the one the stored activities were derived with) or of the
    directory (users, aliases, internal domains). Reads every message of the organization."""
    directory = directories.current(session, org_id, None)
    gap = gap_of(session, org_id)
    total = Changes()
    channels = session.execute(
        select(CHANNELS.c.id, CHANNELS.c.source, CHANNELS.c.channel_id, CHANNELS.c.connection_id)
        .where(CHANNELS.c.org_id == org_id)
        .order_by(CHANNELS.c.id)
        .with_for_update()
    ).all()
    for channel_pk, source, channel_id, connection_id in channels:
        messages = _load(session, channel_pk, None, None)
        place = Place(org_id, source, channel_id, connection_id)
        before = keys_of(place, rules.runs(messages, previous_gap or gap))
        done = reconcile(session, place, before, rules.runs(messages, gap), directory)
        total.added += done.added
        total.removed += done.removed
        total.changed += done.changed
    return total


def settings_of(session: Session, org_id: int) -> ChatSettingsBody:
    return ChatSettingsBody(gap_minutes=int(gap_of(session, org_id) / timedelta(minutes=1)))


def replace_settings(session: Session, caller: User, data: ChatSettingsBody) -> ChatSettingsBody:
    """Admin only. A new gap re-derives every conversation in the same transaction."""
    require_role(caller, Role.admin)
    previous = gap_of(session, caller.org_id)
    row = session.get(ChatSettings, caller.org_id)
    if row is None:
        row = ChatSettings(org_id=caller.org_id)
        session.add(row)
    row.gap_minutes = data.gap_minutes
    row.updated_at = utcnow()
    session.flush()
    if gap_of(session, caller.org_id) != previous:
        rederive(session, caller.org_id, previous_gap=previous)
    return settings_of(session, caller.org_id)
