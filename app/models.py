"""Every table. Timestamps are stored as UTC; periods are computed in the organization's zone."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any, overload

from sqlalchemy import (
    JSON,
    Boolean,
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
    func,
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


# Address keys are compared byte by byte, whatever the database's collation: their prefix
# ranges (a domain and its subdomains) must be contiguous in the index.
ADDRESS_KEY = String(320).with_variant(String(320, collation="C"), "postgresql")

# Money: exact decimals, never floats. 18 digits with 2 decimals holds 10^16 in any currency;
# rates keep 10 decimals (one unit of a weak currency can be worth 0.0000x of the reporting one).
Money = Numeric(18, 2)
Rate = Numeric(24, 10)


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


class ConnectionChange(Base):
    """A change asked of a connection while a worker held its row (app/connections/changes.py):
    new settings or credentials, or a sync request. The API appends it without waiting; the
    next write that holds the row (a worker's claim or the end of its run, or the next API
    write) applies the queue in order and deletes it."""

    __tablename__ = "connection_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    connection_id: Mapped[int] = mapped_column(
        ForeignKey("connections.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(10))  # "settings" or "sync"
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)  # never holds secrets
    secret: Mapped[bytes | None] = mapped_column(LargeBinary)  # Fernet token, as Connection's
    moved: Mapped[bool] = mapped_column(Boolean, default=False)  # the secret goes elsewhere now
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class OAuthFlow(Base):
    """An OAuth consent in progress: the provider's flow (state, PKCE verifier, nonce)
    encrypted, found by the hash of its state, used once, and only until it expires."""

    __tablename__ = "oauth_flows"

    state_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    provider: Mapped[str] = mapped_column(String(32))
    flow: Mapped[bytes] = mapped_column(LargeBinary)  # Fernet token of the flow's JSON
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


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


class Company(Base):
    __tablename__ = "companies"
    __table_args__ = (UniqueConstraint("org_id", "domain"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    domain: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Contact(Base):
    __tablename__ = "contacts"
    __table_args__ = (UniqueConstraint("org_id", "email"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    email: Mapped[str] = mapped_column(String(320))
    name: Mapped[str | None] = mapped_column(String(255))
    title: Mapped[str | None] = mapped_column(String(255))
    phones: Mapped[list[str]] = mapped_column(JSON, default=list)
    company_id: Mapped[int | None] = mapped_column(
        ForeignKey("companies.id", ondelete="SET NULL"), index=True
    )
    edited_fields: Mapped[list[str]] = mapped_column(JSON, default=list)  # set by a person
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


def _search_index(name: str, *columns: Any) -> Index:
    """GET /contacts?q= and /companies?q= (app/contacts/queries.py): trigrams of the lower-cased
    columns on PostgreSQL (migration 0007), a narrow B-tree a search scans on SQLite.

    On expressions, not the plain columns: pg_trgm serves `=` too, and the planner took a
    trigram index on `domain` for ingest's `domain = ANY(...)` look-up (134 µs/msg instead of
    ~5 in bench/ingest.py) over the unique B-tree."""
    labelled = [func.lower(column).label(f"{column.key}_lower") for column in columns]
    return Index(
        name,
        *labelled,
        postgresql_using="gin",
        postgresql_ops={e.name: "gin_trgm_ops" for e in labelled},
    )


_search_index("ix_companies_search", Company.name, Company.domain)
_search_index("ix_contacts_search", Contact.name, Contact.email)


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


class ActivityContact(Base):
    __tablename__ = "activity_contacts"

    activity_id: Mapped[int] = mapped_column(
        ForeignKey("activities.id", ondelete="CASCADE"), primary_key=True
    )
    contact_id: Mapped[int] = mapped_column(
        ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class Quota(Base):
    __tablename__ = "quotas"

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    metric: Mapped[str] = mapped_column(String(32))
    period: Mapped[str] = mapped_column(String(10))
    target: Mapped[Decimal] = mapped_column(Numeric(20, 4))
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    team_id: Mapped[int | None] = mapped_column(
        ForeignKey("teams.id", ondelete="CASCADE"), index=True
    )
    effective_from: Mapped[date] = mapped_column(Date)
    effective_to: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


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


class ContactDay(Base):
    """Stored rollup: a contact linked to a user's activities on one local day, how often, and
    the first and last moment of those activities.

    Keeps `contacts_engaged` an exact distinct count across days and team members."""

    __tablename__ = "contact_days"
    __table_args__ = (
        PrimaryKeyConstraint("user_id", "day", "contact_id"),
        # a contact's first and latest day found by probing, not by reading its history
        Index("ix_contact_days_contact_day", "contact_id", "day"),
    )

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    day: Mapped[date] = mapped_column(Date)
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    count: Mapped[int] = mapped_column(Integer)  # activity links; the row goes at 0
    # the earliest and latest occurred_at of those links: contacts' and companies' first and
    # latest interaction read from here, not from the whole history (app.contacts.queries)
    first_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_at: Mapped[datetime] = mapped_column(UTCDateTime)


class UserContact(Base):
    """Stored rollup: how many activity links join a user to a contact, over all time; the
    row goes at 0.

    The (user, contact) relation that decides which contacts a rep or a manager may see, and
    where their search starts: one row per pair, so a team's contacts are read in a few
    thousand index entries, not through every day of their history (contact_days)."""

    __tablename__ = "user_contacts"
    __table_args__ = (
        PrimaryKeyConstraint("user_id", "contact_id"),
        Index("ix_user_contacts_contact_user", "contact_id", "user_id"),
    )

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id", ondelete="CASCADE"))
    count: Mapped[int] = mapped_column(Integer)


class PipelineStage(Base):
    """One stage of an organization's pipeline, in order, with its win probability."""

    __tablename__ = "pipeline_stages"
    __table_args__ = (UniqueConstraint("org_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(100))
    probability: Mapped[Decimal] = mapped_column(Numeric(5, 4))  # 0..1
    rotten_days: Mapped[int] = mapped_column(Integer, default=14)


class ExchangeRate(Base):
    """The value of one unit of `currency` in the organization's currency, from a date on."""

    __tablename__ = "exchange_rates"
    __table_args__ = (UniqueConstraint("org_id", "currency", "effective_from"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    currency: Mapped[str] = mapped_column(String(3))
    rate: Mapped[Decimal] = mapped_column(Rate)
    effective_from: Mapped[date] = mapped_column(Date)


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


class DealContact(Base):
    __tablename__ = "deal_contacts"

    deal_id: Mapped[int] = mapped_column(
        ForeignKey("deals.id", ondelete="CASCADE"), primary_key=True
    )
    contact_id: Mapped[int] = mapped_column(
        ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class DealChange(Base):
    """Append-only history of a deal, one row per changed field. Kept after the deal is
    deleted (no foreign key to it), so what a report said on a past date can be rebuilt."""

    __tablename__ = "deal_changes"
    __table_args__ = (Index("ix_deal_changes_deal", "deal_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    deal_id: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    field: Mapped[str] = mapped_column(String(32))
    old: Mapped[Any] = mapped_column(JSON, nullable=True)
    new: Mapped[Any] = mapped_column(JSON, nullable=True)
    by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))


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
