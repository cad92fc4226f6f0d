"""The pure quota figures: elapsed share, attainment, pace, run-rate forecast and coverage."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from app.quotas.rollup import attainment, coverage, elapsed_share, pace, run_rate_forecast


def at(day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(2024, 5, day, hour, minute, tzinfo=UTC)


def d(text: str | None) -> Decimal | None:
    return None if text is None else Decimal(text)


@pytest.mark.parametrize(
    ("as_of", "expected"),
    [
        (at(1), "0"),
        (datetime(2024, 4, 1, tzinfo=UTC), "0"),
        (at(3), "0.5"),
        (at(1, 12), "0.125"),
        (at(5), "1"),
        (at(9), "1"),
    ],
)
def test_elapsed_share(as_of: datetime, expected: str) -> None:
    assert elapsed_share((at(1), at(5)), as_of) == Decimal(expected)


@pytest.mark.parametrize(
    ("actual", "target", "lower_is_better", "expected"),
    [
        (50, "100", False, "0.5"),
        (0, "100", False, "0"),
        (150, "100", False, "1.5"),
        (Decimal("12.5"), "50", False, "0.25"),
        (None, "100", False, None),
        (Decimal(20), "10", True, "0.5"),  # sales cycle: 20 days against a 10-day target
        (Decimal(5), "10", True, "2"),
        (Decimal(0), "10", True, None),  # a cycle of 0 days divides nothing
        (None, "10", True, None),
    ],
)
def test_attainment(
    actual: Decimal | int | None, target: str, lower_is_better: bool, expected: str | None
) -> None:
    figure = attainment(actual, Decimal(target), lower_is_better=lower_is_better)
    assert figure == d(expected)


@pytest.mark.parametrize(
    ("actual", "target", "elapsed", "expected"),
    [
        (50, "100", "0.5", "1"),
        (25, "100", "0.5", "0.5"),
        (30, "40", "0.25", "3"),
        (10, "100", "0", None),
        (None, "100", "0.5", None),
        (80, "100", "1", "0.8"),
    ],
)
def test_pace(actual: int | None, target: str, elapsed: str, expected: str | None) -> None:
    assert pace(actual, Decimal(target), Decimal(elapsed)) == d(expected)


@pytest.mark.parametrize(
    ("actual", "elapsed", "expected"),
    [
        (30, "0.25", "120"),
        (30, "1", "30"),
        (0, "0.5", "0"),
        (30, "0", None),
        (None, "0.5", None),
    ],
)
def test_run_rate_forecast(actual: int | None, elapsed: str, expected: str | None) -> None:
    assert run_rate_forecast(actual, Decimal(elapsed)) == d(expected)


@pytest.mark.parametrize(
    ("open_expected", "target", "actual", "expected"),
    [
        ("300", "100", "0", "3"),
        ("300", "100", "40", "5"),
        ("0", "100", "40", "0"),
        ("300", "100", "100", None),  # nothing missing
        ("300", "100", "120", None),
    ],
)
def test_coverage(open_expected: str, target: str, actual: str, expected: str | None) -> None:
    assert coverage(Decimal(open_expected), Decimal(target), Decimal(actual)) == d(expected)
