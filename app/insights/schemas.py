"""What top performers do differently (semantics §12), as the API answers it."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, Field

from app.metrics.catalogue import Metric
from app.metrics.periods import PeriodUnit
from app.quotas.schemas import Number

RULES = (
    "Members are the team's current members, ranked best first on the outcome (descending; "
    "ascending for sales_cycle_days, where lower is better), members without an outcome value "
    "(a ratio or mean with nothing to divide) last, ties by user_id ascending. The top "
    "performers are the first max(1, floor(n / 4)) of the n members, less any without an "
    "outcome value. A driver's top_mean and others_mean are plain means of the members' own "
    "values (members without a value left out); ratio = top_mean / others_mean, null when "
    "either is null or others_mean is 0 (a team of one has no others: every ratio is null). "
    "Drivers are sorted by |ratio - 1| descending, null ratios last, ties by metric name. "
    "Activity is emails_sent + meetings_held + calls + chat_conversations; "
    "activities_per_opportunity divides it by opportunities_created, activities_per_deal_won "
    "by deals_won (null when that is 0). Any metric may be the outcome; an input or middle "
    "outcome is left out of the drivers (it sets the top apart by definition)."
)

_VALUE = "counts are integers; null for a ratio or mean with nothing to divide by"


class MemberFigures(BaseModel):
    user_id: int
    outcome: int | Number | None = Field(description=f"the outcome metric's value; {_VALUE}")
    values: dict[str, int | Number | None] = Field(
        description="each driver metric's value for this member, by metric name"
    )


class DriverRead(BaseModel):
    metric: str = Field(
        description="an input or middle metric, activities_per_opportunity or "
        "activities_per_deal_won"
    )
    top_mean: Number | None = Field(description="mean over the top performers with a value")
    others_mean: Number | None = Field(description="mean over the other members with a value")
    ratio: Number | None = Field(
        description="top_mean / others_mean; null when either is null or others_mean is 0"
    )


class Performers(BaseModel):
    team_id: int
    outcome: Metric
    period: PeriodUnit
    period_start: date = Field(description="the first day of the period containing the date")
    period_end: date = Field(description="the last day included in the period")
    as_of: datetime = Field(
        description="facts count up to this instant: the period's end, or now for the current "
        "period (period to date)"
    )
    members: list[MemberFigures] = Field(description="best first (see the ranking rules)")
    top_user_ids: list[int] = Field(description="the top quarter (at least one), best first")
    drivers: list[DriverRead] = Field(description="furthest ratio from 1 first")
