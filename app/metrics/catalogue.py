"""The catalogue: every metric as one entry saying where its facts come from and how they add up.

Adding a metric is one `Metric` member and one `METRICS` entry (plus its tests): the engine,
series, attainment, reconciliation and the plan all read from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import Enum, StrEnum

from app.models import ActivityType, DealStatus


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
    chat_conversations = "chat_conversations"
    contacts_engaged = "contacts_engaged"
    opportunities_created = "opportunities_created"
    win_rate = "win_rate"
    avg_deal_value = "avg_deal_value"
    sales_cycle_days = "sales_cycle_days"
    deals_won = "deals_won"
    revenue = "revenue"
    gross_margin = "gross_margin"


class Source(StrEnum):
    activities = "activities"  # activity_days: counts per user, local day and type
    contacts = "contacts"  # contact_days: contacts per user and local day
    deals = "deals"  # deal rows, read directly (few per subject and window)


class Moment(StrEnum):
    """The instant that places a fact in a period."""

    occurred_at = "occurred_at"
    created_at = "created_at"
    closed_at = "closed_at"


class Combine(Enum):  # not StrEnum: a member named count would shadow str.count
    count = "count"  # how many facts
    sum = "sum"  # the sum of the facts' amounts
    distinct = "distinct"  # how many distinct contacts, across days and members
    ratio = "ratio"  # pooled: sum of the numerators / number of facts
    mean = "mean"  # pooled: sum of the amounts / number of facts


class Amount(StrEnum):
    """What one deal carries into a metric."""

    one = "one"
    value = "value"  # value_base: the org currency at the closed_at date's rate
    margin = "margin"  # value_base - cost_base, a missing cost being 0
    cycle_days = "cycle_days"  # local calendar days from created_at's date to closed_at's
    won = "won"  # 1 when won, 0 when lost: the numerator of a win rate


class Forecast(StrEnum):
    """How a metric forecasts the period's end, and what its pace compares."""

    run_rate = "run_rate"  # accumulates: actual ÷ elapsed share; pace against the share due
    steady = (
        "steady"  # a ratio or mean does not grow with time: forecast = actual, pace = attainment
    )
    pipeline = "pipeline"  # run rate, and won so far + open deals weighted by probability


@dataclass(frozen=True, slots=True)
class MetricDef:
    level: Level
    source: Source
    moment: Moment
    combine: Combine
    activity_type: str | None = None  # Source.activities: the type counted
    statuses: frozenset[str] | None = None  # Source.deals: the statuses read (None: any)
    amount: Amount = Amount.one
    lower_is_better: bool = False
    forecast: Forecast = Forecast.run_rate

    @property
    def additive(self) -> bool:
        """A team's value is the sum of its members' (so members' targets may be added)."""
        return self.combine in (Combine.count, Combine.sum)

    @property
    def pooled(self) -> bool:
        """A ratio or mean: combined by pooling the facts, never by averaging values."""
        return self.combine in (Combine.ratio, Combine.mean)


def _activities(kind: ActivityType) -> MetricDef:
    return MetricDef(Level.input, Source.activities, Moment.occurred_at, Combine.count, kind)


WON = frozenset({DealStatus.won.value})
CLOSED = frozenset({DealStatus.won.value, DealStatus.lost.value})


def _won(
    level: Level,
    combine: Combine,
    amount: Amount,
    forecast: Forecast,
    *,
    lower_is_better: bool = False,
) -> MetricDef:
    """A metric of the deals won in the period, placed by closed_at."""
    return MetricDef(
        level,
        Source.deals,
        Moment.closed_at,
        combine,
        statuses=WON,
        amount=amount,
        lower_is_better=lower_is_better,
        forecast=forecast,
    )


METRICS: dict[Metric, MetricDef] = {
    Metric.emails_sent: _activities(ActivityType.email_sent),
    Metric.emails_received: _activities(ActivityType.email_received),
    Metric.meetings_scheduled: _activities(ActivityType.meeting_scheduled),
    Metric.meetings_held: _activities(ActivityType.meeting_held),
    Metric.calls: _activities(ActivityType.call),
    Metric.chat_conversations: _activities(ActivityType.chat_conversation),
    Metric.contacts_engaged: MetricDef(
        Level.input, Source.contacts, Moment.occurred_at, Combine.distinct
    ),
    Metric.opportunities_created: MetricDef(
        Level.middle, Source.deals, Moment.created_at, Combine.count
    ),
    Metric.win_rate: MetricDef(
        Level.middle,
        Source.deals,
        Moment.closed_at,
        Combine.ratio,
        statuses=CLOSED,
        amount=Amount.won,
        forecast=Forecast.steady,
    ),
    Metric.avg_deal_value: _won(Level.middle, Combine.mean, Amount.value, Forecast.steady),
    Metric.sales_cycle_days: _won(
        Level.middle, Combine.mean, Amount.cycle_days, Forecast.steady, lower_is_better=True
    ),
    Metric.deals_won: _won(Level.output, Combine.count, Amount.one, Forecast.pipeline),
    Metric.revenue: _won(Level.output, Combine.sum, Amount.value, Forecast.pipeline),
    Metric.gross_margin: _won(Level.output, Combine.sum, Amount.margin, Forecast.pipeline),
}


Value = int | Decimal | None


@dataclass(frozen=True, slots=True)
class Pooled:
    """A metric's components over one period: the total of the facts' amounts and their number.

    Counts and sums are `total`; ratios and means `total / n`. Pooling two periods or two members
    adds components, which is why ratios of a team or a window are exact and never means of means.
    """

    total: Decimal = Decimal(0)
    n: int = 0

    def __add__(self, other: Pooled) -> Pooled:
        return Pooled(self.total + other.total, self.n + other.n)

    def value(self, definition: MetricDef) -> Value:
        if definition.pooled:
            return self.total / self.n if self.n else None
        if definition.combine is Combine.sum:
            return self.total
        return int(self.total)
