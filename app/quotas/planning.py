"""Top-down meets bottom-up: a team's target beside its members' and their suggested quotas,
and the quota plan that reads the funnel backwards (semantics §9). Reads through the engine."""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, date, datetime
from decimal import Decimal
from fractions import Fraction
from math import ceil

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.access import team_member_ids, visible_team
from app.activities.models import ActivityDay
from app.metrics.catalogue import METRICS, Metric, Pooled
from app.metrics.engine import OrgFrame, measure_pooled, org_frame
from app.metrics.periods import Period, PeriodUnit
from app.models import Deal, User, aggregated_utc
from app.quotas import history, schemas
from app.quotas.models import Quota
from app.quotas.subjects import dates_in_range, in_force, resolve

# The needs a plan answers, in the order of the API (a name the catalogue did not know would
# have a total of 0 in any history).
PLAN_INPUTS = (
    "emails_sent",
    "meetings_scheduled",
    "meetings_held",
    "calls",
    "chat_conversations",
    "contacts_engaged",
)


def _today(org: OrgFrame, day: date | None) -> date:
    return day or datetime.now(UTC).astimezone(org.tz).date()


def first_facts(session: Session, org: OrgFrame, members: Collection[int]) -> dict[int, date]:
    """Each member's first local day with an activity or a deal (created): where history begins.

    Two grouped MIN reads on the leading columns of activity_days' key and ix_deals_owner_created.
    """
    ids = sorted(members)
    firsts: dict[int, date] = {}
    if not ids:
        return firsts
    for user_id, day in session.execute(
        select(ActivityDay.user_id, func.min(ActivityDay.day))
        .where(ActivityDay.user_id.in_(ids))
        .group_by(ActivityDay.user_id)
    ):
        firsts[user_id] = day
    for user_id, created in session.execute(
        select(Deal.owner_id, func.min(Deal.created_at))
        .where(Deal.owner_id.in_(ids))
        .group_by(Deal.owner_id)
    ):
        local = aggregated_utc(created).astimezone(org.tz).date()
        firsts[user_id] = min(firsts.get(user_id, local), local)
    return firsts


def suggested(
    session: Session,
    org: OrgFrame,
    user_id: int,
    metric: Metric,
    periods: list[Period],
    first_fact: date | None,
) -> int | Decimal | None:
    """A user's suggested quota for `metric` from `periods` (the trailing window), §9."""
    own = history.since(periods, first_fact)
    bounds = [org.calendar.bounds(p) for p in own]
    pooled = measure_pooled(session, org, {user_id}, metric, bounds) if bounds else []
    return history.suggest(METRICS[metric], pooled)


def reconciliation(
    session: Session,
    caller: User,
    *,
    team_id: int,
    metric: Metric,
    period: PeriodUnit,
    day: date | None = None,
) -> schemas.Reconciliation:
    team = visible_team(session, caller, team_id)
    members = sorted(team_member_ids(session, team.id))
    org = org_frame(session, caller.org_id)
    day = _today(org, day)
    definition = METRICS[metric]
    with dates_in_range():
        current = org.calendar.containing(day, period)
        window = history.trailing(org.calendar, day, period)
        quotas = session.scalars(
            in_force(caller.org_id, day).where(Quota.metric == metric, Quota.period == period)
        )
        targets = {(q.user_id, q.team_id): Decimal(q.target) for q in quotas}
        firsts = first_facts(session, org, members)
        rows = [
            schemas.MemberTarget(
                user_id=uid,
                target=targets.get((uid, None)),
                suggested=suggested(session, org, uid, metric, window, firsts.get(uid)),
            )
            for uid in members
        ]
    team_target = targets.get((None, team.id))
    members_sum = gap = suggested_sum = None
    if definition.additive:
        members_sum = sum((r.target for r in rows if r.target is not None), Decimal(0))
        gap = None if team_target is None else team_target - members_sum
        suggestions = [Decimal(r.suggested) for r in rows if r.suggested is not None]
        suggested_sum = sum(suggestions, Decimal(0)) if suggestions else None
    return schemas.Reconciliation(
        team_id=team.id,
        metric=metric,
        period=period,
        period_start=current.start,
        period_end=current.last_day,
        team_target=team_target,
        members_target_sum=members_sum,
        gap=gap,
        suggested_sum=suggested_sum,
        members=rows,
    )


def plan(
    session: Session,
    caller: User,
    *,
    target: Decimal,
    period: PeriodUnit,
    day: date | None = None,
    user_id: int | None = None,
    team_id: int | None = None,
) -> schemas.Plan:
    """deals = ⌈target ÷ A⌉, opportunities = ⌈deals ÷ W⌉, each input ⌈opportunities × its
    total ÷ opportunities created⌉, all from the subject's last 4 complete periods pooled.

    Computed on exact fractions of the pooled components (A = value won ÷ deals won, W = won ÷
    closed), never on rounded quotients: ⌈100 ÷ (100/3)⌉ must be 3, not 4.
    """
    subject = resolve(session, caller, user_id, team_id)
    org = org_frame(session, caller.org_id)
    day = _today(org, day)
    with dates_in_range():
        current = org.calendar.containing(day, period)
        window = history.trailing(org.calendar, day, period)
        span = (org.calendar.bounds(window[0])[0], org.calendar.bounds(window[-1])[1])

    def pooled(name: str) -> Pooled:
        if name not in Metric.__members__:
            return Pooled()
        return measure_pooled(session, org, subject.member_ids, Metric(name), [span])[0]

    value, rate, created = (
        pooled("avg_deal_value"),
        pooled("win_rate"),
        pooled("opportunities_created"),
    )
    missing: list[str] = []
    deals_needed = opps_needed = None
    if value.total > 0 and value.n:
        deals_needed = ceil(Fraction(target) * value.n / Fraction(value.total))
    else:
        missing.append("avg_deal_value")
    if rate.total > 0 and rate.n:
        if deals_needed is not None:
            opps_needed = ceil(deals_needed * Fraction(rate.n) / Fraction(rate.total))
    else:
        missing.append("win_rate")
    if not created.total:
        missing.append("opportunities_created")
    inputs: dict[str, int | None] = {}
    for name in PLAN_INPUTS:
        if opps_needed is None or not created.total:
            inputs[name] = None
        else:
            inputs[name] = ceil(
                opps_needed * Fraction(pooled(name).total) / Fraction(created.total)
            )
    average = value.value(METRICS[Metric.avg_deal_value])
    win_rate = rate.value(METRICS[Metric.win_rate])
    return schemas.Plan(
        period_start=current.start,
        period_end=current.last_day,
        target=target,
        basis=schemas.PlanBasis(
            avg_deal_value=None if average is None else Decimal(average),
            win_rate=None if win_rate is None else Decimal(win_rate),
            window_start=window[0].start,
            window_end=window[-1].last_day,
        ),
        needed=schemas.PlanNeeded(
            deals_won=deals_needed, opportunities_created=opps_needed, **inputs
        ),
        missing=missing,
    )
