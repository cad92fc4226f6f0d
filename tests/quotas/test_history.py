"""The trailing window and the suggested quota (semantics §9), without a database."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest

from app.metrics.catalogue import METRICS, Metric, Pooled, Value
from app.metrics.periods import Calendar
from app.quotas.history import since, suggest, trailing

D = date.fromisoformat
CAL = Calendar(ZoneInfo("Europe/Brussels"), "monday", 4)


@pytest.mark.parametrize(
    ("day", "unit", "first", "last"),
    [
        ("2024-05-15", "month", "2024-01-01", "2024-04-30"),
        ("2024-05-01", "month", "2024-01-01", "2024-04-30"),  # the first day: still May's window
        ("2024-02-10", "month", "2023-10-01", "2024-01-31"),  # across the calendar year
        ("2024-05-15", "quarter", "2023-04-01", "2024-03-31"),  # fiscal quarters from April
        ("2024-05-15", "year", "2020-04-01", "2024-03-31"),
        ("2024-05-15", "week", "2024-04-15", "2024-05-12"),  # weeks from Monday
        ("2024-03-31", "day", "2024-03-27", "2024-03-30"),
    ],
)
def test_trailing_window(day: str, unit: str, first: str, last: str) -> None:
    window = trailing(CAL, D(day), unit)
    assert len(window) == 4
    assert (window[0].start, window[-1].last_day) == (D(first), D(last))
    assert all(a.end == b.start for a, b in pairwise(window))


WINDOW = trailing(CAL, D("2024-05-15"), "month")  # January to April


@pytest.mark.parametrize(
    ("first_fact", "months"),
    [
        (None, []),  # no fact at all: no history
        ("2019-06-01", ["01", "02", "03", "04"]),
        ("2024-03-20", ["03", "04"]),  # joined in March: March counts, the months before do not
        ("2024-04-30", ["04"]),
        ("2024-05-02", []),  # first fact in the question's own period
    ],
)
def test_history_begins_with_the_first_fact(first_fact: str | None, months: list[str]) -> None:
    got = since(WINDOW, None if first_fact is None else D(first_fact))
    assert [p.start.strftime("%m") for p in got] == months


def p(total: str | int, n: int = 0) -> Pooled:
    return Pooled(Decimal(total), n)


@pytest.mark.parametrize(
    ("metric", "history", "expected"),
    [
        (Metric.revenue, [], None),
        (Metric.revenue, [p(1000), p(0), p(2000), p(500)], Decimal(875)),
        (Metric.deals_won, [p(1), p(2)], Decimal("1.5")),  # fewer periods: the mean of those
        (Metric.emails_sent, [p(10), p(11), p(11)], Decimal("10.6667")),  # 4 decimals, a target
        (Metric.contacts_engaged, [p(3), p(5)], Decimal(4)),  # each period's distinct count
        # ratios and means pooled over the whole window, not a mean of per-period values:
        # won 1 of 1, then 1 of 3 -> 2 / 4, not (1 + 1/3) / 2
        (Metric.win_rate, [p(1, 1), p(1, 3)], Decimal("0.5")),
        (Metric.avg_deal_value, [p(1000, 1), p(0, 0), p(2000, 3)], Decimal(750)),
        (Metric.sales_cycle_days, [p(0, 0), p(0, 0)], None),  # nothing won: nothing divides
        (Metric.revenue, [p(0), p(0)], Decimal(0)),  # history of zeros: 0, not null
    ],
)
def test_suggest(metric: Metric, history: list[Pooled], expected: Value) -> None:
    assert suggest(METRICS[metric], history) == expected
