"""Pure: a UTC interval as the local days it wholly covers plus the raw pieces at its edges.

Activity metrics read the stored per-day rollups for whole local days and the raw activity rows
only for the pieces of a day an interval cuts (attainment as of now: part of today), so a read
costs one row per day and member, however many activities there are.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from app.metrics.periods import local_midnight

Bounds = tuple[datetime, datetime]


@dataclass(frozen=True, slots=True)
class Split:
    days: tuple[date, date] | None  # [first, end) local days wholly inside the interval
    pieces: tuple[Bounds, ...]  # UTC ranges the whole days leave out, read from raw rows


def split(bounds: Bounds, tz: ZoneInfo) -> Split:
    start, end = bounds
    if end <= start:
        return Split(None, ())
    first = start.astimezone(tz).date()
    full_start = first if local_midnight(first, tz) == start else first + timedelta(days=1)
    full_end = end.astimezone(tz).date()  # every day before the one `end` falls in is whole
    if full_start >= full_end:
        return Split(None, (bounds,))
    pieces: list[Bounds] = []
    if full_start != first:
        pieces.append((start, local_midnight(full_start, tz)))
    tail = local_midnight(full_end, tz)
    if tail < end:
        pieces.append((tail, end))
    return Split((full_start, full_end), tuple(pieces))
