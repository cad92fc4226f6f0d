"""Tables of this domain (registered on Base.metadata by app/tables.py).

With the contact and the company, the links and rollups that point at a contact, though
other domains write them: activity_contacts, contact_days and user_contacts (app/activities),
deal_contacts (app/deals). This domain reads them (who may see a contact, when it was last
met, whether anything still holds it), and both writers already import it; kept with their
writer, they would make this domain import one above it."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Date,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base
from app.models import UTCDateTime, utcnow


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


class ActivityContact(Base):
    __tablename__ = "activity_contacts"

    activity_id: Mapped[int] = mapped_column(
        ForeignKey("activities.id", ondelete="CASCADE"), primary_key=True
    )
    contact_id: Mapped[int] = mapped_column(
        ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True, index=True
    )


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


class DealContact(Base):
    __tablename__ = "deal_contacts"

    deal_id: Mapped[int] = mapped_column(
        ForeignKey("deals.id", ondelete="CASCADE"), primary_key=True
    )
    contact_id: Mapped[int] = mapped_column(
        ForeignKey("contacts.id", ondelete="CASCADE"), primary_key=True, index=True
    )
