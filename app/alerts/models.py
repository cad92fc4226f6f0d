"""Tables of this domain (registered on Base.metadata by app/tables.py)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base
from app.models import UTCDateTime, utcnow

_OPEN = text("resolved_at IS NULL")


class Alert(Base):
    """One opening of a condition (semantics §10) for one subject: open while `resolved_at` is
    NULL; a condition that returns after it cleared is a new row. The subject's ids are plain
    integers, not foreign keys: an alert outlives the deal or quota it was about."""

    __tablename__ = "alerts"
    __table_args__ = (
        # at most one open alert per condition and subject, whoever writes (two evaluations
        # racing past the lease included): the second insert fails and its transaction rolls
        # back. Partial unique indexes work alike on SQLite and PostgreSQL.
        Index(
            "ux_alerts_open",
            "org_id",
            "kind",
            "subject_key",
            unique=True,
            sqlite_where=_OPEN,
            postgresql_where=_OPEN,
        ),
        Index("ix_alerts_org_id", "org_id", "id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    subject_key: Mapped[str] = mapped_column(String(40))  # "quota:12", "deal:7", "user:3"...
    user_id: Mapped[int | None] = mapped_column(Integer)  # whose it is (visibility)
    team_id: Mapped[int | None] = mapped_column(Integer)
    deal_id: Mapped[int | None] = mapped_column(Integer)
    quota_id: Mapped[int | None] = mapped_column(Integer)
    connection_id: Mapped[int | None] = mapped_column(Integer)
    message: Mapped[str] = mapped_column(Text)
    evidence: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class AlertSettings(Base):
    """An organization's alert thresholds, as given (missing keys take the defaults)."""

    __tablename__ = "alert_settings"

    org_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True
    )
    thresholds: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class QuotaAttainment(Base):
    """The first time a quota reached attainment 1 in one of its periods (quota.attained is
    announced once per row)."""

    __tablename__ = "quota_attainments"
    __table_args__ = (UniqueConstraint("quota_id", "period_start"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    org_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), index=True
    )
    quota_id: Mapped[int] = mapped_column(ForeignKey("quotas.id", ondelete="CASCADE"))
    period_start: Mapped[date] = mapped_column(Date)
    attained_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
