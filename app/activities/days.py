"""Local days of an organization's time zone (pure): what the stored rollups are keyed on.

Every period unit (week from any start day, month, fiscal quarter and year) is a union of
whole local days, so rollups per local day serve them all; only a change of the zone moves
activities from one day to another.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

DayKey = tuple[int, date, str]  # (user id, local day, activity type): an activity_days row
ContactKey = tuple[int, date, int]  # (user id, local day, contact id): a contact_days row
DAY = 86_400.0


def local_day(moment: datetime, zone: ZoneInfo) -> date:
    return moment.astimezone(zone).date()


def day_counts(
    activities: Iterable[tuple[int, str, datetime]], zone: ZoneInfo, sign: int = 1
) -> Counter[DayKey]:
    """activity_days increments for (user id, type, occurred_at) rows added (sign 1) or
    removed (sign -1)."""
    counts: Counter[DayKey] = Counter()
    for user_id, kind, moment in activities:
        counts[(user_id, moment.astimezone(zone).date(), kind)] += sign
    return counts


def offsets(zone: ZoneInfo, first: datetime, last: datetime) -> list[tuple[datetime, int]]:
    """The zone's UTC offsets (seconds) over [first, last]: (from this UTC instant, offset),
    the first from `first`. For SQL without time zones (SQLite), which then shifts a UTC
    time by its span's offset to find its local day.

    Offsets are sampled once a UTC day and each change is bisected to the second: a zone
    that changes offset twice within 24 hours would be missed (none has since 1970)."""
    first, last = first.astimezone(UTC), last.astimezone(UTC)
    spans = [(first, _offset(zone, first))]
    probe = first.timestamp()
    while probe < last.timestamp():
        nxt = min(probe + DAY, last.timestamp())
        if _offset_at(zone, nxt) != spans[-1][1]:
            low, high = probe, nxt  # offset(low) is the old one, offset(high) the new one
            while high - low > 1:
                middle = (low + high) / 2
                if _offset_at(zone, middle) == spans[-1][1]:
                    low = middle
                else:
                    high = middle
            # zones change on whole seconds: the one whole second in (low, high]
            change = float(math.floor(high))
            spans.append((datetime.fromtimestamp(change, UTC), _offset_at(zone, change)))
        probe = nxt
    return spans


def _offset_at(zone: ZoneInfo, timestamp: float) -> int:
    return _offset(zone, datetime.fromtimestamp(timestamp, UTC))


def _offset(zone: ZoneInfo, moment: datetime) -> int:
    offset = moment.astimezone(zone).utcoffset()
    assert offset is not None
    return int(offset.total_seconds())
