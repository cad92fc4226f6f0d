"""`report` for many subjects at once: the alert evaluation's whole organization, a team and
its members for the dashboard.

Per subject, `report` spends one statement per quota (the actual) and two on open deals: the
10M bench's organization was ~2,500 statements. Here each (metric, period) is read once for
every user subject (`measure_each`, grouped by user), and the open deals of every subject at
once; team subjects pool their members (`measure`, one statement per team quota), as `report`
does. The items are exactly `report`'s (tests/quotas/test_report_many.py).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from app.access import require_role
from app.deals.currency import RateBook, load_rates
from app.deals.models import PipelineStage
from app.errors import Unprocessable
from app.metrics import deals
from app.metrics.catalogue import METRICS, Forecast, Metric, Value
from app.metrics.engine import OrgFrame, measure, measure_each, org_frame
from app.metrics.periods import Period, PeriodUnit
from app.models import Deal, DealStatus, Role, User
from app.quotas import schemas
from app.quotas.attainment import as_of_day, item, members_targets, window
from app.quotas.models import Quota
from app.quotas.subjects import Subject, dates_in_range, in_force, resolve


@dataclass
class _OpenDeals:
    """The open deals of every subject's members, read once: those expected in the periods
    asked about (by owner), and how many have no expected close date (by owner)."""

    rates: RateBook | None
    expected: dict[int, list[tuple[date, deals.OpenDeal]]] = field(default_factory=dict)
    without_date: dict[int, int] = field(default_factory=dict)


def _open_deals(
    session: Session, org: OrgFrame, owners: set[int], periods: set[Period]
) -> _OpenDeals:
    if not periods:
        return _OpenDeals(None)
    found = _OpenDeals(load_rates(session, org.id))
    if not owners:
        return found
    members = sorted(owners)
    stage = and_(PipelineStage.org_id == Deal.org_id, PipelineStage.name == Deal.stage)
    rows = session.execute(
        select(
            Deal.owner_id,
            Deal.expected_close_date,
            Deal.value,
            Deal.cost,
            Deal.currency,
            PipelineStage.probability,
        )
        .outerjoin(PipelineStage, stage)
        .where(
            Deal.owner_id.in_(members),
            Deal.status == DealStatus.open,
            Deal.expected_close_date >= min(p.start for p in periods),
            Deal.expected_close_date < max(p.end for p in periods),
        )
    )
    for owner, expected, value, cost, currency, probability in rows:
        assert expected is not None  # the range above leaves out deals without one
        deal = deals.OpenDeal(value, cost, currency, probability or deals.ZERO)
        found.expected.setdefault(owner, []).append((expected, deal))
    counts = session.execute(
        select(Deal.owner_id, func.count())
        .where(
            Deal.owner_id.in_(members),
            Deal.status == DealStatus.open,
            Deal.expected_close_date.is_(None),
        )
        .group_by(Deal.owner_id)
    )
    found.without_date = {owner: n for owner, n in counts}
    return found


@dataclass
class _SubjectPipeline:
    """One subject's share of `_OpenDeals` (app.quotas.attainment.PipelineView)."""

    read: _OpenDeals
    members: frozenset[int]
    day: date

    def rates(self) -> RateBook:
        assert self.read.rates is not None  # read whenever a pipeline quota is in force
        return self.read.rates

    def expected(self, period: Period) -> list[deals.OpenDeal]:
        return [
            deal
            for member in sorted(self.members)
            for expected, deal in self.read.expected.get(member, ())
            if period.start <= expected < period.end
        ]

    def without_date(self) -> int:
        return sum(self.read.without_date.get(m, 0) for m in self.members)


def report_many(
    session: Session,
    org: OrgFrame,
    subjects: Sequence[Subject],
    *,
    now: datetime,
    day: date | None = None,
) -> list[schemas.Attainment]:
    """`report` of each subject (in the order given): every quota in force on `day`."""
    day = day or now.astimezone(org.tz).date()
    users = sorted({s.user_id for s in subjects if s.team_id is None and s.user_id is not None})
    teams = sorted({s.team_id for s in subjects if s.team_id is not None})
    with dates_in_range():
        as_of = as_of_day(org, now, day)
        quotas = session.scalars(
            in_force(org.id, day)
            .where(or_(Quota.user_id.in_(users), Quota.team_id.in_(teams)))
            .order_by(Quota.id)
        ).all()
        windows = {q.id: window(org, q, day, as_of) for q in quotas}
        actuals = _actuals(session, org, subjects, quotas, windows)
        pipelined = {
            windows[q.id][0]
            for q in quotas
            if METRICS[Metric(q.metric)].forecast is Forecast.pipeline
        }
        owners = {m for s in subjects for m in s.member_ids}
        read = _open_deals(session, org, owners, pipelined)
        reports: list[schemas.Attainment] = []
        for subject in subjects:
            mine = [q for q in quotas if _owned(q, subject)]
            team_sums = {}
            if subject.team_id is not None and mine:
                team_sums = members_targets(session, org.id, subject.member_ids, day)
            pipeline = _SubjectPipeline(read, subject.member_ids, day)
            items = [
                item(
                    q,
                    subject,
                    org,
                    actual=actuals[_key(subject), q.id],
                    day=day,
                    as_of=as_of,
                    team_sums=team_sums,
                    pipeline=pipeline,
                )
                for q in mine
            ]
            reports.append(schemas.Attainment(date=day, as_of=as_of, items=items))
    return reports


def _owned(quota: Quota, subject: Subject) -> bool:
    if subject.team_id is not None:
        return quota.team_id == subject.team_id
    return quota.user_id == subject.user_id


def _key(subject: Subject) -> tuple[str, int]:
    if subject.team_id is not None:
        return ("team", subject.team_id)
    assert subject.user_id is not None
    return ("user", subject.user_id)


def _actuals(
    session: Session,
    org: OrgFrame,
    subjects: Sequence[Subject],
    quotas: Sequence[Quota],
    windows: dict[int, tuple[Period, tuple[datetime, datetime]]],
) -> dict[tuple[tuple[str, int], int], Value]:
    """(subject, quota id) -> actual. Users' quotas: one `measure_each` per metric and period
    unit (all quotas of a unit share its window); teams': `measure` per quota."""
    actuals: dict[tuple[tuple[str, int], int], Value] = {}
    by_window: dict[tuple[Metric, PeriodUnit], list[Quota]] = defaultdict(list)
    for q in quotas:
        if q.user_id is not None:
            by_window[Metric(q.metric), PeriodUnit(q.period)].append(q)
    for (metric, _unit), group in by_window.items():
        bounds = windows[group[0].id][1]
        values = measure_each(
            session, org, {q.user_id for q in group if q.user_id}, metric, [bounds]
        )
        for q in group:
            assert q.user_id is not None
            actuals[("user", q.user_id), q.id] = values[q.user_id][0]
    members = {s.team_id: s.member_ids for s in subjects if s.team_id is not None}
    for q in quotas:
        if q.team_id is not None:
            bounds = windows[q.id][1]
            (actual,) = measure(session, org, members[q.team_id], Metric(q.metric), [bounds])
            actuals[("team", q.team_id), q.id] = actual
    return actuals


def team_attainment(
    session: Session,
    caller: User,
    *,
    team_id: int | None,
    day: date | None = None,
    now: datetime | None = None,
) -> schemas.Attainment:
    """GET /quotas/attainment?team_id=&members=true: the team's report and each current
    member's, read together (a manager's dashboard: one call instead of one per rep)."""
    if team_id is None:
        raise Unprocessable("members=true needs team_id")
    require_role(caller, Role.admin, Role.manager)  # a rep sees no colleague's figures
    now = now or datetime.now(UTC)
    team = resolve(session, caller, None, team_id)
    people = [Subject(m, None, frozenset({m})) for m in sorted(team.member_ids)]
    org = org_frame(session, caller.org_id)
    ours, *theirs = report_many(session, org, [team, *people], now=now, day=day)
    members = [
        schemas.MemberAttainment(user_id=p.user_id, items=r.items)
        for p, r in zip(people, theirs, strict=True)
        if p.user_id is not None
    ]
    return ours.model_copy(update={"members": members})
