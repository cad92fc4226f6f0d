"""Top performers of a team (semantics §12): access, the period, and every member's figures
read through the metric engine (one statement per metric for the whole team), then judged by
the pure `drivers` module."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy.orm import Session

from app.access import team_member_ids, visible_team
from app.errors import Forbidden
from app.insights import drivers, schemas
from app.metrics.catalogue import METRICS, Level, Metric, Value
from app.metrics.engine import measure_each, org_frame
from app.metrics.periods import PeriodUnit
from app.models import Role, User
from app.quotas.subjects import dates_in_range

# Input and middle metrics of the catalogue, in its order: chat_conversations joins by itself
# once the catalogue knows it.
DRIVER_METRICS = tuple(m for m, d in METRICS.items() if d.level in (Level.input, Level.middle))
DERIVED = (drivers.PER_OPPORTUNITY, drivers.PER_DEAL_WON)
DRIVERS = tuple(m.value for m in DRIVER_METRICS) + DERIVED


def performers(
    session: Session,
    caller: User,
    *,
    team_id: int,
    period: PeriodUnit,
    day: date | None = None,
    outcome: Metric = Metric.revenue,
    now: datetime | None = None,
) -> schemas.Performers:
    """The team's current members ranked on `outcome` over the period containing `day`.

    A rep gets 403 for their own team (the answer sets colleagues' figures side by side) and,
    as for any team they cannot see, 404 for another. Facts count from the period's start to
    its end or now, whichever comes first (the current period: to date).
    """
    if caller.role == Role.rep and caller.team_id == team_id:
        raise Forbidden("a rep sees their own figures only, not their team's side by side")
    team = visible_team(session, caller, team_id)
    members = sorted(team_member_ids(session, team.id))
    org = org_frame(session, caller.org_id)
    now = now or datetime.now(UTC)
    day = day or now.astimezone(org.tz).date()
    with dates_in_range():
        span = org.calendar.containing(day, period)
        start, end = org.calendar.bounds(span)
    as_of = max(start, min(end, now))
    window = [(start, as_of)]

    def each(metric: Metric) -> dict[int, Value]:
        return {m: v[0] for m, v in measure_each(session, org, members, metric, window).items()}

    read = {metric: each(metric) for metric in {*DRIVER_METRICS, outcome, Metric.deals_won}}
    rows = []
    for member in members:
        values: dict[str, Value] = {m.value: read[m][member] for m in DRIVER_METRICS}
        done = drivers.activity(values)
        values[drivers.PER_OPPORTUNITY] = drivers.per(done, values["opportunities_created"])
        values[drivers.PER_DEAL_WON] = drivers.per(done, read[Metric.deals_won][member])
        rows.append(drivers.Member(member, read[outcome][member], values))
    compared = [m for m in DRIVERS if m != outcome.value]  # the outcome leads by definition
    ranking = drivers.drivers(
        rows, lower_is_better=METRICS[outcome].lower_is_better, metrics=compared
    )
    return schemas.Performers(
        team_id=team.id,
        outcome=outcome,
        period=period,
        period_start=span.start,
        period_end=span.last_day,
        as_of=as_of,
        members=[
            schemas.MemberFigures(user_id=m.user_id, outcome=m.outcome, values=dict(m.values))
            for m in ranking.members
        ],
        top_user_ids=ranking.top_user_ids,
        drivers=[
            schemas.DriverRead(
                metric=d.metric, top_mean=d.top_mean, others_mean=d.others_mean, ratio=d.ratio
            )
            for d in ranking.drivers
        ],
    )
