"""Pure: what each deal carries into a metric, bucketed into periods, and the pipeline view."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from app.deals.currency import RateBook
from app.metrics.catalogue import Amount, MetricDef, Moment, Pooled
from app.metrics.days import Bounds

ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class DealFact:
    """The columns of a deal the metrics read (amounts already in the org's currency)."""

    status: str
    created_at: datetime
    closed_at: datetime | None
    value_base: Decimal | None
    cost_base: Decimal | None


def cycle_days(created_at: datetime, closed_at: datetime, tz: ZoneInfo) -> int:
    """Calendar days in the org's zone from created_at's date to closed_at's (same day: 0).

    Never negative: an imported deal closed before it was created counts 0, not a negative cycle.
    """
    days = (closed_at.astimezone(tz).date() - created_at.astimezone(tz).date()).days
    return max(0, days)


def amount(definition: MetricDef, deal: DealFact, tz: ZoneInfo) -> Decimal:
    kind = definition.amount
    if kind is Amount.one:
        return Decimal(1)
    if kind is Amount.won:
        return Decimal(1 if deal.status == "won" else 0)
    if kind is Amount.cycle_days:
        assert deal.closed_at is not None  # won deals are closed
        return Decimal(cycle_days(deal.created_at, deal.closed_at, tz))
    value = deal.value_base or ZERO  # set while won or lost; a missing one adds nothing
    if kind is Amount.margin:
        return value - (deal.cost_base or ZERO)
    return value


def moment(definition: MetricDef, deal: DealFact) -> datetime | None:
    return deal.created_at if definition.moment is Moment.created_at else deal.closed_at


def pool(
    definition: MetricDef, deals: Iterable[DealFact], bounds: Sequence[Bounds], tz: ZoneInfo
) -> list[Pooled]:
    """Each deal's amount in the period its moment falls in; `bounds` sorted and disjoint."""
    starts = [start for start, _ in bounds]
    totals = [ZERO] * len(bounds)
    counts = [0] * len(bounds)
    for deal in deals:
        if definition.statuses is not None and deal.status not in definition.statuses:
            continue
        at = moment(definition, deal)
        if at is None:
            continue
        i = bisect_right(starts, at) - 1
        if i < 0 or at >= bounds[i][1]:
            continue
        totals[i] += amount(definition, deal, tz)
        counts[i] += 1
    return [Pooled(t, n) for t, n in zip(totals, counts, strict=True)]


@dataclass(frozen=True, slots=True)
class OpenDeal:
    value: Decimal
    cost: Decimal | None
    currency: str
    probability: Decimal  # of its stage; 0 for a stage the pipeline no longer has


@dataclass(frozen=True, slots=True)
class Pipeline:
    weighted: Decimal  # Σ amount × probability
    unweighted: Decimal  # Σ amount


def pipeline(
    amount_kind: Amount, deals: Iterable[OpenDeal], rates: RateBook, day: date
) -> Pipeline:
    """Open deals expected in a period: value (revenue), value − cost (margin) or 1 (deals)."""
    weighted = unweighted = ZERO
    for deal in deals:
        if amount_kind is Amount.one:
            each: Decimal | None = Decimal(1)
        else:
            each = rates.convert_open(deal.value, deal.currency, day)
            if each is not None and amount_kind is Amount.margin and deal.cost is not None:
                cost = rates.convert_open(deal.cost, deal.currency, day)
                each -= cost or ZERO
        if each is None:
            continue
        weighted += each * deal.probability
        unweighted += each
    return Pipeline(weighted, unweighted)
