"""Tables of this domain (registered on Base.metadata by app/tables.py).

The links that other domains write to a contact (activity_contacts, deal_contacts and the
rollups contact_days, user_contacts) stay in app/models.py: this domain reads them, and its
writers sit above it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, UniqueConstraint, func
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
