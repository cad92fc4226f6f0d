"""The conditions of semantics §10 as pure functions: facts (numbers) in, an Opening or None out.

Nothing here reads the database or the clock; app/alerts/evaluate.py gathers the facts through
the metric engine and reconciles the openings with the open alerts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any


class Kind(StrEnum):
    behind_pace = "behind_pace"
    low_coverage = "low_coverage"
    deal_going_cold = "deal_going_cold"
    few_new_opportunities = "few_new_opportunities"
    activity_drop = "activity_drop"
    connection_broken = "connection_broken"


@dataclass(frozen=True, slots=True)
class Thresholds:
    """An organization's settings; the defaults are §10's."""

    pace_min_elapsed: Decimal = Decimal("0.25")  # share of the period gone before judging pace
    pace_below: Decimal = Decimal("0.7")
    coverage_below: Decimal = Decimal("3.0")
    coverage_min_missing: Decimal = Decimal("0.25")  # share of the target still missing
    opportunities_recent_days: int = 30
    opportunities_baseline_days: int = 90
    opportunities_ratio: Decimal = Decimal("0.5")
    opportunities_min_average: Decimal = Decimal(2)  # per recent window, over the baseline
    activity_recent_days: int = 7
    activity_baseline_weeks: int = 8
    activity_ratio: Decimal = Decimal("0.5")
    activity_min_mean: Decimal = Decimal(5)  # per recent window (a week), over the baseline
    connection_error_hours: int = 24


@dataclass(frozen=True, slots=True)
class Opening:
    message: str
    evidence: dict[str, Any]


def number(value: Decimal | int | None, places: int = 4) -> int | float | None:
    """A figure for the evidence JSON: integers stay integers, others rounded."""
    if value is None:
        return None
    if isinstance(value, int) or value == value.to_integral_value():
        return int(value)
    return round(float(value), places)


def _moment(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _percent(share: Decimal) -> str:
    return f"{round(share * 100)}%"


def _figure(value: Decimal | int | None) -> str:
    shown = number(value, 2)
    return "no value" if shown is None else f"{shown:g}" if isinstance(shown, float) else str(shown)


@dataclass(frozen=True, slots=True)
class PaceFacts:
    """A quota in force, measured over its period so far (app/quotas/attainment.py)."""

    subject: str  # a person's or a team's name
    metric: str
    period: str  # day, week, month, quarter, year
    target: Decimal
    actual: Decimal | int | None
    elapsed_share: Decimal
    pace: Decimal | None


def behind_pace(f: PaceFacts, t: Thresholds) -> Opening | None:
    if f.elapsed_share < t.pace_min_elapsed or f.pace is None or f.pace >= t.pace_below:
        return None
    metric = f.metric.replace("_", " ")
    return Opening(
        f"{f.subject}: {_figure(f.actual)} of {_figure(f.target)} {metric} with "
        f"{_percent(f.elapsed_share)} of the {f.period} gone; pace {_figure(f.pace)}",
        {
            "metric": f.metric,
            "period": f.period,
            "target": number(f.target),
            "actual": number(f.actual),
            "elapsed_share": number(f.elapsed_share),
            "pace": number(f.pace),
            "pace_below": number(t.pace_below),
        },
    )


@dataclass(frozen=True, slots=True)
class CoverageFacts:
    """A revenue quota in force: won so far and the open pipeline expected in its period."""

    subject: str
    period: str
    target: Decimal
    actual: Decimal
    open_expected: Decimal  # unweighted value of open deals expected to close in the period


def low_coverage(f: CoverageFacts, t: Thresholds) -> Opening | None:
    missing = f.target - f.actual
    if missing <= 0 or missing < t.coverage_min_missing * f.target:
        return None
    coverage = f.open_expected / missing
    if coverage >= t.coverage_below:
        return None
    return Opening(
        f"{f.subject}: open pipeline {_figure(f.open_expected)} for the {_figure(missing)} "
        f"still missing of {_figure(f.target)} revenue this {f.period}; coverage "
        f"{_figure(coverage)}",
        {
            "period": f.period,
            "target": number(f.target),
            "actual": number(f.actual),
            "missing": number(missing),
            "open_pipeline": number(f.open_expected),
            "coverage": number(coverage),
            "coverage_below": number(t.coverage_below),
        },
    )


@dataclass(frozen=True, slots=True)
class DealFacts:
    name: str
    owner: str
    stage: str | None
    rotten_days: int
    created_at: datetime
    last_activity_at: datetime | None  # any user's, with the deal's (or company's) contacts
    now: datetime


def deal_going_cold(f: DealFacts) -> Opening | None:
    since = max(f.created_at, f.last_activity_at or f.created_at)
    quiet = f.now - since
    if quiet <= timedelta(days=f.rotten_days):
        return None
    days = quiet.days
    what = "no activity" if f.last_activity_at is None else "no activity since the last one"
    return Opening(
        f"{f.name} ({f.owner}, {f.stage or 'no stage'}): {what} for {days} days; "
        f"cold after {f.rotten_days}",
        {
            "stage": f.stage,
            "rotten_days": f.rotten_days,
            "quiet_days": days,
            "last_activity_at": _moment(f.last_activity_at),
            "quiet_since": _moment(since),
        },
    )


@dataclass(frozen=True, slots=True)
class OpportunityFacts:
    user: str
    recent: int  # opportunities created in the recent window
    baseline: int  # created in the baseline window before it


def few_new_opportunities(f: OpportunityFacts, t: Thresholds) -> Opening | None:
    windows = Decimal(t.opportunities_baseline_days) / Decimal(t.opportunities_recent_days)
    average = Decimal(f.baseline) / windows
    if average < t.opportunities_min_average or f.recent >= t.opportunities_ratio * average:
        return None
    days = t.opportunities_recent_days
    return Opening(
        f"{f.user}: {f.recent} new opportunities in the last {days} days against "
        f"{_figure(average)} per {days} days over the {t.opportunities_baseline_days} days before",
        {
            "recent": f.recent,
            "recent_days": days,
            "baseline": f.baseline,
            "baseline_days": t.opportunities_baseline_days,
            "average": number(average),
            "ratio": number(t.opportunities_ratio),
        },
    )


@dataclass(frozen=True, slots=True)
class ActivityFacts:
    user: str
    recent: int  # emails sent + meetings held + calls in the recent window
    baseline: int  # the same over the baseline weeks before it


def activity_drop(f: ActivityFacts, t: Thresholds) -> Opening | None:
    # the baseline's mean per recent window: with the defaults, per week of the 8 before
    days = t.activity_recent_days
    mean = Decimal(f.baseline) * days / (t.activity_baseline_weeks * 7)
    if mean < t.activity_min_mean or f.recent >= t.activity_ratio * mean:
        return None
    per = "a week" if days == 7 else f"per {days} days"
    return Opening(
        f"{f.user}: {f.recent} emails sent, meetings held and calls in the last {days} days "
        f"against {_figure(mean)} {per} over the {t.activity_baseline_weeks} weeks before",
        {
            "recent": f.recent,
            "recent_days": days,
            "baseline": f.baseline,
            "baseline_weeks": t.activity_baseline_weeks,
            "mean": number(mean),
            "ratio": number(t.activity_ratio),
        },
    )


@dataclass(frozen=True, slots=True)
class ConnectionFacts:
    user: str
    provider: str
    status: str
    failing_since: datetime | None  # in error since then (None: not failing)
    last_error: str | None
    now: datetime


def connection_broken(f: ConnectionFacts, t: Thresholds) -> Opening | None:
    evidence: dict[str, Any] = {"provider": f.provider, "status": f.status}
    if f.status == "needs_reconnect":
        return Opening(
            f"{f.user}'s {f.provider} connection needs to be reconnected",
            evidence | {"last_error": f.last_error},
        )
    if f.failing_since is None:
        return None
    failing = f.now - f.failing_since
    if failing <= timedelta(hours=t.connection_error_hours):
        return None
    hours = int(failing.total_seconds() // 3600)
    return Opening(
        f"{f.user}'s {f.provider} connection has failed for {hours} hours: {f.last_error}",
        evidence
        | {"failing_since": _moment(f.failing_since), "hours": hours, "last_error": f.last_error},
    )
