"""Pure: the trailing history a suggestion and a plan read (semantics §9)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from decimal import Decimal

from app.metrics.catalogue import MetricDef, Pooled, Value
from app.metrics.periods import Calendar, Period, PeriodUnit

TRAILING = 4  # complete periods read before the question's period
_STEP = Decimal("0.0001")  # a suggestion is a target: quotas keep 4 decimals


def trailing(calendar: Calendar, day: date, unit: PeriodUnit | str) -> list[Period]:
    """The TRAILING complete periods of `unit` before the one containing `day`, oldest first."""
    periods: list[Period] = []
    current = calendar.containing(day, unit)
    for _ in range(TRAILING):
        current = calendar.containing(current.start - timedelta(days=1), unit)
        periods.append(current)
    return periods[::-1]


def since(periods: Sequence[Period], first_fact: date | None) -> list[Period]:
    """The periods that are the user's history: from the one holding their first fact on.

    A user's history begins with their first activity or deal: the periods before it, when they
    were not yet selling here, are not zeros to average in. No fact at all: no history.
    """
    if first_fact is None:
        return []
    return [p for p in periods if p.end > first_fact]


def suggest(definition: MetricDef, history: Sequence[Pooled]) -> Value:
    """The mean of the values over the history periods; ratios and means pooled over them all.

    None without history, or for a ratio or mean with nothing to divide over the whole window.
    """
    if not history:
        return None
    if definition.pooled:
        pooled = sum(history, Pooled())
        value = pooled.value(definition)
    else:
        values = [Decimal(p.value(definition) or 0) for p in history]
        value = sum(values, Decimal(0)) / len(values)
    return None if value is None else Decimal(value).quantize(_STEP)
