"""Bucketing timestamps into periods, and the attainment, pace and forecast figures."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from app.quotas.rollup import (
    METRICS,
    Bounds,
    Metric,
    attainment,
    bucket_counts,
    bucket_distinct,
    elapsed_share,
    pace,
    run_rate_forecast,
)


def at(day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(2024, 5, day, hour, minute, tzinfo=UTC)


DAYS: list[Bounds] = [(at(1), at(2)), (at(2), at(3)), (at(3), at(4))]
GAPPED: list[Bounds] = [(at(1), at(2)), (at(5), at(6))]


@pytest.mark.parametrize(
    ("bounds", "moments", "expected"),
    [
        (DAYS, [], [0, 0, 0]),
        (DAYS, [at(1), at(1, 23, 59), at(2)], [2, 1, 0]),
        (DAYS, [at(3, 12), at(4)], [0, 0, 1]),  # an end is exclusive
        (DAYS, [datetime(2024, 4, 30, 23, 59, tzinfo=UTC)], [0, 0, 0]),  # before the first
        (GAPPED, [at(3), at(5), at(6)], [0, 1]),  # between buckets, and past the last
        ([], [at(1)], []),
    ],
)
def test_bucket_counts(bounds: list[Bounds], moments: list[datetime], expected: list[int]) -> None:
    assert bucket_counts(bounds, moments) == expected


@pytest.mark.parametrize(
    ("pairs", "expected"),
    [
        ([], [0, 0, 0]),
        ([(at(1, 9), 7), (at(1, 10), 7), (at(1, 11), 8)], [2, 0, 0]),
        ([(at(1, 9), 7), (at(2, 9), 7), (at(3, 9), 7)], [1, 1, 1]),  # distinct per bucket
        ([(at(4), 7), (at(2), 9)], [0, 1, 0]),
    ],
)
def test_bucket_distinct(pairs: list[tuple[datetime, int]], expected: list[int]) -> None:
    assert bucket_distinct(DAYS, pairs) == expected


@pytest.mark.parametrize(
    ("as_of", "expected"),
    [
        (at(1), 0.0),
        (datetime(2024, 4, 1, tzinfo=UTC), 0.0),
        (at(3), 0.5),
        (at(1, 12), 0.125),
        (at(5), 1.0),
        (at(9), 1.0),
    ],
)
def test_elapsed_share(as_of: datetime, expected: float) -> None:
    assert elapsed_share((at(1), at(5)), as_of) == expected


@pytest.mark.parametrize(
    ("actual", "target", "lower_is_better", "expected"),
    [
        (50, 100, False, 0.5),
        (0, 100, False, 0.0),
        (150, 100, False, 1.5),
        (10, 0, False, None),
        (None, 100, False, None),
        (20, 10, True, 0.5),  # sales cycle: 20 days against a 10-day target
        (5, 10, True, 2.0),
        (0, 10, True, None),
        (None, 10, True, None),
    ],
)
def test_attainment(
    actual: float | None, target: float, lower_is_better: bool, expected: float | None
) -> None:
    assert attainment(actual, target, lower_is_better=lower_is_better) == expected


@pytest.mark.parametrize(
    ("actual", "target", "elapsed", "expected"),
    [
        (50, 100, 0.5, 1.0),
        (25, 100, 0.5, 0.5),
        (30, 40, 0.25, 3.0),
        (10, 100, 0.0, None),
        (10, 0, 0.5, None),
        (None, 100, 0.5, None),
        (80, 100, 1.0, 0.8),
    ],
)
def test_pace(actual: float | None, target: float, elapsed: float, expected: float | None) -> None:
    assert pace(actual, target, elapsed) == expected


@pytest.mark.parametrize(
    ("actual", "elapsed", "expected"),
    [
        (30, 0.25, 120.0),
        (30, 1.0, 30.0),
        (0, 0.5, 0.0),
        (30, 0.0, None),
        (None, 0.5, None),
    ],
)
def test_run_rate_forecast(actual: float | None, elapsed: float, expected: float | None) -> None:
    assert run_rate_forecast(actual, elapsed) == expected


def test_every_metric_is_described() -> None:
    assert set(METRICS) == set(Metric)
    available = {m for m, d in METRICS.items() if not d.needs_deals}
    assert available == {
        "emails_sent",
        "emails_received",
        "meetings_scheduled",
        "meetings_held",
        "calls",
        "contacts_engaged",
    }
    counted = {d.activity_type for d in METRICS.values() if d.activity_type}
    assert len(counted) == 5
