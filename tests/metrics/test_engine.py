"""The engine against real rows on SQLite and PostgreSQL: rollups, edge pieces, deals, teams."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.db import Database, session_scope
from app.metrics.catalogue import METRICS, Metric, Pooled
from app.metrics.deals import DealFact, pool
from app.metrics.engine import OrgFrame, measure, measure_pooled, org_frame
from app.metrics.periods import PeriodUnit
from app.models import Deal, Organization, Team, User
from tests.metrics import facts
from tests.metrics.facts import utc

DEAL_METRICS = [m for m, d in METRICS.items() if d.source == "deals"]


def make_org(session: Session, *, tz: str = "Europe/Brussels", fiscal: int = 1) -> OrgFrame:
    org = Organization(name="Acme", domains=[], timezone=tz, fiscal_year_start_month=fiscal)
    session.add(org)
    session.flush()
    return org_frame(session, org.id)


def make_users(session: Session, org: OrgFrame, *names: str) -> list[int]:
    team = Team(org_id=org.id, name=f"team {names[0]}")
    session.add(team)
    session.flush()
    users = [
        User(org_id=org.id, email=f"{n}-{org.id}@acme.example", name=n, role="rep", team_id=team.id)
        for n in names
    ]
    session.add_all(users)
    session.flush()
    return [u.id for u in users]


@pytest.fixture
def session(database: Database) -> Iterator[Session]:
    with session_scope() as session:
        yield session


def months(org: OrgFrame, first: str, last: str) -> list[tuple[datetime, datetime]]:
    periods = org.calendar.between(
        datetime.fromisoformat(first).date(), datetime.fromisoformat(last).date(), "month"
    )
    return [org.calendar.bounds(p) for p in periods]


def test_activity_counts_and_edge_pieces_equal_raw_rows(session: Session) -> None:
    org = make_org(session)
    ann, bob = make_users(session, org, "ann", "bob")
    rng = random.Random(7)
    start = utc("2024-03-01T00:00")
    moments = [start + timedelta(minutes=rng.randrange(0, 92 * 24 * 60)) for _ in range(300)]
    for i, moment in enumerate(moments):
        kind = "email_sent" if i % 3 else "call"
        facts.activity(session, org.id, (ann, bob)[i % 2], kind, moment)
    # month bounds (whole days), and cut ones: as of arbitrary instants, from mid-day starts
    cut = [
        (utc("2024-03-01T00:00"), utc("2024-03-31T02:30")),  # DST night
        (utc("2024-04-10T13:17"), utc("2024-04-10T18:00")),
        (utc("2024-04-11T07:00"), utc("2024-05-20T09:45")),
    ]
    days = org.calendar.between(
        datetime(2024, 2, 20).date(), datetime(2024, 6, 10).date(), PeriodUnit.day
    )
    daily = [org.calendar.bounds(d) for d in days]  # a long VALUES list
    for bounds in (months(org, "2024-03-01", "2024-05-31"), cut, daily):
        for metric, kind in ((Metric.emails_sent, "email_sent"), (Metric.calls, "call")):
            got = measure(session, org, [ann, bob], metric, bounds)
            raw = [
                sum(
                    1
                    for i, m in enumerate(moments)
                    if s <= m < e and (kind == "call") == (i % 3 == 0)
                )
                for s, e in bounds
            ]
            assert got == raw, (metric, bounds)


def test_empty_intervals(session: Session) -> None:
    org = make_org(session)
    (ann,) = make_users(session, org, "ann")
    facts.activity(session, org.id, ann, "call", utc("2024-05-01T00:00"), ["x@n.example"])
    at = utc("2024-05-01T00:00")
    for metric in Metric:
        empty = measure(session, org, [ann], metric, [(at, at)])
        assert empty == [None if METRICS[metric].pooled else 0], metric
    assert measure(
        session, org, [ann], Metric.calls, [(at, at), (at, utc("2024-05-02T00:00"))]
    ) == [
        0,
        1,
    ]


def test_daily_counts_across_dst(session: Session) -> None:
    org = make_org(session)
    (ann,) = make_users(session, org, "ann")
    for text in ("2024-03-30T23:59", "2024-03-31T00:00", "2024-03-31T23:30", "2024-04-01T00:15"):
        facts.activity(session, org.id, ann, "call", utc(text))
    days = org.calendar.between(
        datetime(2024, 3, 30).date(), datetime(2024, 4, 1).date(), PeriodUnit.day
    )
    bounds = [org.calendar.bounds(d) for d in days]
    assert bounds[1][1] - bounds[1][0] == timedelta(hours=23)
    assert measure(session, org, [ann], Metric.calls, bounds) == [1, 2, 1]


def test_contacts_engaged_is_distinct_across_days_members_and_edges(session: Session) -> None:
    org = make_org(session)
    ann, bob = make_users(session, org, "ann", "bob")
    facts.activity(session, org.id, ann, "email_sent", utc("2024-05-02T09:00"), ["x@n.example"])
    facts.activity(session, org.id, ann, "email_sent", utc("2024-05-03T09:00"), ["x@n.example"])
    facts.activity(
        session, org.id, bob, "call", utc("2024-05-03T10:00"), ["x@n.example", "y@n.example"]
    )
    facts.activity(session, org.id, bob, "call", utc("2024-05-15T10:00"), ["z@n.example"])
    facts.activity(session, org.id, bob, "call", utc("2024-05-15T16:00"), ["w@n.example"])
    may = months(org, "2024-05-01", "2024-05-01")
    assert measure(session, org, [ann], Metric.contacts_engaged, may) == [1]
    assert measure(session, org, [bob], Metric.contacts_engaged, may) == [4]
    assert measure(session, org, [ann, bob], Metric.contacts_engaged, may) == [4]
    # as of 15 May 12:00: days before from contact_days, the morning of the 15th from raw rows;
    # x counted once though it is in both
    as_of = [(may[0][0], utc("2024-05-15T12:00"))]
    assert measure(session, org, [ann, bob], Metric.contacts_engaged, as_of) == [3]
    two = [(may[0][0], utc("2024-05-03T00:00")), (utc("2024-05-03T00:00"), may[0][1])]
    assert measure(session, org, [ann, bob], Metric.contacts_engaged, two) == [1, 4]


def test_deal_changes_move_the_metrics(session: Session) -> None:
    org = make_org(session)
    ann, bob = make_users(session, org, "ann", "bob")
    q = months(org, "2024-03-01", "2024-04-30")
    won = facts.deal(
        session,
        org.id,
        ann,
        created_at=utc("2024-03-01T10:00"),
        status="won",
        closed_at=utc("2024-03-10T10:00"),
        value=1000,
    )
    lost = facts.deal(
        session,
        org.id,
        ann,
        created_at=utc("2024-03-02T10:00"),
        status="lost",
        closed_at=utc("2024-04-02T10:00"),
        value=300,
    )
    assert measure(session, org, [ann], Metric.win_rate, q) == [Decimal(1), Decimal(0)]
    won.value_base = Decimal("1500.25")  # revalued after the win
    session.flush()
    assert measure(session, org, [ann], Metric.revenue, q) == [Decimal("1500.25"), Decimal(0)]
    won.owner_id = bob  # reassigned: the current owner gets it
    session.flush()
    assert measure(session, org, [ann], Metric.deals_won, q) == [0, 0]
    assert measure(session, org, [bob], Metric.deals_won, q) == [1, 0]
    assert measure(session, org, [ann, bob], Metric.opportunities_created, q) == [2, 0]
    lost.status, lost.closed_at, lost.value_base, lost.stage = "open", None, None, "Proposal"
    session.flush()  # reopened: leaves the period where it counted
    assert measure(session, org, [ann], Metric.win_rate, q) == [None, None]
    session.delete(won)
    session.flush()
    assert measure(session, org, [ann, bob], Metric.revenue, q) == [Decimal(0), Decimal(0)]
    assert measure(session, org, [ann, bob], Metric.opportunities_created, q) == [1, 0]


def test_fiscal_year_boundary(session: Session) -> None:
    org = make_org(session, fiscal=4)
    (ann,) = make_users(session, org, "ann")
    for closed in ("2024-03-31T23:30", "2024-04-01T00:30"):
        facts.deal(
            session,
            org.id,
            ann,
            created_at=utc("2024-03-31T08:00"),
            status="won",
            closed_at=utc(closed),
            value=100,
        )
    years = org.calendar.between(datetime(2024, 3, 1).date(), datetime(2024, 4, 1).date(), "year")
    assert [(y.start.isoformat(), y.end.isoformat()) for y in years] == [
        ("2023-04-01", "2024-04-01"),
        ("2024-04-01", "2025-04-01"),
    ]
    bounds = [org.calendar.bounds(y) for y in years]
    assert measure(session, org, [ann], Metric.deals_won, bounds) == [1, 1]
    assert measure(session, org, [ann], Metric.sales_cycle_days, bounds) == [0, 1]


def test_teams_without_deals_or_members(session: Session) -> None:
    org = make_org(session)
    ann, bob = make_users(session, org, "ann", "bob")
    q = months(org, "2024-03-01", "2024-04-30")
    for members in ([ann, bob], []):
        for metric in [*DEAL_METRICS, Metric.emails_sent, Metric.contacts_engaged]:
            definition = METRICS[metric]
            empty = (
                None
                if definition.pooled
                else (Decimal(0) if definition.combine.value == "sum" else 0)
            )
            assert measure(session, org, members, metric, q) == [empty, empty], metric


# Property tests: a team's counts and sums are its members' added; its ratios and means are
# the ratio of the pooled components, never a mean of the members' values.

deal_strategy = st.tuples(
    st.integers(0, 2),  # owner index
    st.sampled_from(["open", "won", "lost"]),
    st.integers(0, 120 * 24),  # created: hours after 1 February
    st.integers(0, 40 * 24),  # closed: hours after created
    st.integers(0, 5000),  # value
    st.one_of(st.none(), st.integers(0, 3000)),  # cost
)


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    deals=st.lists(deal_strategy, max_size=25),
    activity_hours=st.lists(
        st.tuples(st.integers(0, 2), st.integers(0, 100 * 24), st.integers(0, 3)), max_size=30
    ),
)
def test_team_is_its_members_pooled(
    session: Session,
    deals: list[tuple[int, str, int, int, int, int | None]],
    activity_hours: list[tuple[int, int, int]],
) -> None:
    org = make_org(session)
    members = make_users(session, org, "ann", "bob", "cid")
    base = datetime(2024, 2, 1, tzinfo=UTC)
    for owner, status, created, closed, value, cost in deals:
        facts.deal(
            session,
            org.id,
            members[owner],
            created_at=base + timedelta(hours=created),
            status=status,
            closed_at=base + timedelta(hours=created + closed),
            value=value,
            cost=cost,
        )
    for who, hours, contact in activity_hours:
        at = base + timedelta(hours=hours)
        facts.activity(session, org.id, members[who], "email_sent", at, [f"c{contact}@x.example"])
    bounds = months(org, "2024-02-01", "2024-06-30")
    bounds[-1] = (bounds[-1][0], utc("2024-06-12T15:00"))  # the last one cut as of now
    for metric, definition in METRICS.items():
        team = measure_pooled(session, org, members, metric, bounds)
        each = [measure_pooled(session, org, [m], metric, bounds) for m in members]
        if definition.additive or definition.pooled:
            added = [sum(column, Pooled()) for column in zip(*each, strict=True)]
            assert [(p.total, p.n) for p in team] == [(p.total, p.n) for p in added], metric
        if definition.pooled:
            values = measure(session, org, members, metric, bounds)
            for pooled, value in zip(team, values, strict=True):
                assert value == (pooled.total / pooled.n if pooled.n else None)
        if definition.source == "deals":  # the SQL sums equal the pure reference, row by row
            rows = session.execute(
                select(
                    Deal.status, Deal.created_at, Deal.closed_at, Deal.value_base, Deal.cost_base
                ).where(Deal.owner_id.in_(members))
            )
            expected = pool(definition, (DealFact(*row) for row in rows), bounds, org.tz)
            assert [(p.total, p.n) for p in team] == [(p.total, p.n) for p in expected], metric
        if metric is Metric.contacts_engaged:  # distinct: at most the members' sum
            for t, column in zip(team, zip(*each, strict=True), strict=True):
                assert max(p.total for p in column) <= t.total <= sum(p.total for p in column)
