"""Exchange rates in force for an organization, and deals' amounts in its currency."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.access import require_role
from app.deals import schemas
from app.deals.currency import NoRate, RateBook, load_rates
from app.deals.models import ExchangeRate
from app.errors import Conflict, Unprocessable
from app.models import Deal, DealStatus, Organization, Role, User, utcnow


def local_day(moment: datetime, tz: ZoneInfo) -> date:
    return moment.astimezone(tz).date()


def base_amounts(
    book: RateBook,
    tz: ZoneInfo,
    *,
    status: str,
    value: Decimal,
    cost: Decimal | None,
    currency: str,
    closed_at: datetime | None,
    today: date,
) -> tuple[Decimal | None, Decimal | None]:
    """(value_base, cost_base): converted at the rate of the closed_at date while won or lost,
    None while open; raises Unprocessable naming the currency when no rate is in force (on
    the closed_at date, or today for an open deal, whose forecasts convert at today's rate)."""
    closed = status != DealStatus.open and closed_at is not None
    day = local_day(closed_at, tz) if closed and closed_at is not None else today
    try:
        book.rate(currency, day)
    except NoRate as error:
        raise Unprocessable(
            f"no exchange rate for {currency} in force on {day.isoformat()}: "
            f"add one with PUT /org/exchange-rates (the organization reports in {book.base})"
        ) from error
    if not closed:
        return None, None
    return (
        book.convert(value, currency, day),
        None if cost is None else book.convert(cost, currency, day),
    )


def org_zone(session: Session, org_id: int) -> ZoneInfo:
    return ZoneInfo(session.get_one(Organization, org_id).timezone)


def rebase(session: Session, org_id: int, book: RateBook) -> None:
    """Recompute value_base/cost_base of the organization's deals in other currencies with
    `book`: 422 when one would be left without a rate (the caller's transaction then rolls
    back). Deals in the organization's own currency never change."""
    tz = org_zone(session, org_id)
    today = local_day(utcnow(), tz)
    query = select(Deal).where(Deal.org_id == org_id, Deal.currency != book.base)
    for deal in session.scalars(query.order_by(Deal.id)):
        try:
            value_base, cost_base = base_amounts(
                book,
                tz,
                status=deal.status,
                value=deal.value,
                cost=deal.cost,
                currency=deal.currency,
                closed_at=deal.closed_at,
                today=today,
            )
        except Unprocessable as error:
            # the rates (or zone) asked for are fine on their own: they clash with a stored deal
            raise Conflict(f"deal {deal.id} would be left without a rate: {error}") from error
        if (deal.value_base, deal.cost_base) != (value_base, cost_base):
            deal.value_base, deal.cost_base = value_base, cost_base


def read(session: Session, org_id: int) -> schemas.RatesRead:
    org = session.get_one(Organization, org_id)
    rows = session.scalars(
        select(ExchangeRate)
        .where(ExchangeRate.org_id == org_id)
        .order_by(ExchangeRate.currency, ExchangeRate.effective_from)
    )
    return schemas.RatesRead(
        currency=org.currency,
        rates=[
            schemas.RateRead(currency=r.currency, rate=r.rate, effective_from=r.effective_from)
            for r in rows
        ],
    )


def replace_rates(session: Session, org_id: int, data: schemas.RatesUpdate) -> None:
    base = session.get_one(Organization, org_id).currency
    if any(r.currency == base for r in data.rates):
        # a conflict with the organization's settings, not a malformed rate
        raise Conflict(f"{base} is the organization's own currency: its rate is always 1")
    for row in session.scalars(select(ExchangeRate).where(ExchangeRate.org_id == org_id)):
        session.delete(row)
    session.flush()
    for rate in data.rates:
        session.add(
            ExchangeRate(
                org_id=org_id,
                currency=rate.currency,
                rate=rate.rate,
                effective_from=rate.effective_from,
            )
        )
    session.flush()
    rebase(session, org_id, load_rates(session, org_id))


def replace_for(session: Session, caller: User, data: schemas.RatesUpdate) -> schemas.RatesRead:
    require_role(caller, Role.admin)
    replace_rates(session, caller.org_id, data)
    return read(session, caller.org_id)
