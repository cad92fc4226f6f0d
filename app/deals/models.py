"""Tables of this domain (registered on Base.metadata by app/tables.py).

The deal stays in app/models.py: app/contacts reads it (a company a deal holds is never
forgotten), and that domain sits below this one. Its contacts (deal_contacts) are in
app/contacts/models.py, for the same reason."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Date, ForeignKey, Index, Integer, Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base
from app.models import UTCDateTime, utcnow

# Rates keep 10 decimals: one unit of a weak currency can be worth 0.0000x of the reporting one.
Rate = Numeric(24, 10)


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
