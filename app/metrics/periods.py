"""Pure calendar periods (day to fiscal year) and their UTC bounds in an organization's zone."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


class PeriodUnit(StrEnum):
    day = "day"
    week = "week"
    month = "month"
    quarter = "quarter"
    year = "year"


_MONTHS = {PeriodUnit.month: 1, PeriodUnit.quarter: 3, PeriodUnit.year: 12}


def _add_months(first_of_month: date, months: int) -> date:
    index = first_of_month.year * 12 + first_of_month.month - 1 + months
    year, month = divmod(index, 12)
    if not 1 <= year <= 9999:
        # date() would say ValueError; out-of-range dates are OverflowError everywhere here.
        raise OverflowError("date out of range")
    return date(year, month + 1, 1)


def _add_days(day: date, days: int) -> date:
    return day + timedelta(days=days)  # raises OverflowError past date.min / date.max


@dataclass(frozen=True, slots=True)
class Period:
    """A calendar period: `start` is its first day, `end` the first day after it."""

    unit: PeriodUnit
    start: date
    end: date

    @classmethod
    def containing(
        cls,
        day: date,
        unit: PeriodUnit | str,
        *,
        week_start: str = "monday",
        fiscal_year_start_month: int = 1,
    ) -> Period:
        unit = PeriodUnit(unit)
        if unit is PeriodUnit.day:
            return cls(unit, day, _add_days(day, 1))
        if unit is PeriodUnit.week:
            offset = (day.weekday() - WEEKDAYS.index(week_start)) % 7
            start = _add_days(day, -offset)
            return cls(unit, start, _add_days(start, 7))
        if not 1 <= fiscal_year_start_month <= 12:
            raise ValueError(f"fiscal year start month {fiscal_year_start_month} is not 1..12")
        # Quarters and years count from the fiscal start month; months ignore it (length 1).
        months = _MONTHS[unit]
        into_year = (day.month - fiscal_year_start_month) % 12
        start = _add_months(day.replace(day=1), -(into_year % months))
        return cls(unit, start, _add_months(start, months))

    def next(self) -> Period:
        if self.unit is PeriodUnit.day:
            return Period(self.unit, self.end, _add_days(self.end, 1))
        if self.unit is PeriodUnit.week:
            return Period(self.unit, self.end, _add_days(self.end, 7))
        return Period(self.unit, self.end, _add_months(self.end, _MONTHS[self.unit]))

    @property
    def last_day(self) -> date:
        """The last day included in the period (`end` is exclusive)."""
        return _add_days(self.end, -1)


def periods_between(
    start: date,
    end: date,
    unit: PeriodUnit | str,
    *,
    week_start: str = "monday",
    fiscal_year_start_month: int = 1,
    limit: int | None = None,
) -> list[Period]:
    """From the period containing `start` to the one containing `end`; empty if end < start.

    Stops after `limit` periods, so a caller can refuse an over-long range without building it.
    """
    periods: list[Period] = []
    if end < start:
        return periods
    period = Period.containing(
        start, unit, week_start=week_start, fiscal_year_start_month=fiscal_year_start_month
    )
    while limit is None or len(periods) < limit:
        periods.append(period)
        if period.end > end:
            break
        period = period.next()
    return periods


def local_midnight(day: date, tz: ZoneInfo) -> datetime:
    """The UTC instant the local `day` begins.

    fold=0 makes a midnight that falls in a spring-forward gap resolve to the transition itself
    (the first instant of the day that exists), and a repeated midnight to its first occurrence.
    Consecutive days therefore share their boundary: periods tile time with no gap or overlap.
    """
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def utc_bounds(period: Period, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The period as a half-open UTC interval [start, end)."""
    return local_midnight(period.start, tz), local_midnight(period.end, tz)


@dataclass(frozen=True, slots=True)
class Calendar:
    """An organization's calendar: its zone, first weekday and fiscal year start month."""

    tz: ZoneInfo
    week_start: str = "monday"
    fiscal_year_start_month: int = 1

    def containing(self, day: date, unit: PeriodUnit | str) -> Period:
        return Period.containing(
            day,
            unit,
            week_start=self.week_start,
            fiscal_year_start_month=self.fiscal_year_start_month,
        )

    def between(
        self, start: date, end: date, unit: PeriodUnit | str, *, limit: int | None = None
    ) -> list[Period]:
        return periods_between(
            start,
            end,
            unit,
            week_start=self.week_start,
            fiscal_year_start_month=self.fiscal_year_start_month,
            limit=limit,
        )

    def bounds(self, period: Period) -> tuple[datetime, datetime]:
        return utc_bounds(period, self.tz)
