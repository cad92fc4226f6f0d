"""Test facts: activities through the activity store (with the day rollups it keeps, as in
production), and deals as the deals service stores them, straight through the ORM."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.activities import store
from app.contacts.models import Contact
from app.models import Deal


def contact(session: Session, org_id: int, email: str) -> int:
    found = session.scalar(
        select(Contact.id).where(Contact.org_id == org_id, Contact.email == email)
    )
    if found is not None:
        return found
    row = Contact(org_id=org_id, email=email)
    session.add(row)
    session.flush()
    return row.id


def activity(
    session: Session,
    org_id: int,
    user_id: int,
    kind: str,
    at: datetime,
    contacts: Iterable[str] = (),
) -> None:
    """One activity at a UTC instant, linked to contacts (by e-mail, made on demand), written
    through the activity store, which keeps the day rollups the engine reads."""
    key = uuid.uuid4().hex
    row = {"user_id": user_id, "type": kind, "occurred_at": at, "source_key": key}
    links = {(key, user_id, kind): [contact(session, org_id, email) for email in contacts]}
    store.add(session, org_id, [row], links, shared={"provider": "imap", "subject": None})


def deal(
    session: Session,
    org_id: int,
    owner_id: int,
    *,
    created_at: datetime,
    status: str = "open",
    closed_at: datetime | None = None,
    value: str | int = 0,
    cost: str | int | None = None,
    currency: str = "EUR",
    stage: str | None = None,
    expected_close_date: Any = None,
    value_base: str | int | None = None,
    cost_base: str | int | None = None,
) -> Deal:
    """A deal as the deals service stores it; won/lost deals get their base amounts (EUR: same)."""
    closed = status != "open"
    amount = Decimal(value)
    row = Deal(
        org_id=org_id,
        owner_id=owner_id,
        name=f"deal {uuid.uuid4().hex[:6]}",
        value=amount,
        cost=None if cost is None else Decimal(cost),
        currency=currency,
        value_base=(Decimal(value_base) if value_base is not None else amount) if closed else None,
        cost_base=(
            (
                Decimal(cost_base)
                if cost_base is not None
                else (None if cost is None else Decimal(cost))
            )
            if closed
            else None
        ),
        stage=None if closed else (stage or "Proposal"),
        status=status,
        expected_close_date=expected_close_date,
        created_at=created_at,
        closed_at=closed_at if closed else None,
    )
    session.add(row)
    session.flush()
    return row


def utc(text: str, tz: str = "Europe/Brussels") -> datetime:
    """A wall-clock time in `tz` as a UTC instant."""
    return datetime.fromisoformat(text).replace(tzinfo=ZoneInfo(tz)).astimezone(UTC)
