"""Local days of the organization's zone, which the stored rollups are keyed on (pure)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from app.activities.days import day_counts, local_day, offsets


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


@pytest.mark.parametrize(
    ("moment", "zone", "day"),
    [
        (utc(2026, 3, 2, 22, 59), "Europe/Brussels", date(2026, 3, 2)),
        (utc(2026, 3, 2, 23, 0), "Europe/Brussels", date(2026, 3, 3)),  # CET midnight
        (utc(2026, 6, 2, 21, 59), "Europe/Brussels", date(2026, 6, 2)),
        (utc(2026, 6, 2, 22, 0), "Europe/Brussels", date(2026, 6, 3)),  # CEST midnight
        (utc(2026, 3, 3, 4, 59), "America/New_York", date(2026, 3, 2)),
        (utc(2026, 3, 2, 18, 30), "Asia/Kolkata", date(2026, 3, 3)),  # +05:30
        (utc(2011, 12, 30, 9, 59), "Pacific/Apia", date(2011, 12, 29)),  # the day Samoa skipped
        (utc(2011, 12, 30, 10, 0), "Pacific/Apia", date(2011, 12, 31)),
    ],
)
def test_local_day(moment: datetime, zone: str, day: date) -> None:
    assert local_day(moment, ZoneInfo(zone)) == day


def test_day_counts_add_and_remove() -> None:
    brussels = ZoneInfo("Europe/Brussels")
    rows = [
        (1, "call", utc(2026, 3, 2, 22, 0)),
        (1, "call", utc(2026, 3, 2, 23, 30)),
        (1, "call", utc(2026, 3, 3, 8, 0)),
    ]
    assert day_counts(rows, brussels) == {
        (1, date(2026, 3, 2), "call"): 1,
        (1, date(2026, 3, 3), "call"): 2,
    }
    assert day_counts(rows[:1], brussels, -1) == {(1, date(2026, 3, 2), "call"): -1}


@pytest.mark.parametrize(
    ("zone", "first", "last", "spans"),
    [
        ("Asia/Kolkata", utc(2020, 1, 1), utc(2026, 1, 1), [(utc(2020, 1, 1), 19800)]),
        (
            "Europe/Brussels",
            utc(2026, 1, 1, 12, 0),
            utc(2026, 12, 31),
            [
                (utc(2026, 1, 1, 12, 0), 3600),
                (utc(2026, 3, 29, 1, 0), 7200),
                (utc(2026, 10, 25, 1, 0), 3600),
            ],
        ),
        (  # half-hour daylight saving
            "Australia/Lord_Howe",
            utc(2026, 1, 1),
            utc(2026, 7, 1),
            [(utc(2026, 1, 1), 39600), (utc(2026, 4, 4, 15, 0), 37800)],
        ),
        (  # a change of 24 hours, the last of the range on its last second
            "Pacific/Apia",
            utc(2011, 12, 1),
            utc(2011, 12, 30, 10, 0),
            [(utc(2011, 12, 1), -36000), (utc(2011, 12, 30, 10, 0), 50400)],
        ),
        ("America/Sao_Paulo", utc(2026, 5, 1), utc(2026, 5, 1), [(utc(2026, 5, 1), -10800)]),
    ],
)
def test_offsets_find_every_change_to_the_second(
    zone: str, first: datetime, last: datetime, spans: list[tuple[datetime, int]]
) -> None:
    assert offsets(ZoneInfo(zone), first, last) == spans
