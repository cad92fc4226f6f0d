"""Exchange rates: a deal's amount in the organization's reporting currency on a given day."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.deals.models import ExchangeRate
from app.models import Organization

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

    def convert_open(self, amount: Decimal, currency: str, day: date) -> Decimal | None:
        """`amount` of an open deal (a forecast, a pipeline) at the rate in force on `day`.

        Before a currency's first rate (a question about a past day), its earliest rate: the
        deal was accepted with a rate, and leaving it out would hide it from the forecast. A
        currency with no rate at all (removed since) gives None: the deal is left out.
        """
        try:
            return self.convert(amount, currency, day)
        except NoRate:
            dated = self.rates.get(currency)
            if not dated:
                return None
            return self.convert(amount, currency, dated[0][0])


def load_rates(session: Session, org_id: int) -> RateBook:
    base = session.scalar(select(Organization.currency).where(Organization.id == org_id))
    rows = session.execute(
        select(ExchangeRate.currency, ExchangeRate.effective_from, ExchangeRate.rate).where(
            ExchangeRate.org_id == org_id
        )
    )
    return RateBook.of(base or "EUR", ((c, d, r) for c, d, r in rows))


# ISO 4217 active codes (2024 list, funds and precious metals left out): a deal or an
# organization names its currency with one of them.
_ISO_4217_CODES = """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN
    BWP BYN BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD
    FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY
    KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP
    MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR
    RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT
    TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VED VES VND VUV WST XAF XCD XCG XOF XPF YER
    ZAR ZMW ZWG
"""
ISO_4217 = frozenset(_ISO_4217_CODES.split())
