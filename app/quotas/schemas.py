"""Metric series, quotas and attainment as the API reads and writes them."""

from __future__ import annotations

from datetime import date, datetime
from typing import Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.quotas.periods import PeriodUnit
from app.quotas.rollup import Metric

_PERIOD_END = "the last day included in the period"


class UserSubject(BaseModel):
    user_id: int


class TeamSubject(BaseModel):
    team_id: int


Subject = UserSubject | TeamSubject


class SeriesPoint(BaseModel):
    period_start: date = Field(description="the first day of the period")
    period_end: date = Field(description=_PERIOD_END)
    value: int | float | None = Field(description="null for a ratio with nothing to divide by")


class MetricSeries(BaseModel):
    metric: Metric
    period: PeriodUnit
    subject: Subject
    series: list[SeriesPoint]


def _one_subject(user_id: int | None, team_id: int | None) -> None:
    if user_id is not None and team_id is not None:
        raise ValueError("give user_id or team_id, not both")


class QuotaCreate(BaseModel):
    metric: Metric
    period: PeriodUnit
    target: float = Field(gt=0, allow_inf_nan=False)
    user_id: int | None = None
    team_id: int | None = None
    effective_from: date
    effective_to: date | None = Field(None, description="the last day the quota applies")

    @model_validator(mode="after")
    def _check(self) -> Self:
        _one_subject(self.user_id, self.team_id)
        if self.user_id is None and self.team_id is None:
            raise ValueError("give user_id or team_id")
        if self.effective_to is not None and self.effective_to < self.effective_from:
            raise ValueError("effective_to is before effective_from")
        return self


class QuotaUpdate(BaseModel):
    target: float | None = Field(None, gt=0, allow_inf_nan=False)
    effective_from: date | None = None
    effective_to: date | None = Field(None, description="null: no end")

    @model_validator(mode="after")
    def _check(self) -> Self:
        # Only effective_to may be cleared; a quota always has a target and a start.
        for name in ("target", "effective_from"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} may not be null")
        return self


class QuotaRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    metric: Metric
    period: PeriodUnit
    target: float
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
    target: float
    actual: int | float | None = Field(description="from the period's start to the as-of time")
    attainment: float | None = Field(description="actual / target (target / actual if lower wins)")
    pace: float | None = Field(description="actual / (target x elapsed share); 1.0 is on track")
    forecast: float | None = Field(description="run rate: actual / elapsed share")
    elapsed_share: float = Field(description="share of the period before the as-of time, 0..1")
    members_target_sum: float | None = Field(
        None, description="team quotas: the sum of the members' quotas for this metric and period"
    )
    gap: float | None = Field(None, description="team quotas: target - members_target_sum")


class Attainment(BaseModel):
    date: date
    as_of: datetime = Field(description="actuals count up to this instant: min(now, end of date)")
    items: list[AttainmentItem]
