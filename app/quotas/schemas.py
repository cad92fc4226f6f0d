"""Metric series, quotas, attainment, reconciliation and the plan as the API reads and writes them.

Figures are Decimal inside and JSON numbers at the edge (integral ones as integers).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    model_validator,
)

from app.metrics.catalogue import Metric
from app.metrics.periods import PeriodUnit
from app.schemas import Day, Id, decimal_schema, decimal_text

_PERIOD_END = "the last day included in the period"
TARGET_LIMIT = Decimal(10**13)
TARGET_STEP = Decimal("0.0001")  # quotas.target is Numeric(20, 4)


def json_number(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() else float(value)


Number = Annotated[Decimal, PlainSerializer(json_number, return_type=float, when_used="json")]
# From 0.0001 (the smallest target rounding to 4 decimal places keeps above 0) to under
# 10^13; as a string without sign or exponent: a whole part from 1, or 0 and a fraction with
# a non-zero digit among its first 4.
TARGET_TEXT = r"^(?:[1-9][0-9]{0,12}(?:\.[0-9]+)?|0\.(?:[1-9]|0[1-9]|00[1-9]|000[1-9])[0-9]*)$"
TARGET_DOC = "from 0.0001 to under 10^13; rounded to 4 decimal places"
Target = Annotated[
    Decimal,
    decimal_text(TARGET_TEXT, TARGET_DOC),
    Field(ge=TARGET_STEP, lt=TARGET_LIMIT, allow_inf_nan=False),
    AfterValidator(lambda value: value.quantize(TARGET_STEP)),
    decimal_schema({"minimum": 0.0001, "exclusiveMaximum": 10**13}, TARGET_TEXT, TARGET_DOC),
]


class UserSubject(BaseModel):
    user_id: int


class TeamSubject(BaseModel):
    team_id: int


Subject = UserSubject | TeamSubject


class SeriesPoint(BaseModel):
    period_start: date = Field(description="the first day of the period")
    period_end: date = Field(description=_PERIOD_END)
    value: int | Number | None = Field(
        description="counts are integers; null for a ratio or mean with nothing to divide by"
    )


class MetricSeries(BaseModel):
    metric: Metric
    period: PeriodUnit
    subject: Subject
    series: list[SeriesPoint]


def _one_subject(user_id: int | None, team_id: int | None) -> None:
    if user_id is not None and team_id is not None:
        raise ValueError("give user_id or team_id, not both")


# The subject is a user or a team, never both: said in the schema as well as checked.
_ONE_SUBJECT_DOC = "give exactly one of user_id and team_id (the other left out or null)"


def _one_subject_schema(schema: dict[str, Any]) -> None:
    for branch, other in (("user_id", "team_id"), ("team_id", "user_id")):
        schema.setdefault("oneOf", []).append(
            {
                "required": [branch],
                "properties": {branch: {"type": "integer"}, other: {"type": "null"}},
            }
        )


class QuotaCreate(BaseModel):
    """A target for one user or one team. Exactly one of `user_id` and `team_id` (the other
    left out or null); `effective_to`, when given, is on or after `effective_from`."""

    model_config = ConfigDict(json_schema_extra=_one_subject_schema)

    metric: Metric
    period: PeriodUnit
    target: Target
    user_id: Id | None = Field(None, description=_ONE_SUBJECT_DOC)
    team_id: Id | None = Field(None, description=_ONE_SUBJECT_DOC)
    effective_from: Day
    effective_to: Day | None = Field(
        None, description="the last day the quota applies; on or after effective_from"
    )

    @model_validator(mode="after")
    def _check(self) -> Self:
        _one_subject(self.user_id, self.team_id)
        if self.user_id is None and self.team_id is None:
            raise ValueError("give user_id or team_id")
        if self.effective_to is not None and self.effective_to < self.effective_from:
            raise ValueError("effective_to is before effective_from")
        return self


def _target_and_start_not_null(schema: dict[str, Any]) -> None:
    for name in ("target", "effective_from"):
        field = schema.get("properties", {}).get(name, {})
        options = [o for o in field.get("anyOf", []) if o.get("type") != "null"]
        if len(options) == 1:
            field.pop("anyOf")
            field.update(options[0])


class QuotaUpdate(BaseModel):
    """Fields left out are unchanged. The resulting effective_to, when set, is on or after
    the resulting effective_from: a 422 when both are given out of order, a 409 when the one
    given is out of order with the quota's other."""

    model_config = ConfigDict(json_schema_extra=_target_and_start_not_null)

    target: Target | None = Field(None, description="may not be null")
    effective_from: Day | None = Field(None, description="may not be null")
    effective_to: Day | None = Field(None, description="null: no end")

    @model_validator(mode="after")
    def _check(self) -> Self:
        # Only effective_to may be cleared; a quota always has a target and a start.
        for name in ("target", "effective_from"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} may not be null")
        # both given: the body contradicts itself (a 422); one against the stored other is a
        # conflict with the quota as it is (a 409, from the service)
        start, end = self.effective_from, self.effective_to
        if start is not None and end is not None and end < start:
            raise ValueError("effective_to is before effective_from")
        return self


class QuotaRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    metric: Metric
    period: PeriodUnit
    target: Number
    user_id: int | None
    team_id: int | None
    effective_from: date
    effective_to: date | None
    created_at: datetime


class AttainmentItem(BaseModel):
    quota_id: int
    metric: Metric
    period: PeriodUnit
    period_start: date = Field(description="the first day of the period containing the date")
    period_end: date = Field(description=_PERIOD_END)
    target: Number
    actual: int | Number | None = Field(description="from the period's start to the as-of time")
    attainment: Number | None = Field(
        description="actual / target (target / actual for sales_cycle_days)"
    )
    pace: Number | None = Field(description="actual / (target x elapsed share); 1.0 is on track")
    forecast: Number | None = Field(description="run rate: actual / elapsed share")
    elapsed_share: Number = Field(description="share of the period before the as-of time, 0..1")
    members_target_sum: Number | None = Field(
        None,
        description="team quotas of counts and sums: the members' quotas for this metric and "
        "period (null for ratios, means and contacts_engaged, which do not add up)",
    )
    gap: Number | None = Field(None, description="team quotas: target - members_target_sum")
    forecast_pipeline: Number | None = Field(
        None,
        description="revenue, deals_won, gross_margin: won so far + open deals expected in the "
        "period x their stage's probability",
    )
    open_without_close_date: int | None = Field(
        None, description="revenue, deals_won, gross_margin: open deals with no expected close date"
    )
    coverage: Number | None = Field(
        None,
        description="revenue: open pipeline expected in the period (unweighted) / what is still "
        "missing to the target; null when nothing is missing",
    )


class MemberAttainment(BaseModel):
    user_id: int
    items: list[AttainmentItem] = Field(description="as `?user_id=` gives them")


class Attainment(BaseModel):
    date: date
    as_of: datetime = Field(description="actuals count up to this instant: min(now, end of date)")
    items: list[AttainmentItem]
    members: list[MemberAttainment] | None = Field(
        None,
        description="only with team_id and members=true: each current member of the team "
        "(by user id), their own quotas in force; absent otherwise",
        exclude_if=lambda members: members is None,
    )


class MemberTarget(BaseModel):
    user_id: int
    target: Number | None = Field(description="the member's quota in force; null: none")
    suggested: int | Number | None = Field(
        description="from the member's last 4 complete periods (semantics §9); null: no history"
    )


class Reconciliation(BaseModel):
    team_id: int
    metric: Metric
    period: PeriodUnit
    period_start: date
    period_end: date = Field(description=_PERIOD_END)
    team_target: Number | None = Field(description="the team's quota in force; null: none")
    members_target_sum: Number | None = Field(
        description="counts and sums only: the members' targets added (null for ratios, means "
        "and contacts_engaged)"
    )
    gap: Number | None = Field(description="team_target - members_target_sum")
    suggested_sum: Number | None = Field(
        description="counts and sums only: the members' suggestions added (those that exist)"
    )
    members: list[MemberTarget]


class PlanBasis(BaseModel):
    avg_deal_value: Number | None
    win_rate: Number | None
    window_start: date = Field(description="first day of the 4 complete periods read")
    window_end: date = Field(description="last day of the 4 complete periods read")


class PlanNeeded(BaseModel):
    deals_won: int | None
    opportunities_created: int | None
    emails_sent: int | None
    meetings_scheduled: int | None
    meetings_held: int | None
    calls: int | None
    chat_conversations: int | None
    contacts_engaged: int | None


class Plan(BaseModel):
    period_start: date
    period_end: date = Field(description=_PERIOD_END)
    target: Number
    basis: PlanBasis
    needed: PlanNeeded
    missing: list[str] = Field(
        description="figures unknown or 0 in the window (avg_deal_value, win_rate, "
        "opportunities_created), so the needs that depend on them are null"
    )
