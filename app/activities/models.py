"""Tables of this domain (registered on Base.metadata by app/tables.py): messages and their
copies, events, activities and their daily count, and the directory's re-evaluation.

The activity-contact links and the contact rollups are in app/contacts/models.py:
app/contacts reads them, and that domain sits below this one."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base
from app.models import UTCDateTime, utcnow

# Address keys are compared byte by byte, whatever the database's collation: their prefix
# ranges (a domain and its subdomains) must be contiguous in the index.
ADDRESS_KEY = String(320).with_variant(String(320, collation="C"), "postgresql")


class Message(Base):
    """One email, once per organization however many mailboxes hold it."""

    __tablename__ = "messages"
    __table_args__ = (UniqueConstraint("org_id", "key_hash"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    key_hash: Mapped[str] = mapped_column(String(64))  # sha256 of the message identity
    message_id: Mapped[str | None] = mapped_column(Text)
    occurred_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    subject: Mapped[str | None] = mapped_column(Text)
    sender: Mapped[str | None] = mapped_column(String(320))
    kind: Mapped[str] = mapped_column(String(20))  # email | internal | unrelated, first copy's
    # What inference reads besides the subject and date (app/activities/facts.py): addresses
    # by role with display names, Bcc as the union of the copies'. None: stored before
    # migration 0012, which cannot be inferred again.
    facts: Mapped[dict[str, Any] | None] = mapped_column(JSON)


class MessageAddress(Base):
    """Which messages an address is on (any role), to find the ones a change of the
    directory concerns without reading the others. `address_key` is the address with its
    domain's labels reversed (`com.enron@phillip.allen`), so that one index also answers
    "every address at this domain and its subdomains" as two prefix ranges."""

    __tablename__ = "message_addresses"
    __table_args__ = (PrimaryKeyConstraint("org_id", "address_key", "message_id"),)

    # No foreign keys (and so no index on message_id for a cascade): ingest writes ~3.5 of
    # these per message, and a key check and a second index made them cost more than the
    # message itself (bench/README.md). An entry whose message was deleted (a purge) only
    # makes a later re-evaluation look for that message and skip it.
    org_id: Mapped[int] = mapped_column(Integer)
    address_key: Mapped[str] = mapped_column(ADDRESS_KEY)
    message_id: Mapped[int] = mapped_column(Integer)


class Observation(Base):
    """One mailbox's copy of a message (or an item it could not read): the idempotency key."""

    __tablename__ = "observations"
    __table_args__ = (UniqueConstraint("connection_id", "source_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    connection_id: Mapped[int] = mapped_column(ForeignKey("connections.id", ondelete="CASCADE"))
    source_id: Mapped[str] = mapped_column(String(512))
    message_pk: Mapped[int | None] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), index=True
    )
    status: Mapped[str] = mapped_column(String(10))  # imported | filtered | failed: at first sight
    reason: Mapped[str | None] = mapped_column(Text)
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # The copy's part in inference: in its mailbox's sent folder, and its provider date when
    # the message has no Date header (the earliest copy dates it). None: before 0012.
    sent: Mapped[bool | None] = mapped_column(Boolean)
    provider_date: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Activity(Base):
    __tablename__ = "activities"
    __table_args__ = (
        UniqueConstraint("org_id", "source_key", "user_id", "type"),
        # every read of activities names its users (what the caller may see), so the
        # (user, time) index serves them all; an (org, time) one only slowed ingest
        Index("ix_activities_user_time", "user_id", "occurred_at"),
        # GET /activities?type=: a user's newest of one type without reading the others
        # (calls are a few percent of a history); measured cost in docs/operations.md
        Index("ix_activities_user_type_time", "user_id", "type", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(24))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    source_key: Mapped[str] = mapped_column(String(64))  # the message's key_hash, or an event key
    message_pk: Mapped[int | None] = mapped_column(
        ForeignKey("messages.id", ondelete="CASCADE"), index=True
    )
    subject: Mapped[str | None] = mapped_column(Text)
    connection_id: Mapped[int | None] = mapped_column(
        ForeignKey("connections.id", ondelete="SET NULL"), index=True
    )
    provider: Mapped[str] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class EventCopy(Base):
    """One occurrence of a calendar event as one connected calendar holds it.

    The copies of an event in several users' calendars share `event_key` (UID + original
    start); the event's activities are recomputed from all its live copies whenever one
    changes, and once more when it ends (`settled`)."""

    __tablename__ = "event_copies"
    __table_args__ = (
        UniqueConstraint("connection_id", "source_id"),
        Index("ix_event_copies_key", "org_id", "event_key"),
        Index("ix_event_copies_unsettled", "settled", "ends_at"),
        Index("ix_event_copies_resource", "connection_id", "resource"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    connection_id: Mapped[int] = mapped_column(ForeignKey("connections.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    resource: Mapped[str] = mapped_column(String(1024))
    source_id: Mapped[str] = mapped_column(String(1024))
    event_key: Mapped[str] = mapped_column(String(64))  # sha256 of UID + original start
    version: Mapped[str] = mapped_column(String(256))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)  # the RemoteEvent, as JSON
    settled: Mapped[bool] = mapped_column(default=False)  # recomputed after it ended
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class EventAddress(Base):
    """Which events an address takes part in (organizer or attendee, any copy), keyed as
    MessageAddress is. Entries are only added: one left by a copy that changed since costs a
    needless recomputation of its event, never a wrong one."""

    __tablename__ = "event_addresses"
    __table_args__ = (PrimaryKeyConstraint("org_id", "address_key", "event_key"),)

    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    address_key: Mapped[str] = mapped_column(ADDRESS_KEY)
    event_key: Mapped[str] = mapped_column(String(64))


class ActivityDay(Base):
    """Stored rollup: how many activities of a type a user has on one local day of the org.

    Maintained in the same transaction as the activities it counts (app.activities.store);
    every period unit is a union of local days, so metric reads add days, never rows."""

    __tablename__ = "activity_days"
    __table_args__ = (PrimaryKeyConstraint("user_id", "day", "type"),)

    # no org_id: every read names its users, and the rows go with their user (an org_id with
    # its foreign key and index cost ingest a check and an index entry per new row)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    day: Mapped[date] = mapped_column(Date)
    type: Mapped[str] = mapped_column(String(24))
    count: Mapped[int] = mapped_column(Integer)


class DirectoryVersion(Base):
    """+1 with every change of who is a user or what is internal (app/activities/
    directory.py): the row every transaction that infers holds a share lock of, and a change
    updates. A table of its own, so that nothing else (an update of the organization, a
    re-evaluation's progress) ever waits for those locks. Made on first use."""

    __tablename__ = "directory_versions"

    org_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer, default=0)


class DirectoryChange(Base):
    """A change of the directory waiting for the re-evaluation job (app/activities/
    reevaluate.py): the address keys and internal domains whose mail and events it concerns.
    Appended by the change's own transaction, taken and deleted by the job."""

    __tablename__ = "directory_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    addresses: Mapped[list[str]] = mapped_column(JSON, default=list)  # address keys
    domains: Mapped[list[str]] = mapped_column(JSON, default=list)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Reevaluation(Base):
    """An organization's re-evaluation job: its lease (one process at a time, epoch fenced
    like a connection's) and its progress, shown by GET /org/reevaluation."""

    __tablename__ = "reevaluations"

    org_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True
    )
    done: Mapped[int] = mapped_column(Integer, default=0)  # items of the run re-derived
    total: Mapped[int] = mapped_column(Integer, default=0)  # items of the run so far
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lease_owner: Mapped[str | None] = mapped_column(String(100))
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lease_epoch: Mapped[int] = mapped_column(Integer, default=0)


class ReevaluationMessage(Base):
    """A message the running re-evaluation still has to derive again: the job's cursor (a
    page's items are deleted in the page's transaction, so a crash repeats at most one)."""

    __tablename__ = "reevaluation_messages"
    __table_args__ = (PrimaryKeyConstraint("org_id", "message_id"),)

    # no foreign keys: an item whose message went meanwhile (a purge) is skipped
    org_id: Mapped[int] = mapped_column(Integer)
    message_id: Mapped[int] = mapped_column(Integer)


class ReevaluationEvent(Base):
    """An event (key) the running re-evaluation still has to recompute."""

    __tablename__ = "reevaluation_events"
    __table_args__ = (PrimaryKeyConstraint("org_id", "event_key"),)

    org_id: Mapped[int] = mapped_column(Integer)
    event_key: Mapped[str] = mapped_column(String(64))
