"""Attainment of every quota in force on a date: actual, pace, forecasts, and for teams the
members' targets beside the team's. Every actual comes from the metric engine."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Protocol

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from app.deals.currency import RateBook, load_rates
from app.deals.models import PipelineStage
from app.metrics import deals
from app.metrics.catalogue import METRICS, Forecast, Metric, Value
from app.metrics.days import Bounds
from app.metrics.engine import OrgFrame, measure, org_frame
from app.metrics.periods import Period, PeriodUnit
from app.models import Deal, DealStatus, User
from app.quotas import rollup, schemas
from app.quotas.models import Quota
from app.quotas.subjects import Subject, dates_in_range, in_force, resolve


def members_targets(
    session: Session, org_id: int, members: Collection[int], day: date
) -> dict[tuple[str, str], Decimal]:
    """The sum of the members' quotas in force on `day`, per (metric, period unit)."""
    if not members:
        return {}
    rows = session.execute(
        in_force(org_id, day)
        .with_only_columns(Quota.metric, Quota.period, func.sum(Quota.target))
        .where(Quota.user_id.in_(sorted(members)))
        .group_by(Quota.metric, Quota.period)
    )
    return {(metric, unit): Decimal(total) for metric, unit, total in rows}


class PipelineView(Protocol):
    """A subject's open deals as the pipeline fields read them."""

    day: date

    def rates(self) -> RateBook: ...

    def expected(self, period: Period) -> list[deals.OpenDeal]: ...

    def without_date(self) -> int: ...


@dataclass
class _Pipeline:
    """The subject's open deals, read once per report: rates, and per period the deals expected."""

    session: Session
    org: OrgFrame
    members: list[int]
    day: date
    _rates: RateBook | None = None
    _without_date: int | None = None
    _expected: dict[Period, list[deals.OpenDeal]] = field(default_factory=dict)

    def rates(self) -> RateBook:
        if self._rates is None:
            self._rates = load_rates(self.session, self.org.id)
        return self._rates

    def expected(self, period: Period) -> list[deals.OpenDeal]:
        """Open deals of the members expected to close in `period` (index ix_deals_owner_open),
        read once for the revenue, margin and deals-won quotas of the same period."""
        if period not in self._expected:
            self._expected[period] = self._read_expected(period)
        return self._expected[period]

    def _read_expected(self, period: Period) -> list[deals.OpenDeal]:
        if not self.members:
            return []
        stage = and_(PipelineStage.org_id == Deal.org_id, PipelineStage.name == Deal.stage)
        rows = self.session.execute(
            select(Deal.value, Deal.cost, Deal.currency, PipelineStage.probability)
            .outerjoin(PipelineStage, stage)
            .where(
                Deal.owner_id.in_(self.members),
                Deal.status == DealStatus.open,
                Deal.expected_close_date >= period.start,
                Deal.expected_close_date < period.end,
            )
        )
        return [deals.OpenDeal(v, c, cur, p or Decimal(0)) for v, c, cur, p in rows]

    def without_date(self) -> int:
        if self._without_date is None:
            self._without_date = 0
            if self.members:
                query = select(func.count()).where(
                    Deal.owner_id.in_(self.members),
                    Deal.status == DealStatus.open,
                    Deal.expected_close_date.is_(None),
                )
                self._without_date = self.session.scalar(query) or 0
        return self._without_date


def _pipeline_fields(
    quota: Quota, metric: Metric, actual: Value, period: Period, pipeline: PipelineView
) -> dict[str, object]:
    amount = METRICS[metric].amount
    view = deals.pipeline(amount, pipeline.expected(period), pipeline.rates(), pipeline.day)
    won = Decimal(actual or 0)
    fields: dict[str, object] = {
        "forecast_pipeline": won + view.weighted,
        "open_without_close_date": pipeline.without_date(),
    }
    if metric is Metric.revenue:
        fields["coverage"] = rollup.coverage(view.unweighted, quota.target, won)
    return fields


def window(org: OrgFrame, quota: Quota, day: date, as_of: datetime) -> tuple[Period, Bounds]:
    """The period of `day` the quota counts over, and the part of it before as-of."""
    period = org.calendar.containing(day, quota.period)
    start, end = org.calendar.bounds(period)
    return period, (start, max(start, min(end, as_of)))


def item(
    quota: Quota,
    subject: Subject,
    org: OrgFrame,
    *,
    actual: Value,
    day: date,
    as_of: datetime,
    team_sums: dict[tuple[str, str], Decimal],
    pipeline: PipelineView,
) -> schemas.AttainmentItem:
    """One quota's line of the report, from its actual (measured by the caller)."""
    metric = Metric(quota.metric)
    definition = METRICS[metric]
    period = org.calendar.containing(day, quota.period)
    start, end = org.calendar.bounds(period)
    share = rollup.elapsed_share((start, end), as_of)
    target = Decimal(quota.target)
    attained = rollup.attainment(actual, target, lower_is_better=definition.lower_is_better)
    if definition.forecast is Forecast.steady:
        pace, forecast = attained, (None if actual is None else Decimal(actual))
    else:
        pace = rollup.pace(actual, target, share)
        forecast = rollup.run_rate_forecast(actual, share)
    extra: dict[str, object] = {}
    if subject.team_id is not None and definition.additive:
        team_sum = team_sums.get((quota.metric, quota.period), Decimal(0))
        extra |= {"members_target_sum": team_sum, "gap": target - team_sum}
    if definition.forecast is Forecast.pipeline:
        extra |= _pipeline_fields(quota, metric, actual, period, pipeline)
    return schemas.AttainmentItem.model_validate(
        {
            "quota_id": quota.id,
            "metric": metric,
            "period": period.unit,
            "period_start": period.start,
            "period_end": period.last_day,
            "target": target,
            "actual": actual,
            "attainment": attained,
            "pace": pace,
            "forecast": forecast,
            "elapsed_share": share,
            **extra,
        }
    )


def attainment(
    session: Session,
    caller: User,
    *,
    day: date | None = None,
    user_id: int | None = None,
    team_id: int | None = None,
    now: datetime | None = None,
) -> schemas.Attainment:
    """Every quota of the subject in force on `day`, measured over the period containing it.

    Actuals count up to as-of = min(now, the end of `day` in the organization's zone): for a
    past day, the period-to-date as it stood at that day's end (so a past date reproduces that
    day's report); for today, up to now. Elapsed share, pace and the run-rate forecast use the
    same instant; open deals in the pipeline forecast are converted at `day`'s rates.
    """
    now = now or datetime.now(UTC)
    subject = resolve(session, caller, user_id, team_id)
    return report(session, org_frame(session, caller.org_id), subject, day=day, now=now)


def as_of_day(org: OrgFrame, now: datetime, day: date) -> datetime:
    """min(now, the end of `day` in the organization's zone)."""
    return min(now, org.calendar.bounds(org.calendar.containing(day, PeriodUnit.day))[1])


def report(
    session: Session, org: OrgFrame, subject: Subject, *, now: datetime, day: date | None = None
) -> schemas.Attainment:
    """`attainment` for a subject already resolved, with no caller, one statement per quota;
    `app.quotas.batch.report_many` gives the same for many subjects at once."""
    day = day or now.astimezone(org.tz).date()
    with dates_in_range():
        as_of = as_of_day(org, now, day)
        quotas: Sequence[Quota] = session.scalars(
            in_force(org.id, day).where(subject.owns()).order_by(Quota.id)
        ).all()
        team_sums = {}
        if subject.team_id is not None and quotas:
            team_sums = members_targets(session, org.id, subject.member_ids, day)
        pipeline = _Pipeline(session, org, sorted(subject.member_ids), day)
        items = []
        for quota in quotas:
            metric, (_, bounds) = Metric(quota.metric), window(org, quota, day, as_of)
            (actual,) = measure(session, org, subject.member_ids, metric, [bounds])
            items.append(
                item(
                    quota,
                    subject,
                    org,
                    actual=actual,
                    day=day,
                    as_of=as_of,
                    team_sums=team_sums,
                    pipeline=pipeline,
                )
            )
    return schemas.Attainment(date=day, as_of=as_of, items=items)
