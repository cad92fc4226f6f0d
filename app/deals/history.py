"""A deal's append-only history: one row per changed field, plus its creation and deletion."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.deals import schemas
from app.deals.models import DealChange
from app.deals.rules import MONEY_FIELDS
from app.models import Deal, utcnow

CREATED = "created"
DELETED = "deleted"


def record(
    session: Session,
    deal: Deal,
    changes: Sequence[tuple[str, Any, Any]],
    *,
    by_user_id: int | None,
    at: datetime | None = None,
) -> None:
    moment = at or utcnow()
    for field, old, new in changes:
        session.add(
            DealChange(
                org_id=deal.org_id,
                deal_id=deal.id,
                at=moment,
                field=field,
                old=old,
                new=new,
                by_user_id=by_user_id,
            )
        )


def page(session: Session, deal: Deal, *, after: int | None, limit: int) -> list[DealChange]:
    """The deal's rows, oldest first (deal ids are never reused, on SQLite neither)."""
    query = select(DealChange).where(
        DealChange.org_id == deal.org_id, DealChange.deal_id == deal.id
    )
    if after is not None:
        query = query.where(DealChange.id > after)
    return list(session.scalars(query.order_by(DealChange.id).limit(limit)))


def _out(field: str, value: Any) -> Any:
    """Money is kept as exact strings in the JSON column and goes out as a JSON number."""
    if value is None:
        return None
    if field in MONEY_FIELDS:
        return schemas.json_number(Decimal(value))
    if field in (CREATED, DELETED) and isinstance(value, dict):
        return {k: _out(k, v) for k, v in value.items()}
    return value


def read(change: DealChange) -> schemas.DealChangeRead:
    return schemas.DealChangeRead(
        at=change.at,
        field=change.field,
        old=_out(change.field, change.old),
        new=_out(change.field, change.new),
        by_user_id=change.by_user_id,
    )
