"""Splitting a UTC interval into whole local days and raw edge pieces."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from app.metrics.days import Split, split
from tests.metrics.facts import utc

BRUSSELS = ZoneInfo("Europe/Brussels")
D = date.fromisoformat


def at(text: str) -> datetime:
    return utc(text)


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        # a month: whole days only
        ("2024-05-01T00:00", "2024-06-01T00:00", Split((D("2024-05-01"), D("2024-06-01")), ())),
        # as of now: the days before today, and today up to now from raw rows
        (
            "2024-05-01T00:00",
            "2024-05-15T14:30",
            Split(
                (D("2024-05-01"), D("2024-05-15")),
                ((at("2024-05-15T00:00"), at("2024-05-15T14:30")),),
            ),
        ),
        # within one day
        (
            "2024-05-15T00:00",
            "2024-05-15T09:00",
            Split(None, ((at("2024-05-15T00:00"), at("2024-05-15T09:00")),)),
        ),
        # starting mid-day: that day's rest is a raw piece
        (
            "2024-05-14T20:00",
            "2024-05-17T00:00",
            Split(
                (D("2024-05-15"), D("2024-05-17")),
                ((at("2024-05-14T20:00"), at("2024-05-15T00:00")),),
            ),
        ),
        # across midnight, no whole day
        (
            "2024-05-14T20:00",
            "2024-05-15T03:00",
            Split(None, ((at("2024-05-14T20:00"), at("2024-05-15T03:00")),)),
        ),
        # the 23-hour day of spring forward is a whole day
        ("2024-03-31T00:00", "2024-04-01T00:00", Split((D("2024-03-31"), D("2024-04-01")), ())),
        # and the 25-hour day of fall back
        ("2024-10-27T00:00", "2024-10-28T00:00", Split((D("2024-10-27"), D("2024-10-28")), ())),
        # empty
        ("2024-05-15T00:00", "2024-05-15T00:00", Split(None, ())),
    ],
)
def test_split(start: str, end: str, expected: Split) -> None:
    assert split((at(start), at(end)), BRUSSELS) == expected


def test_midnight_in_a_gap() -> None:
    # America/Santiago skipped midnight on 2024-09-08: the day starts at 01:00 local.
    santiago = ZoneInfo("America/Santiago")
    from app.metrics.periods import local_midnight

    start = local_midnight(D("2024-09-08"), santiago)
    end = local_midnight(D("2024-09-09"), santiago)
    assert split((start, end), santiago) == Split((D("2024-09-08"), D("2024-09-09")), ())
