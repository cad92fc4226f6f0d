"""Alerts and their settings as the API reads and writes them."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)

from app.alerts.rules import Kind, Thresholds


class AlertStatus(StrEnum):
    open = "open"
    resolved = "resolved"


class AlertSubject(BaseModel):
    """What the alert is about; only the ids that apply are present."""

    user_id: int | None = Field(None, description="the person (a quota's, a deal's owner...)")
    team_id: int | None = Field(None, description="a team quota's team")
    deal_id: int | None = None
    quota_id: int | None = None
    connection_id: int | None = None

    @model_serializer(mode="wrap")
    def _present(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        return {k: v for k, v in data.items() if v is not None}


class AlertRead(BaseModel):
    id: int
    kind: Kind
    subject: AlertSubject
    message: str = Field(description="what holds, with the numbers behind it")
    evidence: dict[str, Any] = Field(description="the numbers the condition was judged on")
    opened_at: datetime
    resolved_at: datetime | None = Field(description="null while the condition holds")
    acknowledged_at: datetime | None


class AlertSettings(BaseModel):
    """The thresholds of semantics §10; a PUT replaces them all (a field left out takes its
    default)."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _numbers_only(cls, data: Any) -> Any:
        """JSON true or "7" is no number (pydantic's lax mode would read them as 1 and 7);
        30.0 is the integer 30, as JSON Schema has it."""
        if isinstance(data, dict):
            for name, value in data.items():
                if isinstance(value, bool | str | bytes):
                    raise ValueError(f"{name} must be a JSON number, not a boolean or a string")
        return data

    pace_min_elapsed: float = Field(
        0.25, ge=0, le=1, description="behind_pace: share of the period gone before pace is judged"
    )
    pace_below: float = Field(0.7, ge=0, le=10, description="behind_pace: opens below this pace")
    coverage_below: float = Field(
        3.0, ge=0, le=1000, description="low_coverage: opens below this coverage"
    )
    coverage_min_missing: float = Field(
        0.25,
        ge=0,
        le=1,
        description="low_coverage: only with at least this share of the target missing",
    )
    opportunities_recent_days: int = Field(
        30, ge=1, le=365, description="few_new_opportunities: the recent window, days"
    )
    opportunities_baseline_days: int = Field(
        90, ge=1, le=730, description="few_new_opportunities: the window before it, days"
    )
    opportunities_ratio: float = Field(
        0.5, ge=0, le=1, description="few_new_opportunities: opens below this share of the average"
    )
    opportunities_min_average: float = Field(
        2, ge=0, le=100_000, description="few_new_opportunities: judged only from this average"
    )
    activity_recent_days: int = Field(7, ge=1, le=90, description="activity_drop: recent days")
    activity_baseline_weeks: int = Field(
        8, ge=1, le=52, description="activity_drop: the weeks before it"
    )
    activity_ratio: float = Field(
        0.5, ge=0, le=1, description="activity_drop: opens below this share of the mean"
    )
    activity_min_mean: float = Field(
        5,
        ge=0,
        le=1_000_000,
        description="activity_drop: judged only from this mean per recent window (a week)",
    )
    connection_error_hours: int = Field(
        24, ge=1, le=24 * 90, description="connection_broken: hours in error before it opens"
    )

    def thresholds(self) -> Thresholds:
        values = self.model_dump()
        decimals = {k: Decimal(str(v)) for k, v in values.items() if isinstance(v, float)}
        return Thresholds(**(values | decimals))
