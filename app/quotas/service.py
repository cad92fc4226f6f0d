"""Metric series, quota targets and attainment, computed on read from activities."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, func, or_, select
from sqlalchemy.orm import Session

from app.access import (
    managed_team_ids,
    require_role,
    team_member_ids,
    visible_team,
    visible_user,
    visible_user_ids,
)
from app.errors import BadRequest, Conflict, Forbidden, NotFound, Unprocessable
from app.models import Activity, ActivityContact, Organization, Quota, Role, User
from app.pagination import Page, PageParams, decode_cursor, page_by_id, read_id
from app.quotas import rollup, schemas
from app.quotas.periods import Calendar, PeriodUnit
from app.quotas.rollup import METRICS, Bounds, Metric, MetricDef

MAX_PERIODS = 1000  # one series; a daily series of almost three years


@dataclass(frozen=True, slots=True)
class _Subject:
    user_id: int | None
    team_id: int | None
    member_ids: frozenset[int]  # whose activities count

    def read(self) -> schemas.Subject:
        if self.team_id is not None:
            return schemas.TeamSubject(team_id=self.team_id)
        assert self.user_id is not None
        return schemas.UserSubject(user_id=self.user_id)

    def owns(self) -> ColumnElement[bool]:
        if self.team_id is not None:
            return Quota.team_id == self.team_id
        return Quota.user_id == self.user_id


def _calendar(session: Session, caller: User) -> Calendar:
    org = session.get_one(Organization, caller.org_id)
    return Calendar(ZoneInfo(org.timezone), org.week_start, org.fiscal_year_start_month)


@contextmanager
def _dates_in_range() -> Iterator[None]:
    # Periods near year 1 or 9999 cannot be represented; that is bad input, not a 500.
    try:
        yield
    except OverflowError as error:
        raise BadRequest("date out of range") from error


def _subject(session: Session, caller: User, user_id: int | None, team_id: int | None) -> _Subject:
    """The user or team asked about (the caller by default); 404 unless the caller may see it."""
    if user_id is not None and team_id is not None:
        raise Unprocessable("give user_id or team_id, not both")
    if team_id is not None:
        team = visible_team(session, caller, team_id)
        return _Subject(None, team.id, frozenset(team_member_ids(session, team.id)))
    user = caller if user_id is None else visible_user(session, caller, user_id)
    return _Subject(user.id, None, frozenset({user.id}))


def _available(metric: Metric) -> MetricDef:
    definition = METRICS[metric]
    if definition.needs_deals:
        raise BadRequest(f"metric {metric} needs deals, not available yet")
    return definition


def _actuals(
    session: Session,
    org_id: int,
    definition: MetricDef,
    members: frozenset[int],
    bounds: list[Bounds],
) -> list[int]:
    """The metric in each of the sorted, disjoint UTC `bounds`, with one query for them all."""
    if not members or not bounds:
        return [0] * len(bounds)
    window = (
        Activity.org_id == org_id,
        Activity.user_id.in_(members),
        Activity.occurred_at >= bounds[0][0],
        Activity.occurred_at < bounds[-1][1],
    )
    if definition.kind == "distinct":
        rows = session.execute(
            select(Activity.occurred_at, ActivityContact.contact_id)
            .join(ActivityContact, ActivityContact.activity_id == Activity.id)
            .where(*window)
        )
        return rollup.bucket_distinct(bounds, rows)
    # Periods are local-calendar buckets; timestamps are bucketed in Python, not GROUP BY,
    # because SQLite and PostgreSQL share no way to truncate to a zone's week or fiscal quarter.
    moments = session.scalars(
        select(Activity.occurred_at).where(*window, Activity.type == definition.activity_type)
    )
    return rollup.bucket_counts(bounds, moments)


def metric_series(
    session: Session,
    caller: User,
    *,
    metric: Metric,
    period: PeriodUnit,
    start: date,
    end: date,
    user_id: int | None = None,
    team_id: int | None = None,
) -> schemas.MetricSeries:
    definition = _available(metric)
    if end < start:
        raise BadRequest("end is before start")
    subject = _subject(session, caller, user_id, team_id)
    calendar = _calendar(session, caller)
    with _dates_in_range():
        periods = calendar.between(start, end, period, limit=MAX_PERIODS + 1)
        bounds = [calendar.bounds(p) for p in periods]
    if len(periods) > MAX_PERIODS:
        raise BadRequest(f"more than {MAX_PERIODS} periods; shorten the range or widen the period")
    values = _actuals(session, caller.org_id, definition, subject.member_ids, bounds)
    series = [
        schemas.SeriesPoint(period_start=p.start, period_end=p.last_day, value=v)
        for p, v in zip(periods, values, strict=True)
    ]
    return schemas.MetricSeries(metric=metric, period=period, subject=subject.read(), series=series)


def _check_writable(
    session: Session, caller: User, *, user_id: int | None, team_id: int | None
) -> None:
    """Admins set anyone's targets; managers those of their teams and their teams' members."""
    require_role(caller, Role.admin, Role.manager)
    if team_id is not None:
        visible_team(session, caller, team_id)
        return
    assert user_id is not None
    visible_user(session, caller, user_id)
    if caller.role == Role.manager and user_id == caller.id:
        raise Forbidden("a manager's own targets are set by an admin")


def _visible_quota(session: Session, caller: User, quota_id: int) -> Quota:
    quota = session.get(Quota, quota_id)
    if quota is not None and quota.org_id == caller.org_id:
        if quota.team_id is not None:
            if quota.team_id in managed_team_ids(session, caller):
                return quota
        elif quota.user_id in visible_user_ids(session, caller):
            return quota
    raise NotFound(f"quota {quota_id} not found")


def _check_overlap(session: Session, quota: Quota) -> None:
    """One target per subject, metric and period at a time: attainment must not double up."""
    query = select(Quota.id).where(
        Quota.org_id == quota.org_id,
        Quota.team_id == quota.team_id
        if quota.team_id is not None
        else Quota.user_id == quota.user_id,
        Quota.metric == quota.metric,
        Quota.period == quota.period,
        or_(Quota.effective_to.is_(None), Quota.effective_to >= quota.effective_from),
    )
    if quota.id is not None:
        query = query.where(Quota.id != quota.id)
    if quota.effective_to is not None:
        query = query.where(Quota.effective_from <= quota.effective_to)
    clash = session.scalar(query.limit(1))
    if clash is not None:
        raise Conflict(f"quota {clash} already sets this target over some of these dates")


def create_quota(session: Session, caller: User, data: schemas.QuotaCreate) -> Quota:
    _check_writable(session, caller, user_id=data.user_id, team_id=data.team_id)
    _available(data.metric)
    quota = Quota(org_id=caller.org_id, **data.model_dump())
    _check_overlap(session, quota)
    session.add(quota)
    session.flush()
    return quota


def list_quotas(
    session: Session,
    caller: User,
    *,
    user_id: int | None = None,
    team_id: int | None = None,
    page: PageParams,
) -> Page[schemas.QuotaRead]:
    query = select(Quota).where(Quota.org_id == caller.org_id)
    if user_id is not None or team_id is not None:
        query = query.where(_subject(session, caller, user_id, team_id).owns())
    elif caller.role != Role.admin:
        query = query.where(
            or_(
                Quota.user_id.in_(visible_user_ids(session, caller)),
                Quota.team_id.in_(managed_team_ids(session, caller)),
            )
        )
    after = decode_cursor(page.cursor, read_id)
    if after is not None:
        query = query.where(Quota.id > after)
    rows = session.scalars(query.order_by(Quota.id).limit(page.limit + 1)).all()
    return page_by_id([schemas.QuotaRead.model_validate(q) for q in rows], page.limit)


def get_quota(session: Session, caller: User, quota_id: int) -> Quota:
    return _visible_quota(session, caller, quota_id)


def update_quota(session: Session, caller: User, quota_id: int, data: schemas.QuotaUpdate) -> Quota:
    quota = _visible_quota(session, caller, quota_id)
    _check_writable(session, caller, user_id=quota.user_id, team_id=quota.team_id)
    for name, value in data.model_dump(exclude_unset=True).items():
        setattr(quota, name, value)
    if quota.effective_to is not None and quota.effective_to < quota.effective_from:
        raise Unprocessable("effective_to is before effective_from")
    _check_overlap(session, quota)
    session.flush()
    return quota


def delete_quota(session: Session, caller: User, quota_id: int) -> None:
    quota = _visible_quota(session, caller, quota_id)
    _check_writable(session, caller, user_id=quota.user_id, team_id=quota.team_id)
    session.delete(quota)
    session.flush()


def _in_force(org_id: int, day: date) -> Select[Quota]:
    return select(Quota).where(
        Quota.org_id == org_id,
        Quota.effective_from <= day,
        or_(Quota.effective_to.is_(None), Quota.effective_to >= day),
    )


def _members_target_sum(
    session: Session, quota: Quota, members: frozenset[int], day: date
) -> float:
    total = session.scalar(
        _in_force(quota.org_id, day)
        .with_only_columns(func.sum(Quota.target))
        .where(Quota.user_id.in_(members), Quota.metric == quota.metric)
        .where(Quota.period == quota.period)
    )
    return float(total or 0)


def _item(
    session: Session,
    quota: Quota,
    subject: _Subject,
    calendar: Calendar,
    *,
    day: date,
    as_of: datetime,
) -> schemas.AttainmentItem:
    definition = METRICS[Metric(quota.metric)]
    period = calendar.containing(day, quota.period)
    start, end = calendar.bounds(period)
    window = (start, max(start, min(end, as_of)))
    actual = _actuals(session, quota.org_id, definition, subject.member_ids, [window])[0]
    share = rollup.elapsed_share((start, end), as_of)
    team_sum = None
    if subject.team_id is not None:
        team_sum = _members_target_sum(session, quota, subject.member_ids, day)
    return schemas.AttainmentItem(
        quota_id=quota.id,
        metric=Metric(quota.metric),
        period=period.unit,
        period_start=period.start,
        period_end=period.last_day,
        target=quota.target,
        actual=actual,
        attainment=rollup.attainment(
            actual, quota.target, lower_is_better=definition.lower_is_better
        ),
        pace=rollup.pace(actual, quota.target, share),
        forecast=rollup.run_rate_forecast(actual, share),
        elapsed_share=share,
        members_target_sum=team_sum,
        gap=None if team_sum is None else quota.target - team_sum,
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

    Actuals count activity up to as-of = min(now, the end of `day` in the organization's zone):
    for a past day, the figures are the period-to-date as it stood at that day's end (so a
    past date reproduces that day's report); for today, up to now. Elapsed share, pace and
    the run-rate forecast use the same instant. `day` defaults to today in the org's zone.
    """
    now = now or datetime.now(UTC)
    subject = _subject(session, caller, user_id, team_id)
    calendar = _calendar(session, caller)
    day = day or now.astimezone(calendar.tz).date()
    with _dates_in_range():
        as_of = min(now, calendar.bounds(calendar.containing(day, PeriodUnit.day))[1])
        quotas = session.scalars(
            _in_force(caller.org_id, day).where(subject.owns()).order_by(Quota.id)
        ).all()
        items = [_item(session, q, subject, calendar, day=day, as_of=as_of) for q in quotas]
    return schemas.Attainment(date=day, as_of=as_of, items=items)
