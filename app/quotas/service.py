"""Metric series and quota targets (create, list, change, delete)."""

from __future__ import annotations

from datetime import date

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from app.access import managed_team_ids, require_role, visible_team, visible_user, visible_user_ids
from app.errors import BadRequest, Conflict, Forbidden, NotFound
from app.metrics.catalogue import Metric
from app.metrics.engine import measure, org_frame
from app.metrics.periods import PeriodUnit
from app.models import Role, User
from app.pagination import Page, PageParams, decode_cursor, page_by_id, read_id
from app.quotas import schemas
from app.quotas.models import Quota
from app.quotas.subjects import dates_in_range, resolve

MAX_PERIODS = 1000  # one series; a daily series of almost three years


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
    if end < start:
        raise BadRequest("end is before start")
    subject = resolve(session, caller, user_id, team_id)
    org = org_frame(session, caller.org_id)
    with dates_in_range():
        periods = org.calendar.between(start, end, period, limit=MAX_PERIODS + 1)
        if len(periods) > MAX_PERIODS:
            raise BadRequest(
                f"more than {MAX_PERIODS} periods; shorten the range or widen the period"
            )
        bounds = [org.calendar.bounds(p) for p in periods]
    values = measure(session, org, subject.member_ids, metric, bounds)
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
        query = query.where(resolve(session, caller, user_id, team_id).owns())
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
        raise Conflict("the quota would end (effective_to) before it starts (effective_from)")
    _check_overlap(session, quota)
    session.flush()
    return quota


def delete_quota(session: Session, caller: User, quota_id: int) -> None:
    quota = _visible_quota(session, caller, quota_id)
    _check_writable(session, caller, user_id=quota.user_id, team_id=quota.team_id)
    session.delete(quota)
    session.flush()
