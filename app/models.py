"""What every domain shares: the column types and enums, the organization and its people, and
the two tables that a domain reads below the one that writes them (the connection, read by
ingest; the deal, whose company app/contacts checks before it forgets one). A domain's own
tables are in app/<domain>/models.py, all registered by app/tables.py.

Timestamps are stored as UTC; periods are computed in the organization's zone."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, overload

from sqlalchemy import (
    JSON,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    Numeric,
    PrimaryKeyConstraint,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out, on SQLite (which keeps no zone) as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


@overload
def aggregated_utc(value: datetime) -> datetime: ...
@overload
def aggregated_utc(value: None) -> None: ...
def aggregated_utc(value: datetime | None) -> datetime | None:
    """A MIN/MAX of a UTCDateTime column: the aggregate loses the column type, and SQLite
    hands back a naive UTC datetime."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


class Role(StrEnum):
    admin = "admin"
    manager = "manager"
    rep = "rep"


class ConnectionStatus(StrEnum):
    pending = "pending"
    syncing = "syncing"
    idle = "idle"
    error = "error"
    needs_reconnect = "needs_reconnect"


class ActivityType(StrEnum):
    email_sent = "email_sent"
    email_received = "email_received"
    meeting_scheduled = "meeting_scheduled"
    meeting_held = "meeting_held"
    call = "call"
    chat_conversation = "chat_conversation"


class DealStatus(StrEnum):
    open = "open"
    won = "won"
    lost = "lost"


# Money: exact decimals, never floats. 18 digits with 2 decimals holds 10^16 in any currency.
Money = Numeric(18, 2)


class Organization(Base):
    __tablename__ = "organizations"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    domains: Mapped[list[str]] = mapped_column(JSON, default=list)
    timezone: Mapped[str] = mapped_column(String(64))
    week_start: Mapped[str] = mapped_column(String(10), default="monday")
    fiscal_year_start_month: Mapped[int] = mapped_column(Integer, default=1)
    # A regular expression matched against event titles (semantics §5); None: the default.
    call_pattern: Mapped[str | None] = mapped_column(String(500))
    # Telephony webhooks: settings shown in the API, and a Fernet token of the JSON secrets
    # (the generic webhook's signing secret, Twilio's auth token); never shown.
    telephony: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    telephony_secret: Mapped[bytes | None] = mapped_column(LargeBinary)
    # ISO 4217: the currency every report is in
    currency: Mapped[str] = mapped_column(String(3), default="EUR", server_default="EUR")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Team(Base):
    __tablename__ = "teams"

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    manager_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", use_alter=True, ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class User(Base):
    __tablename__ = "users"
    __table_args__ = (UniqueConstraint("org_id", "email"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    email: Mapped[str] = mapped_column(String(320))
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    team_id: Mapped[int | None] = mapped_column(
        ForeignKey("teams.id", ondelete="SET NULL"), index=True
    )
    phones: Mapped[list[str]] = mapped_column(JSON, default=list)  # E.164: telephony matching
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # set when the person left (DELETE /users/{id}): the row stays so past periods keep
    # their activities and deals; docs/operations.md "People leaving and the last admin"
    deactivated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class UserAddress(Base):
    """Every address a user sends or receives as: the primary one and each alias, lower-cased."""

    __tablename__ = "user_addresses"
    __table_args__ = (UniqueConstraint("org_id", "email"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    email: Mapped[str] = mapped_column(String(320))
    is_primary: Mapped[bool] = mapped_column(default=False)


class ApiKey(Base):
    """An API key, stored as the SHA-256 of the key (keys are 256-bit random, so no slow hash)."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Connection(Base):
    """A connected mailbox or calendar: its secret, cursors, schedule, lease and counts."""

    __tablename__ = "connections"
    __table_args__ = (Index("ix_connections_due", "next_sync_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    provider: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(20), default=ConnectionStatus.pending)
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # never holds secrets
    secret: Mapped[bytes | None] = mapped_column(LargeBinary)  # Fernet token of the JSON secrets
    cursors: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    last_synced_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # when it was recorded
    # when the run that holds the lease began (GET shows it while the lease holds)
    sync_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    next_sync_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # None: never scheduled
    failures: Mapped[int] = mapped_column(Integer, default=0)
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lease_epoch: Mapped[int] = mapped_column(Integer, default=0)
    messages_seen: Mapped[int] = mapped_column(Integer, default=0)
    messages_imported: Mapped[int] = mapped_column(Integer, default=0)
    messages_filtered: Mapped[int] = mapped_column(Integer, default=0)
    messages_failed: Mapped[int] = mapped_column(Integer, default=0)
    events_seen: Mapped[int] = mapped_column(Integer, default=0)
    activities_created: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Deal(Base):
    """An opportunity. Amounts in its own currency; `*_base` in the org's currency at the
    rate of its `closed_at` date (set while won or lost: the deal metrics sum them)."""

    __tablename__ = "deals"
    __table_args__ = (
        UniqueConstraint("org_id", "external_id"),
        Index("ix_deals_owner_created", "owner_id", "created_at"),
        Index("ix_deals_owner_closed", "owner_id", "closed_at"),
        Index("ix_deals_owner_open", "owner_id", "status", "expected_close_date"),
        # a deleted deal's id is never given again, so its kept history stays its own
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    company_id: Mapped[int | None] = mapped_column(
        ForeignKey("companies.id", ondelete="SET NULL"), index=True
    )
    value: Mapped[Decimal] = mapped_column(Money)
    cost: Mapped[Decimal | None] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3))
    value_base: Mapped[Decimal | None] = mapped_column(Money)
    cost_base: Mapped[Decimal | None] = mapped_column(Money)
    stage: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(8), default=DealStatus.open)
    expected_close_date: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    external_id: Mapped[str | None] = mapped_column(String(255))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WorkerHeartbeat(Base):
    """A sync worker's last sign of life, one row per worker process (the readiness check)."""

    __tablename__ = "worker_heartbeats"

    worker: Mapped[str] = mapped_column(String(200), primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    beat_at: Mapped[datetime] = mapped_column(UTCDateTime)


class RateLimitHit(Base):
    """Counted attempts of one limited subject (a client address, a key prefix) in one fixed
    window; shared by every API process through the database (app/ratelimit.py)."""

    __tablename__ = "rate_limit_hits"
    __table_args__ = (PrimaryKeyConstraint("subject", "window_start"),)

    subject: Mapped[str] = mapped_column(String(200))  # "<scope>:<address or prefix>"
    window_start: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    count: Mapped[int] = mapped_column(Integer)


class OrgJob(Base):
    """One periodic job of one organization (alerts, webhook delivery): when it is due, when it
    last ran, and its lease, epoch fenced as a connection's sync lease (app/jobs.py)."""

    __tablename__ = "org_jobs"
    __table_args__ = (PrimaryKeyConstraint("org_id", "job"),)

    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    job: Mapped[str] = mapped_column(String(40))
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lease_epoch: Mapped[int] = mapped_column(Integer, default=0)
