"""What each deal carries into each metric (semantics §8), table-driven, without a database."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest

from app.deals.currency import RateBook
from app.metrics.catalogue import METRICS, Amount, Metric, Value
from app.metrics.days import Bounds
from app.metrics.deals import DealFact, OpenDeal, cycle_days, pipeline, pool
from tests.metrics.facts import utc

BRUSSELS = ZoneInfo("Europe/Brussels")
# Brussels months around the end of a fiscal year starting in April, and a DST change (31 March)
MARCH: Bounds = (utc("2024-03-01T00:00"), utc("2024-04-01T00:00"))
APRIL: Bounds = (utc("2024-04-01T00:00"), utc("2024-05-01T00:00"))
MONTHS = [MARCH, APRIL]


def fact(
    status: str,
    created: str,
    closed: str | None = None,
    value: str | None = "100",
    cost: str | None = None,
) -> DealFact:
    return DealFact(
        status=status,
        created_at=utc(created),
        closed_at=None if closed is None else utc(closed),
        value_base=None if value is None or status == "open" else Decimal(value),
        cost_base=None if cost is None else Decimal(cost),
    )


def measured(metric: Metric, deals: list[DealFact]) -> list[Value]:
    definition = METRICS[metric]
    return [p.value(definition) for p in pool(definition, deals, MONTHS, BRUSSELS)]


@pytest.mark.parametrize(
    ("created", "closed", "days"),
    [
        ("2024-03-10T09:00", "2024-03-10T23:59", 0),  # same day: 0
        ("2024-03-10T23:30", "2024-03-11T00:10", 1),  # 40 minutes, but another local day
        ("2024-03-30T12:00", "2024-04-01T12:00", 2),  # across spring forward: calendar days
        ("2024-10-26T12:00", "2024-10-28T11:00", 2),  # across fall back
        ("2023-12-31T23:30", "2024-01-01T00:30", 1),  # UTC says the same day; Brussels does not
        ("2024-03-10T09:00", "2024-03-05T09:00", 0),  # imported, closed before created
    ],
)
def test_cycle_days_are_local_calendar_days(created: str, closed: str, days: int) -> None:
    assert cycle_days(utc(created), utc(closed), BRUSSELS) == days


WON_MARCH = fact("won", "2024-03-01T10:00", "2024-03-11T10:00", "1000", "400")
WON_APRIL = fact("won", "2024-03-20T10:00", "2024-04-01T00:30", "500")  # 22:30 UTC on 31 March
LOST_MARCH = fact("lost", "2024-02-01T10:00", "2024-03-31T23:59", "700")
LOST_APRIL = fact("lost", "2024-04-02T10:00", "2024-04-30T10:00", "900")
OPEN = fact("open", "2024-03-05T10:00")
REOPENED = fact("open", "2024-03-02T10:00")  # was won in March; reopened: its closed_at is gone
ALL = [WON_MARCH, WON_APRIL, LOST_MARCH, LOST_APRIL, OPEN, REOPENED]


@pytest.mark.parametrize(
    ("metric", "deals", "expected"),
    [
        (Metric.opportunities_created, ALL, [4, 1]),  # by created_at, any status
        (Metric.deals_won, ALL, [1, 1]),
        (Metric.revenue, ALL, [Decimal(1000), Decimal(500)]),
        (Metric.gross_margin, ALL, [Decimal(600), Decimal(500)]),  # missing cost = 0
        (Metric.avg_deal_value, ALL, [Decimal(1000), Decimal(500)]),
        (Metric.sales_cycle_days, ALL, [Decimal(10), Decimal(12)]),
        (Metric.win_rate, ALL, [Decimal("0.5"), Decimal("0.5")]),  # lost and won apart
        # a deal won in March and lost later counts as lost, where its closed_at now is
        (Metric.win_rate, [fact("lost", "2024-03-01T09:00", "2024-04-03T09:00")], [None, 0]),
        # empty periods: 0 for counts and sums, null for ratios and means
        (Metric.deals_won, [], [0, 0]),
        (Metric.revenue, [], [Decimal(0), Decimal(0)]),
        (Metric.win_rate, [], [None, None]),
        (Metric.avg_deal_value, [OPEN], [None, None]),
        (Metric.sales_cycle_days, [LOST_MARCH], [None, None]),
        (Metric.win_rate, [LOST_MARCH], [Decimal(0), None]),
        # revalued after the win: counts with its current value
        (
            Metric.revenue,
            [fact("won", "2024-03-01T10:00", "2024-03-02T10:00", "1250.50")],
            [Decimal("1250.50"), Decimal(0)],
        ),
        # margin below zero is possible when cost exceeds value
        (
            Metric.gross_margin,
            [fact("won", "2024-03-01T10:00", "2024-03-02T10:00", "100", "150")],
            [Decimal(-50), Decimal(0)],
        ),
        # pooled means, never means of means: (10 + 0 + 2) / 3
        (
            Metric.sales_cycle_days,
            [
                WON_MARCH,
                fact("won", "2024-03-12T08:00", "2024-03-12T18:00"),
                fact("won", "2024-03-12T08:00", "2024-03-14T18:00"),
            ],
            [Decimal(4), None],
        ),
        # outside every bound
        (Metric.deals_won, [fact("won", "2024-01-01T10:00", "2024-05-01T00:00")], [0, 0]),
    ],
)
def test_pool(metric: Metric, deals: list[DealFact], expected: list[Value]) -> None:
    assert measured(metric, deals) == expected


def test_pooled_components_add_across_periods() -> None:
    definition = METRICS[Metric.win_rate]
    march, april = pool(definition, ALL, MONTHS, BRUSSELS)
    both = pool(definition, ALL, [(MARCH[0], APRIL[1])], BRUSSELS)[0]
    assert march + april == both
    assert both.value(definition) == Decimal("0.5")


RATES = RateBook.of(
    "EUR",
    [("USD", date(2024, 1, 1), Decimal("0.9")), ("USD", date(2024, 6, 1), Decimal("0.8"))],
)


def open_deal(
    value: str, probability: str, currency: str = "EUR", cost: str | None = None
) -> OpenDeal:
    return OpenDeal(
        Decimal(value), None if cost is None else Decimal(cost), currency, Decimal(probability)
    )


@pytest.mark.parametrize(
    ("kind", "deals", "day", "weighted", "unweighted"),
    [
        (Amount.value, [], date(2024, 5, 1), "0", "0"),
        (
            Amount.value,
            [open_deal("1000", "0.5"), open_deal("200", "0.25")],
            date(2024, 5, 1),
            "550",
            "1200",
        ),
        (
            Amount.one,
            [open_deal("1000", "0.5"), open_deal("200", "0.25")],
            date(2024, 5, 1),
            "0.75",
            "2",
        ),
        (
            Amount.margin,
            [open_deal("1000", "0.5", cost="600"), open_deal("200", "1")],
            date(2024, 5, 1),
            "400",
            "600",
        ),
        # converted at the question day's rate
        (Amount.value, [open_deal("1000", "0.5", "USD")], date(2024, 5, 31), "450", "900"),
        (Amount.value, [open_deal("1000", "0.5", "USD")], date(2024, 6, 1), "400", "800"),
        (
            Amount.margin,
            [open_deal("1000", "1", "USD", cost="100")],
            date(2024, 6, 1),
            "720",
            "720",
        ),
        # before the currency's first rate: its earliest rate
        (Amount.value, [open_deal("1000", "1", "USD")], date(2023, 5, 1), "900", "900"),
        # a currency without any rate is left out
        (
            Amount.value,
            [open_deal("1000", "1", "GBP"), open_deal("10", "1")],
            date(2024, 5, 1),
            "10",
            "10",
        ),
    ],
)
def test_pipeline(
    kind: Amount, deals: list[OpenDeal], day: date, weighted: str, unweighted: str
) -> None:
    view = pipeline(kind, deals, RATES, day)
    assert (view.weighted, view.unweighted) == (Decimal(weighted), Decimal(unweighted))


def test_a_period_starts_at_local_midnight() -> None:
    # Closed at April's first instant: April's. One microsecond earlier: March's.
    start = APRIL[0]
    edge = DealFact("won", start, start, Decimal(1), None)
    before = DealFact("won", start, start - timedelta(microseconds=1), Decimal(1), None)
    assert measured(Metric.deals_won, [edge]) == [0, 1]
    assert measured(Metric.deals_won, [before]) == [1, 0]
