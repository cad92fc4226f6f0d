"""The one metric engine: (organization, members, metric, periods) -> values, with no caller.

Series, attainment, reconciliation and the plan all measure through `measure`/`measure_pooled`;
access checks wrap them. Each read is one SQL statement whose size follows the number of
periods, days and members asked about, never the number of activities in them:

- activity counts add `activity_days` rows (one per user, local day and type);
- `contacts_engaged` is COUNT(DISTINCT contact_id) over `contact_days`, per period, in SQL;
- an interval edge that is not a local midnight (as of now) adds that part of the day from the
  raw activity rows (index ix_activities_user_time, one day at most per edge);
- deal metrics read the deals of the members in the window (indexes (owner_id, created_at) and
  (owner_id, closed_at)) and bucket them in `app.metrics.deals`.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Date,
    Integer,
    Select,
    and_,
    bindparam,
    case,
    column,
    func,
    literal,
    select,
    text,
    union_all,
)
from sqlalchemy.orm import Session

from app.activities.models import Activity, ActivityDay
from app.contacts.models import ActivityContact, ContactDay
from app.metrics import deals
from app.metrics.catalogue import (
    METRICS,
    Amount,
    Metric,
    MetricDef,
    Moment,
    Pooled,
    Source,
    Value,
)
from app.metrics.days import Bounds, split
from app.metrics.periods import Calendar
from app.models import Deal, DealStatus, Organization, UTCDateTime


@dataclass(frozen=True, slots=True)
class OrgFrame:
    """What the engine needs to know about an organization."""

    id: int
    calendar: Calendar
    currency: str

    @property
    def tz(self) -> ZoneInfo:
        return self.calendar.tz


def org_frame(session: Session, org_id: int) -> OrgFrame:
    org = session.get_one(Organization, org_id)
    calendar = Calendar(ZoneInfo(org.timezone), org.week_start, org.fiscal_year_start_month)
    return OrgFrame(org.id, calendar, org.currency)


def measure(
    session: Session,
    org: OrgFrame,
    member_ids: Collection[int],
    metric: Metric,
    bounds: Sequence[Bounds],
) -> list[Value]:
    """The metric for these members (pooled: a team) in each of the sorted, disjoint `bounds`.

    Counts are int, sums Decimal, ratios and means Decimal or None where nothing divides.
    """
    definition = METRICS[metric]
    return [p.value(definition) for p in measure_pooled(session, org, member_ids, metric, bounds)]


def measure_pooled(
    session: Session,
    org: OrgFrame,
    member_ids: Collection[int],
    metric: Metric,
    bounds: Sequence[Bounds],
) -> list[Pooled]:
    """The components (total, number of facts) behind `measure`, for pooling across windows."""
    definition = METRICS[metric]
    members = sorted(set(member_ids))
    if not members or not bounds:
        return [Pooled() for _ in bounds]
    if definition.source is Source.deals:
        return _deals(session, org, members, definition, bounds)
    if all(end <= start for start, end in bounds):
        return [Pooled() for _ in bounds]  # empty intervals (as of a period's first instant)
    rows = session.execute(_activity_query(org, members, definition, bounds))
    totals = [Decimal(0)] * len(bounds)
    for index, total in rows:
        totals[index] += Decimal(total or 0)
    return [Pooled(t, 0) for t in totals]


def measure_each(
    session: Session,
    org: OrgFrame,
    member_ids: Collection[int],
    metric: Metric,
    bounds: Sequence[Bounds],
) -> dict[int, list[Value]]:
    """`measure` of each member alone, every member asked about included (0 or None).

    One SQL statement for all of them, the reads of `measure_pooled` keyed by user as well as
    by period: a 10-rep team's 13 metrics are 13 statements, not 130.
    """
    definition = METRICS[metric]
    members = sorted(set(member_ids))
    pooled = {m: [Pooled() for _ in bounds] for m in members}
    rows: Any = ()  # (user_id, period index, total, number of facts)
    asked = bool(members and bounds)
    if asked and definition.source is Source.deals:
        at = Deal.created_at if definition.moment is Moment.created_at else Deal.closed_at
        where = [Deal.owner_id.in_(members), at >= bounds[0][0], at < bounds[-1][1]]
        if definition.statuses is not None:
            where.append(Deal.status.in_(sorted(definition.statuses)))
        if definition.amount is Amount.cycle_days:  # bucketed in Python, as in _deals
            facts: dict[int, list[deals.DealFact]] = {m: [] for m in members}
            columns = (Deal.status, Deal.created_at, Deal.closed_at, Deal.value_base)
            query = select(Deal.owner_id, *columns, Deal.cost_base).where(*where)
            for owner, status, created, closed, value, cost in session.execute(query):
                facts[owner].append(deals.DealFact(status, created, closed, value, cost))
            pooled = {m: deals.pool(definition, f, bounds, org.tz) for m, f in facts.items()}
        else:
            b = _moment_table(bounds)
            rows = session.execute(
                select(Deal.owner_id, b.c.idx, func.sum(_AMOUNTS[definition.amount]), func.count())
                .select_from(Deal)
                .join(b, and_(at >= b.c.lo, at < b.c.hi))
                .where(*where)
                .group_by(Deal.owner_id, b.c.idx)
            )
    elif asked and any(end > start for start, end in bounds):
        days, pieces = _spans(bounds, org.tz)
        parts: list[Select[Any, Any]] = []
        contacts = definition.source is Source.contacts
        if days:
            b = _day_table(days)
            day = ContactDay if contacts else ActivityDay
            whole = (
                select(day.user_id, b.c.column1.label("idx"))
                .select_from(day)
                .join(b, and_(day.day >= b.c.column2, day.day < b.c.column3))
                .where(day.user_id.in_(members), day.day >= days[0][1], day.day < days[-1][2])
            )
            if contacts:
                parts.append(whole.add_columns(ContactDay.contact_id))
            else:
                parts.append(
                    whole.add_columns(func.sum(ActivityDay.count), literal(0, Integer))
                    .where(ActivityDay.type == definition.activity_type)
                    .group_by(ActivityDay.user_id, b.c.column1)
                )
        for index, (start, end) in pieces:
            piece = select(Activity.user_id, literal(index, Integer).label("idx"))
            if contacts:
                parts.append(
                    piece.add_columns(ActivityContact.contact_id)
                    .select_from(Activity)
                    .join(ActivityContact, ActivityContact.activity_id == Activity.id)
                    .where(*_raw(members, start, end))
                )
            else:
                parts.append(
                    piece.add_columns(func.count(), literal(0, Integer))
                    .where(*_raw(members, start, end), Activity.type == definition.activity_type)
                    .group_by(Activity.user_id)
                )
        union = parts[0] if len(parts) == 1 else union_all(*parts)
        if contacts:
            f = union.subquery("facts")
            f_user, f_idx, f_contact = f.c
            union = select(
                f_user, f_idx, func.count(f_contact.distinct()), literal(0, Integer)
            ).group_by(f_user, f_idx)
        rows = session.execute(union)
    for user_id, index, total, n in rows:
        pooled[user_id][index] += Pooled(Decimal(total or 0), n)
    return {m: [p.value(definition) for p in each] for m, each in pooled.items()}


def _spans(bounds: Sequence[Bounds], tz: ZoneInfo) -> tuple[list[Any], list[Any]]:
    """Whole local days per period as (idx, first, end), raw edge pieces as (idx, start, end)."""
    days: list[tuple[int, date, date]] = []
    pieces: list[tuple[int, Bounds]] = []
    for index, interval in enumerate(bounds):
        parts = split(interval, tz)
        if parts.days is not None:
            days.append((index, *parts.days))
        pieces += [(index, piece) for piece in parts.pieces]
    return days, pieces


def _day_table(days: list[tuple[int, date, date]]) -> Any:
    """The periods as a derived table (idx, lo, hi) of whole local days, joined by range.

    A bare VALUES list: SQLite and PostgreSQL both name its columns column1, column2, ... (SQLite
    cannot alias them). Measured on PostgreSQL, a UNION ALL of one-row SELECTs instead planned a
    Parallel Append whose workers cost more than the read.
    """
    rows: list[str] = []
    params: list[BindParameter[Any]] = []
    for n, (index, lo, hi) in enumerate(days):
        rows.append(f"(:b_i{n}, :b_lo{n}, :b_hi{n})")
        params += [
            bindparam(f"b_i{n}", index, Integer),
            bindparam(f"b_lo{n}", lo, Date),
            bindparam(f"b_hi{n}", hi, Date),
        ]
    values = text("VALUES " + ", ".join(rows)).bindparams(*params)
    typed = values.columns(
        column("column1", Integer), column("column2", Date), column("column3", Date)
    )
    return typed.subquery("b")


def _activity_query(
    org: OrgFrame, members: list[int], definition: MetricDef, bounds: Sequence[Bounds]
) -> Select[Any, Any]:
    days, pieces = _spans(bounds, org.tz)
    if definition.source is Source.contacts:
        return _distinct_query(members, days, pieces)
    kind = definition.activity_type
    parts: list[Select[Any, Any]] = []
    if days:
        b = _day_table(days)
        parts.append(
            select(b.c.column1.label("idx"), func.sum(ActivityDay.count))
            .select_from(ActivityDay)
            .join(b, and_(ActivityDay.day >= b.c.column2, ActivityDay.day < b.c.column3))
            .where(ActivityDay.user_id.in_(members), ActivityDay.type == kind)
            .where(ActivityDay.day >= days[0][1], ActivityDay.day < days[-1][2])
            .group_by(b.c.column1)
        )
    for index, (start, end) in pieces:
        piece: Select[Any, Any] = select(literal(index, Integer).label("idx"), func.count()).where(
            *_raw(members, start, end), Activity.type == kind
        )
        parts.append(piece)
    # Rows are (idx, total), one per period and piece: the caller adds pieces to their period.
    return parts[0] if len(parts) == 1 else select(union_all(*parts).subquery())


def _distinct_query(
    members: list[int], days: list[tuple[int, date, date]], pieces: list[tuple[int, Bounds]]
) -> Select[Any, Any]:
    """COUNT(DISTINCT contact_id) per period over whole days and raw edge pieces together."""
    parts: list[Select[Any, Any]] = []
    if days:
        b = _day_table(days)
        parts.append(
            select(b.c.column1.label("idx"), ContactDay.contact_id)
            .select_from(ContactDay)
            .join(b, and_(ContactDay.day >= b.c.column2, ContactDay.day < b.c.column3))
            .where(ContactDay.user_id.in_(members))
            .where(ContactDay.day >= days[0][1], ContactDay.day < days[-1][2])
        )
    for index, (start, end) in pieces:
        piece: Select[Any, Any] = (
            select(literal(index, Integer).label("idx"), ActivityContact.contact_id)
            .select_from(Activity)
            .join(ActivityContact, ActivityContact.activity_id == Activity.id)
            .where(*_raw(members, start, end))
        )
        parts.append(piece)
    facts = (parts[0] if len(parts) == 1 else union_all(*parts)).subquery("facts")
    return select(facts.c.idx, func.count(facts.c.contact_id.distinct())).group_by(facts.c.idx)


def _raw(members: list[int], start: datetime, end: datetime) -> tuple[ColumnElement[bool], ...]:
    return (
        Activity.user_id.in_(members),
        Activity.occurred_at >= start,
        Activity.occurred_at < end,
    )


def _deals(
    session: Session,
    org: OrgFrame,
    members: list[int],
    definition: MetricDef,
    bounds: Sequence[Bounds],
) -> list[Pooled]:
    at = Deal.created_at if definition.moment is Moment.created_at else Deal.closed_at
    window = (Deal.owner_id.in_(members), at >= bounds[0][0], at < bounds[-1][1])
    statuses = (
        () if definition.statuses is None else (Deal.status.in_(sorted(definition.statuses)),)
    )
    if definition.amount is Amount.cycle_days:
        # local calendar days need the zone, which SQLite's SQL lacks: the deals are bucketed
        # in Python (a team's quarter is a few hundred won deals)
        query = select(
            Deal.status, Deal.created_at, Deal.closed_at, Deal.value_base, Deal.cost_base
        ).where(*window, *statuses)
        facts = (deals.DealFact(*row) for row in session.execute(query))
        return deals.pool(definition, facts, bounds, org.tz)
    # Summed in SQL per period: at 10M activities and 500,000 deals a team's attainment on
    # 13 quotas spent 40 of its 70 ms turning ~5,000 deal rows into Python objects.
    b = _moment_table(bounds)
    rows = session.execute(
        select(b.c.idx, func.sum(_AMOUNTS[definition.amount]), func.count())
        .select_from(Deal)
        .join(b, and_(at >= b.c.lo, at < b.c.hi))
        .where(*window, *statuses)
        .group_by(b.c.idx)
    )
    pooled = [Pooled() for _ in bounds]
    for index, total, n in rows:
        pooled[index] = Pooled(Decimal(total or 0), n)
    return pooled


_AMOUNTS: dict[Amount, Any] = {
    Amount.one: literal(1, Integer),
    Amount.won: case((Deal.status == DealStatus.won.value, 1), else_=0),
    Amount.value: func.coalesce(Deal.value_base, 0),
    # a missing cost is 0 (semantics §8)
    Amount.margin: func.coalesce(Deal.value_base, 0) - func.coalesce(Deal.cost_base, 0),
}


def _moment_table(bounds: Sequence[Bounds]) -> Any:
    """The periods as a derived table (idx, lo, hi) of UTC instants that deal rows join."""
    rows = [
        select(
            literal(index, Integer).label("idx"),
            literal(lo, UTCDateTime()).label("lo"),
            literal(hi, UTCDateTime()).label("hi"),
        )
        for index, (lo, hi) in enumerate(bounds)
    ]
    return (rows[0] if len(rows) == 1 else union_all(*rows)).subquery("p")
