"""What the organization's chat channels hold, for readers: the channels of chat connections
(GET /connections) and every channel of the organization, whatever brought it (GET
/chat/channels). One query a page: the figures are counted from chat_messages."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from app.chat.models import ChatChannel, ChatMessageRow
from app.chat.schemas import ChannelRead

MAX_PER_CONNECTION = 1000  # a connection's view stays one response however many it reads


def _figures() -> Select[ChatChannel, int, datetime]:
    latest = func.max(ChatMessageRow.sent_at)
    return (
        select(ChatChannel, func.count(ChatMessageRow.id), latest)
        .outerjoin(ChatMessageRow, ChatMessageRow.channel_pk == ChatChannel.id)
        .group_by(ChatChannel.id)  # its other columns depend on it (PostgreSQL allows them)
    )


def _read(channel: ChatChannel, count: int, latest: datetime | None) -> ChannelRead:
    return ChannelRead(
        id=channel.id,
        source=channel.source,
        channel_id=channel.channel_id,
        name=channel.name,
        kind=channel.kind,
        connection_id=channel.connection_id,
        messages=count,
        last_message_at=latest,
        synced_to=channel.synced_to,
        created_at=channel.created_at,
    )


def of_connections(session: Session, connection_ids: Sequence[int]) -> dict[int, list[ChannelRead]]:
    """Each connection's channels, the latest message first (silent ones last), at most
    MAX_PER_CONNECTION each."""
    found: dict[int, list[ChannelRead]] = {c: [] for c in connection_ids}
    if not connection_ids:
        return found
    rows = session.execute(
        _figures()
        .where(ChatChannel.connection_id.in_(connection_ids))
        .order_by(func.max(ChatMessageRow.sent_at).desc().nulls_last(), ChatChannel.channel_id)
    ).all()
    for channel, count, latest in rows:
        shown = found.get(channel.connection_id or 0)
        if shown is not None and len(shown) < MAX_PER_CONNECTION:
            shown.append(_read(channel, count, latest))
    return found


def page(
    session: Session, org_id: int, *, source: str | None, before: int | None, limit: int
) -> list[ChannelRead]:
    """The organization's channels, newest first (by when Tally first heard of them)."""
    query = _figures().where(ChatChannel.org_id == org_id)
    if source is not None:
        query = query.where(ChatChannel.source == source)
    if before is not None:
        query = query.where(ChatChannel.id < before)
    rows = session.execute(query.order_by(ChatChannel.id.desc()).limit(limit)).all()
    return [_read(channel, count, latest) for channel, count, latest in rows]
