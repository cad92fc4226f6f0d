"""Pure rollups: the metric catalogue, bucketing timestamps into periods, and quota figures."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Literal

from app.models import ActivityType

Bounds = tuple[datetime, datetime]


class Level(StrEnum):
    input = "input"
    middle = "middle"
    output = "output"


class Metric(StrEnum):
    emails_sent = "emails_sent"
    emails_received = "emails_received"
    meetings_scheduled = "meetings_scheduled"
    meetings_held = "meetings_held"
    calls = "calls"
    contacts_engaged = "contacts_engaged"
    opportunities_created = "opportunities_created"
    win_rate = "win_rate"
    avg_deal_value = "avg_deal_value"
    sales_cycle_days = "sales_cycle_days"
    deals_won = "deals_won"
    revenue = "revenue"
    gross_margin = "gross_margin"


@dataclass(frozen=True, slots=True)
class MetricDef:
    level: Level
    # count and sum accumulate over a period; distinct nearly so; ratio and mean do not.
    kind: Literal["count", "distinct", "sum", "ratio", "mean"]
    activity_type: ActivityType | None = None  # the activities a count counts
    needs_deals: bool = False
    lower_is_better: bool = False


# The one place that says what each metric is: adding the deal metrics means flipping
# needs_deals here and teaching service._actuals() to read deals.
METRICS: dict[Metric, MetricDef] = {
    Metric.emails_sent: MetricDef(Level.input, "count", ActivityType.email_sent),
    Metric.emails_received: MetricDef(Level.input, "count", ActivityType.email_received),
    Metric.meetings_scheduled: MetricDef(Level.input, "count", ActivityType.meeting_scheduled),
    Metric.meetings_held: MetricDef(Level.input, "count", ActivityType.meeting_held),
    Metric.calls: MetricDef(Level.input, "count", ActivityType.call),
    Metric.contacts_engaged: MetricDef(Level.input, "distinct"),
    Metric.opportunities_created: MetricDef(Level.middle, "count", needs_deals=True),
    Metric.win_rate: MetricDef(Level.middle, "ratio", needs_deals=True),
    Metric.avg_deal_value: MetricDef(Level.middle, "mean", needs_deals=True),
    Metric.sales_cycle_days: MetricDef(
        Level.middle, "mean", needs_deals=True, lower_is_better=True
    ),
    Metric.deals_won: MetricDef(Level.output, "count", needs_deals=True),
    Metric.revenue: MetricDef(Level.output, "sum", needs_deals=True),
    Metric.gross_margin: MetricDef(Level.output, "sum", needs_deals=True),
}


def _index(starts: Sequence[datetime], bounds: Sequence[Bounds], moment: datetime) -> int | None:
    """The bucket holding `moment`; buckets are sorted and disjoint but need not touch."""
    i = bisect_right(starts, moment) - 1
    if i < 0 or moment >= bounds[i][1]:
        return None
    return i


def bucket_counts(bounds: Sequence[Bounds], moments: Iterable[datetime]) -> list[int]:
    """How many of `moments` fall in each half-open [start, end) bucket."""
    starts = [start for start, _ in bounds]
    counts = [0] * len(bounds)
    for moment in moments:
        i = _index(starts, bounds, moment)
        if i is not None:
            counts[i] += 1
    return counts


def bucket_distinct(bounds: Sequence[Bounds], pairs: Iterable[tuple[datetime, int]]) -> list[int]:
    """How many distinct keys (contact ids) appear in each bucket."""
    starts = [start for start, _ in bounds]
    seen: list[set[int]] = [set() for _ in bounds]
    for moment, key in pairs:
        i = _index(starts, bounds, moment)
        if i is not None:
            seen[i].add(key)
    return [len(keys) for keys in seen]


def elapsed_share(bounds: Bounds, as_of: datetime) -> float:
    """The share of the period behind `as_of`: 0 before it starts, 1 once it has ended."""
    start, end = bounds
    share = (as_of - start) / (end - start)
    return min(1.0, max(0.0, share))


def attainment(
    actual: float | None, target: float, *, lower_is_better: bool = False
) -> float | None:
    if actual is None:
        return None
    numerator, denominator = (target, actual) if lower_is_better else (actual, target)
    return numerator / denominator if denominator else None


def pace(actual: float | None, target: float, elapsed: float) -> float | None:
    """Attainment against the part of the target due by now: 1.0 is exactly on track."""
    expected = target * elapsed
    if actual is None or not expected:
        return None
    return actual / expected


def run_rate_forecast(actual: float | None, elapsed: float) -> float | None:
    """The value at the period's end if the rate so far holds."""
    if actual is None or not elapsed:
        return None
    return actual / elapsed
