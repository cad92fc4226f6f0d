"""Exchange rates: a deal's amount in the organization's reporting currency on a given day."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.models import ExchangeRate, Organization

CENT = Decimal("0.01")


class NoRate(LookupError):
    """The currency has no rate in force on the day asked."""

    def __init__(self, currency: str, day: date) -> None:
        super().__init__(f"no exchange rate for {currency} on {day.isoformat()}")
        self.currency = currency
        self.day = day


@dataclass(frozen=True, slots=True)
class RateBook:
    """An organization's rates: per currency, (effective_from, rate) sorted by date."""

    base: str
    rates: dict[str, tuple[tuple[date, Decimal], ...]] = field(default_factory=dict)

    @classmethod
    def of(cls, base: str, rows: Iterable[tuple[str, date, Decimal]]) -> RateBook:
        by_currency: dict[str, list[tuple[date, Decimal]]] = {}
        for currency, effective_from, rate in rows:
            by_currency.setdefault(currency, []).append((effective_from, rate))
        return cls(base, {c: tuple(sorted(r)) for c, r in by_currency.items()})

    def rate(self, currency: str, day: date) -> Decimal:
        """One unit of `currency` in the base currency on `day`; NoRate when none is in force."""
        if currency == self.base:
            return Decimal(1)
        dated = self.rates.get(currency, ())
        i = bisect_right(dated, day, key=lambda r: r[0]) - 1
        if i < 0:
            raise NoRate(currency, day)
        return dated[i][1]

    def has(self, currency: str) -> bool:
        return currency == self.base or currency in self.rates

    def convert(self, amount: Decimal, currency: str, day: date) -> Decimal:
        """`amount` of `currency` in the base currency on `day`, to the cent (banker's rounding)."""
        return (amount * self.rate(currency, day)).quantize(CENT, rounding=ROUND_HALF_EVEN)


def load_rates(session: Session, org_id: int) -> RateBook:
    base = session.scalar(select(Organization.currency).where(Organization.id == org_id))
    rows = session.execute(
        select(ExchangeRate.currency, ExchangeRate.effective_from, ExchangeRate.rate).where(
            ExchangeRate.org_id == org_id
        )
    )
    return RateBook.of(base or "EUR", ((c, d, r) for c, d, r in rows))
