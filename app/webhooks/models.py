"""Tables of this domain (registered on Base.metadata by app/tables.py)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    JSON,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base
from app.models import UTCDateTime, utcnow


class WebhookStatus(StrEnum):
    active = "active"
    # the receiver answered 410 Gone (Standard Webhooks: stop sending); nothing is queued for it
    disabled = "disabled"


class DeliveryStatus(StrEnum):
    pending = "pending"
    delivered = "delivered"
    failed = "failed"


class Webhook(Base):
    """A receiver of an organization's events. `last_seq` numbers its deliveries: taken with an
    UPDATE in the announcing transaction, it locks the row until that transaction ends, so the
    order of the numbers is the order in which the announcements commit."""

    __tablename__ = "webhooks"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    url: Mapped[str] = mapped_column(String(2048))
    events: Mapped[list[str]] = mapped_column(JSON)
    # Fernet token of {"secret": "whsec_..."} (app/security.py); shown once, at creation
    secret: Mapped[bytes] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(String(10), default=WebhookStatus.active)
    disabled_reason: Mapped[str | None] = mapped_column(String(200))
    last_seq: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WebhookDelivery(Base):
    """One event for one webhook: the outbox row written with the change it announces, then
    the log of its delivery. Only the oldest pending delivery of a webhook has
    `next_attempt_at` (the ones behind it wait for it), so the due ones are an index range.
    `settled_at` is set once, when the delivery is delivered or fails for good; the log keeps
    it for the retention from then (app/webhooks/prune.py), a pending one whatever its age."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("webhook_id", "seq"),
        Index("ix_webhook_deliveries_queue", "webhook_id", "status", "seq"),
        Index("ix_webhook_deliveries_due", "next_attempt_at"),
        # the pruning's range (an organization's rows settled before a moment); it also
        # serves what an index on org_id alone did (the organization's cascade)
        Index("ix_webhook_deliveries_settled", "org_id", "settled_at"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    # the `webhook-id` header: one per announcement, the same on every attempt
    event_id: Mapped[str] = mapped_column(String(40))
    event: Mapped[str] = mapped_column(String(40))
    body: Mapped[str] = mapped_column(Text)  # the JSON sent, byte for byte on every attempt
    status: Mapped[str] = mapped_column(String(10), default=DeliveryStatus.pending)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_status_code: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(String(500))
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # null while pending
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
