"""Calendar periods: week starts, fiscal quarters and years, UTC bounds across DST."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.metrics.periods import (
    WEEKDAYS,
    Period,
    PeriodUnit,
    local_midnight,
    periods_between,
    utc_bounds,
)

D = date


@pytest.mark.parametrize(
    ("day", "unit", "week_start", "fiscal", "start", "end"),
    [
        (D(2024, 2, 29), "day", "monday", 1, D(2024, 2, 29), D(2024, 3, 1)),
        (D(2024, 12, 31), "day", "monday", 1, D(2024, 12, 31), D(2025, 1, 1)),
        # 2024-05-15 is a Wednesday.
        (D(2024, 5, 15), "week", "monday", 1, D(2024, 5, 13), D(2024, 5, 20)),
        (D(2024, 5, 13), "week", "monday", 1, D(2024, 5, 13), D(2024, 5, 20)),
        (D(2024, 5, 19), "week", "monday", 1, D(2024, 5, 13), D(2024, 5, 20)),
        (D(2024, 5, 15), "week", "sunday", 1, D(2024, 5, 12), D(2024, 5, 19)),
        (D(2024, 5, 18), "week", "sunday", 1, D(2024, 5, 12), D(2024, 5, 19)),
        (D(2024, 5, 15), "week", "saturday", 1, D(2024, 5, 11), D(2024, 5, 18)),
        (D(2024, 5, 15), "week", "wednesday", 1, D(2024, 5, 15), D(2024, 5, 22)),
        (D(2024, 5, 15), "week", "thursday", 1, D(2024, 5, 9), D(2024, 5, 16)),
        (D(2025, 1, 1), "week", "monday", 1, D(2024, 12, 30), D(2025, 1, 6)),
        (D(2024, 2, 29), "month", "monday", 1, D(2024, 2, 1), D(2024, 3, 1)),
        (D(2023, 2, 28), "month", "monday", 1, D(2023, 2, 1), D(2023, 3, 1)),
        (D(2024, 12, 31), "month", "monday", 4, D(2024, 12, 1), D(2025, 1, 1)),
        (D(2024, 1, 31), "month", "monday", 1, D(2024, 1, 1), D(2024, 2, 1)),
        (D(2024, 4, 30), "month", "monday", 1, D(2024, 4, 1), D(2024, 5, 1)),
        (D(2024, 2, 14), "quarter", "monday", 1, D(2024, 1, 1), D(2024, 4, 1)),
        (D(2024, 12, 31), "quarter", "monday", 1, D(2024, 10, 1), D(2025, 1, 1)),
        (D(2024, 4, 1), "quarter", "monday", 4, D(2024, 4, 1), D(2024, 7, 1)),
        (D(2024, 3, 31), "quarter", "monday", 4, D(2024, 1, 1), D(2024, 4, 1)),
        (D(2024, 2, 14), "quarter", "monday", 4, D(2024, 1, 1), D(2024, 4, 1)),
        (D(2024, 10, 1), "quarter", "monday", 10, D(2024, 10, 1), D(2025, 1, 1)),
        (D(2024, 9, 30), "quarter", "monday", 10, D(2024, 7, 1), D(2024, 10, 1)),
        (D(2024, 2, 1), "quarter", "monday", 2, D(2024, 2, 1), D(2024, 5, 1)),
        (D(2024, 1, 31), "quarter", "monday", 2, D(2023, 11, 1), D(2024, 2, 1)),
        (D(2024, 6, 30), "year", "monday", 1, D(2024, 1, 1), D(2025, 1, 1)),
        (D(2024, 4, 1), "year", "monday", 4, D(2024, 4, 1), D(2025, 4, 1)),
        (D(2024, 3, 31), "year", "monday", 4, D(2023, 4, 1), D(2024, 4, 1)),
        (D(2025, 1, 15), "year", "monday", 4, D(2024, 4, 1), D(2025, 4, 1)),
        (D(2024, 9, 30), "year", "monday", 10, D(2023, 10, 1), D(2024, 10, 1)),
        (D(2024, 10, 1), "year", "monday", 10, D(2024, 10, 1), D(2025, 10, 1)),
        (D(2024, 11, 30), "year", "monday", 12, D(2023, 12, 1), D(2024, 12, 1)),
    ],
)
def test_containing(
    day: date, unit: str, week_start: str, fiscal: int, start: date, end: date
) -> None:
    period = Period.containing(day, unit, week_start=week_start, fiscal_year_start_month=fiscal)
    assert (period.unit, period.start, period.end) == (unit, start, end)
    assert period.last_day == end - timedelta(days=1)


@pytest.mark.parametrize(
    ("start", "unit", "next_start", "next_end"),
    [
        (D(2024, 12, 31), "day", D(2025, 1, 1), D(2025, 1, 2)),
        (D(2024, 12, 30), "week", D(2025, 1, 6), D(2025, 1, 13)),
        (D(2024, 1, 1), "month", D(2024, 2, 1), D(2024, 3, 1)),
        (D(2024, 12, 1), "month", D(2025, 1, 1), D(2025, 2, 1)),
        (D(2024, 10, 1), "quarter", D(2025, 1, 1), D(2025, 4, 1)),
        (D(2023, 4, 1), "year", D(2024, 4, 1), D(2025, 4, 1)),
    ],
)
def test_next(start: date, unit: str, next_start: date, next_end: date) -> None:
    period = Period.containing(start, unit, fiscal_year_start_month=start.month)
    assert period.next() == Period(PeriodUnit(unit), next_start, next_end)


@pytest.mark.parametrize(
    ("start", "end", "unit", "firsts"),
    [
        (D(2024, 5, 15), D(2024, 5, 15), "week", [D(2024, 5, 13)]),
        (D(2024, 5, 15), D(2024, 5, 20), "week", [D(2024, 5, 13), D(2024, 5, 20)]),
        (D(2024, 5, 15), D(2024, 5, 19), "week", [D(2024, 5, 13)]),
        (D(2024, 1, 31), D(2024, 3, 1), "month", [D(2024, 1, 1), D(2024, 2, 1), D(2024, 3, 1)]),
        (D(2024, 12, 31), D(2025, 1, 1), "day", [D(2024, 12, 31), D(2025, 1, 1)]),
        (D(2024, 11, 1), D(2025, 2, 1), "quarter", [D(2024, 10, 1), D(2025, 1, 1)]),
        (D(2024, 5, 2), D(2024, 5, 1), "day", []),
    ],
)
def test_periods_between(start: date, end: date, unit: str, firsts: list[date]) -> None:
    assert [p.start for p in periods_between(start, end, unit)] == firsts


def test_periods_between_stops_at_the_limit() -> None:
    periods = periods_between(D(1, 1, 1), D(9999, 12, 30), "day", limit=3)
    assert [p.start for p in periods] == [D(1, 1, 1), D(1, 1, 2), D(1, 1, 3)]


@pytest.mark.parametrize(
    ("day", "unit"),
    [(D(9999, 12, 31), "day"), (D(9999, 6, 1), "year"), (D(1, 2, 1), "year")],
)
def test_out_of_range_is_overflow(day: date, unit: str) -> None:
    with pytest.raises(OverflowError):
        Period.containing(day, unit, fiscal_year_start_month=4)


@pytest.mark.parametrize(
    ("zone", "day", "unit", "hours"),
    [
        ("Europe/Brussels", D(2024, 3, 31), "day", 23),  # spring forward
        ("Europe/Brussels", D(2024, 10, 27), "day", 25),  # fall back
        ("Europe/Brussels", D(2024, 3, 30), "day", 24),
        ("Europe/Brussels", D(2024, 3, 31), "week", 7 * 24 - 1),
        ("Europe/Brussels", D(2024, 10, 27), "week", 7 * 24 + 1),
        ("Europe/Brussels", D(2024, 3, 15), "month", 31 * 24 - 1),
        ("Europe/Brussels", D(2024, 6, 1), "year", 366 * 24),  # leap year; DST cancels out
        ("America/New_York", D(2024, 3, 10), "day", 23),
        ("America/New_York", D(2024, 11, 3), "day", 25),
        ("America/New_York", D(2024, 11, 4), "day", 24),
        ("America/New_York", D(2024, 3, 10), "week", 7 * 24 - 1),
        ("America/Sao_Paulo", D(2018, 11, 4), "day", 23),  # midnight itself does not exist
        ("America/Santiago", D(2024, 9, 8), "day", 23),
        ("America/Santiago", D(2024, 4, 6), "day", 25),
        ("UTC", D(2023, 2, 1), "month", 28 * 24),
    ],
)
def test_utc_bounds_length(zone: str, day: date, unit: str, hours: int) -> None:
    start, end = utc_bounds(Period.containing(day, unit), ZoneInfo(zone))
    assert start.tzinfo is UTC
    assert end.tzinfo is UTC
    assert end - start == timedelta(hours=hours)


@pytest.mark.parametrize(
    ("zone", "day", "utc"),
    [
        ("Europe/Brussels", D(2024, 1, 15), datetime(2024, 1, 14, 23, tzinfo=UTC)),
        ("Europe/Brussels", D(2024, 7, 15), datetime(2024, 7, 14, 22, tzinfo=UTC)),
        ("America/New_York", D(2024, 7, 15), datetime(2024, 7, 15, 4, tzinfo=UTC)),
        # The gap at midnight resolves to the transition, the first instant of the day.
        ("America/Sao_Paulo", D(2018, 11, 4), datetime(2018, 11, 4, 3, tzinfo=UTC)),
    ],
)
def test_local_midnight(zone: str, day: date, utc: datetime) -> None:
    assert local_midnight(day, ZoneInfo(zone)) == utc


ZONES = ["UTC", "Europe/Brussels", "America/New_York", "America/Sao_Paulo", "Australia/Lord_Howe"]


@given(
    day=st.dates(min_value=D(1971, 1, 1), max_value=D(2100, 12, 31)),
    unit=st.sampled_from(list(PeriodUnit)),
    week_start=st.sampled_from(WEEKDAYS),
    fiscal=st.integers(min_value=1, max_value=12),
    zone=st.sampled_from(ZONES),
)
def test_periods_tile_time(
    day: date, unit: PeriodUnit, week_start: str, fiscal: int, zone: str
) -> None:
    def containing(day: date) -> Period:
        return Period.containing(day, unit, week_start=week_start, fiscal_year_start_month=fiscal)

    period = containing(day)
    assert period.start <= day < period.end
    assert containing(period.start) == period
    assert containing(period.last_day) == period
    following = period.next()
    assert following.start == period.end
    assert containing(period.end) == following
    tz = ZoneInfo(zone)
    start, end = utc_bounds(period, tz)
    assert start < end
    assert utc_bounds(following, tz)[0] == end
