"""Tables of this domain (registered on Base.metadata by app/tables.py).

A message keeps who sent it, when, and how long it was: never its text (semantics §11).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base
from app.models import UTCDateTime, utcnow

DEFAULT_GAP_MINUTES = 240


class ChatChannel(Base):
    """One conversation place of one source (a Slack channel, a WhatsApp number's chat with
    one customer, a website chat session). Its row is also the lock that serializes the
    ingests of the channel: a conversation is derived from all of the channel's messages."""

    __tablename__ = "chat_channels"
    __table_args__ = (UniqueConstraint("org_id", "source", "channel_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(32))
    channel_id: Mapped[str] = mapped_column(String(200))
    connection_id: Mapped[int | None] = mapped_column(
        ForeignKey("connections.id", ondelete="SET NULL"), index=True
    )
    # as the source last showed them (#acme-deal, the person of a DM); NULL: never said
    name: Mapped[str | None] = mapped_column(String(200))
    kind: Mapped[str | None] = mapped_column(String(32))
    # everything the channel had up to then is stored (a connector that reads whole
    # channels says so); NULL: not known, e.g. during its first backfill
    synced_to: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ChatMessageRow(Base):
    """One message; its identity is (channel, message id): a second delivery changes nothing."""

    __tablename__ = "chat_messages"
    __table_args__ = (
        UniqueConstraint("channel_pk", "message_id"),
        # the runs around new messages: a channel's messages by time
        Index("ix_chat_messages_channel_time", "channel_pk", "sent_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    channel_pk: Mapped[int] = mapped_column(ForeignKey("chat_channels.id", ondelete="CASCADE"))
    message_id: Mapped[str] = mapped_column(String(200))
    # lower-cased e-mail address; NULL: unmappable (no sender, or not an address)
    sender: Mapped[str | None] = mapped_column(String(320))
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime)
    text_length: Mapped[int | None] = mapped_column(Integer)


class ChatDeleted(Base):
    """A message its source said was deleted (app/chat/forget.py). Kept so that a delivery
    of it that was already on its way (a sync's page read before the deletion, committed
    after) does not bring it back: a deleted message stays deleted."""

    __tablename__ = "chat_deleted"

    channel_pk: Mapped[int] = mapped_column(
        ForeignKey("chat_channels.id", ondelete="CASCADE"), primary_key=True
    )
    message_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    deleted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ChatParticipant(Base):
    """An address a source listed as a member of the channel (lower-cased). Only writers
    count for conversations; the list is kept for the record (who could read)."""

    __tablename__ = "chat_participants"

    channel_pk: Mapped[int] = mapped_column(
        ForeignKey("chat_channels.id", ondelete="CASCADE"), primary_key=True
    )
    address: Mapped[str] = mapped_column(String(320), primary_key=True)


class ChatSettings(Base):
    """An organization's chat settings; no row: the defaults."""

    __tablename__ = "chat_settings"

    org_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True
    )
    gap_minutes: Mapped[int] = mapped_column(Integer, default=DEFAULT_GAP_MINUTES)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
