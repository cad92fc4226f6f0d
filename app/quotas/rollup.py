"""Pure quota figures: elapsed share, attainment, pace and the run-rate forecast, in Decimal."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

Bounds = tuple[datetime, datetime]

_TICK = timedelta(microseconds=1)
ONE = Decimal(1)


def elapsed_share(bounds: Bounds, as_of: datetime) -> Decimal:
    """The share of the period behind `as_of`: 0 before it starts, 1 once it has ended."""
    start, end = bounds
    share = Decimal((as_of - start) // _TICK) / Decimal((end - start) // _TICK)
    return min(ONE, max(Decimal(0), share))


def attainment(
    actual: Decimal | int | None, target: Decimal, *, lower_is_better: bool = False
) -> Decimal | None:
    """actual ÷ target; for a metric where lower is better (sales cycle) target ÷ actual."""
    if actual is None:
        return None
    numerator, denominator = (target, Decimal(actual)) if lower_is_better else (actual, target)
    return Decimal(numerator) / denominator if denominator else None


def pace(actual: Decimal | int | None, target: Decimal, elapsed: Decimal) -> Decimal | None:
    """Attainment against the part of the target due by now: 1.0 is exactly on track."""
    expected = target * elapsed
    if actual is None or not expected:
        return None
    return Decimal(actual) / expected


def run_rate_forecast(actual: Decimal | int | None, elapsed: Decimal) -> Decimal | None:
    """The value at the period's end if the rate so far holds."""
    if actual is None or not elapsed:
        return None
    return Decimal(actual) / elapsed


def coverage(open_expected: Decimal, target: Decimal, actual: Decimal | int) -> Decimal | None:
    """Open pipeline expected in the period ÷ what is still missing; None when nothing is."""
    missing = target - Decimal(actual)
    return open_expected / missing if missing > 0 else None
