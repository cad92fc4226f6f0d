"""Chat removal (semantics §11): a message deleted at its source stops counting. The mirror
of app.chat.service.ingest: the runs that held the removed messages are derived again from
what is left of them, and the stored chat_conversation activities follow.

Removing messages only shortens or splits runs, so the runs as they were before, whole, are
the whole span that can change: a run may end (no user or no external writer left), split
in two (the second part is a conversation with its own key), or start later (its key moves:
the old activities go, new ones come)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app.activities import directory as directories
from app.chat import conversations as rules
from app.chat.reconcile import Place, keys_of, reconcile
from app.chat.service import (
    DELETED,
    MESSAGES,
    IngestResult,
    affected_runs,
    gap_of,
    lock_existing_channel,
)
from app.db import insert_ignore, one_of
from app.models import utcnow
from connectors.chat import MAX_ID_LENGTH

# ids per statement: SQLite allows 32766 parameters; a deletion event names one message
PAGE = 1000


def forget(
    session: Session,
    org_id: int,
    *,
    source: str,
    channel_id: str,
    message_ids: Sequence[str],
) -> IngestResult:
    """Remove these messages of one channel and re-derive its conversations around them.
    Ids never stored (a deletion delivered twice, a message not imported yet) count as
    `duplicates`; every id is remembered as deleted, so a later delivery of it stores
    nothing. A channel never seen changes nothing (and is not created). The channel's
    participants stay.
    Flushes, never commits: one caller transaction per call."""
    nothing = IngestResult(0, len(message_ids), 0, 0, 0)
    wanted = sorted({i for i in message_ids if i and len(i) <= MAX_ID_LENGTH})
    # a channel never seen holds nothing to remove, and a removal must not create it
    channel = lock_existing_channel(session, org_id, source, channel_id) if wanted else None
    if channel is None:
        return nothing
    channel_pk, connection_id = channel
    # remembered even when not stored (yet): a sync's page read before the deletion and
    # committed after it must not bring the message back (service.ingest skips these)
    now = utcnow()
    insert_ignore(
        session,
        DELETED,
        [{"message_id": i, "deleted_at": now} for i in wanted],
        ["channel_pk", "message_id"],
        shared={"channel_pk": channel_pk},
    )
    found = _stored(session, channel_pk, wanted)
    if not found:
        return nothing
    gap = gap_of(session, org_id)
    span = affected_runs(session, channel_pk, {i: at for i, (_, at) in found.items()}, gap)
    pks = sorted(pk for pk, _ in found.values())
    for start in range(0, len(pks), PAGE):
        page = pks[start : start + PAGE]
        session.execute(delete(MESSAGES).where(one_of(session, MESSAGES.c.id, page)))
    place = Place(org_id, source, channel_id, connection_id)
    after = rules.runs([m for run in span for m in run if m.id not in found], gap)
    directory = directories.current(session, org_id, None)
    changes = reconcile(session, place, keys_of(place, span), after, directory)
    return IngestResult(
        stored=0,
        duplicates=len(message_ids) - len(found),
        activities_added=changes.added,
        activities_removed=changes.removed,
        activities_moved=changes.changed,
    )


def _stored(
    session: Session, channel_pk: int, message_ids: list[str]
) -> dict[str, tuple[int, datetime]]:
    """message id -> (row id, sent_at) of those of `message_ids` the channel holds."""
    c = MESSAGES.c
    found: dict[str, tuple[int, datetime]] = {}
    for start in range(0, len(message_ids), PAGE):
        page = message_ids[start : start + PAGE]
        query = select(c.message_id, c.id, c.sent_at).where(
            c.channel_pk == channel_pk, one_of(session, c.message_id, page)
        )
        found.update({i: (pk, at) for i, pk, at in session.execute(query)})
    return found
