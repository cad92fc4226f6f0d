"""measure_each gives every member exactly what `measure` gives that member alone, for every
metric of the catalogue, on SQLite and PostgreSQL: whole days, edge pieces cut mid-day, several
periods, members with nothing, deals of every status."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy.orm import Session

from app.db import Database, session_scope
from app.metrics.catalogue import Metric
from app.metrics.engine import measure, measure_each
from app.models import ActivityType
from tests.metrics import facts
from tests.metrics.facts import utc
from tests.metrics.test_engine import make_org, make_users, months


@pytest.fixture
def session(database: Database) -> Iterator[Session]:
    with session_scope() as session:
        yield session


def test_measure_each_equals_measure_per_member(session: Session) -> None:
    org = make_org(session)
    ann, bob, cid, dan = make_users(session, org, "ann", "bob", "cid", "dan")  # dan: nothing
    rng = random.Random(13)
    start = utc("2024-03-01T00:00")
    kinds = [k.value for k in ActivityType]
    for _ in range(400):
        at = start + timedelta(minutes=rng.randrange(0, 92 * 24 * 60))
        people = [f"p{rng.randrange(30)}@n.example" for _ in range(rng.randrange(3))]
        facts.activity(session, org.id, rng.choice((ann, bob, cid)), rng.choice(kinds), at, people)
    for _ in range(60):
        created = start + timedelta(minutes=rng.randrange(0, 80 * 24 * 60))
        status = rng.choice(("open", "won", "lost"))
        closed = created + timedelta(hours=rng.randrange(0, 40 * 24))
        facts.deal(
            session,
            org.id,
            rng.choice((ann, bob, cid)),
            created_at=created,
            status=status,
            closed_at=closed,
            value=rng.randrange(100, 5000),
            cost=rng.choice((None, rng.randrange(0, 100))),
        )
    cut = [  # as of arbitrary instants, from mid-day starts: raw pieces beside the rollups
        (utc("2024-03-01T00:00"), utc("2024-03-31T02:30")),
        (utc("2024-04-10T13:17"), utc("2024-04-10T18:00")),
        (utc("2024-04-11T07:00"), utc("2024-05-20T09:45")),
    ]
    empty = [(utc("2024-04-01T00:00"), utc("2024-04-01T00:00"))]
    members = [ann, bob, cid, dan]
    for bounds in (months(org, "2024-02-01", "2024-06-30"), cut, empty):
        for metric in Metric:
            each = measure_each(session, org, members, metric, bounds)
            assert set(each) == set(members)
            for user in members:
                alone = measure(session, org, [user], metric, bounds)
                assert each[user] == alone, (metric, user, bounds)
    # something was measured: the comparison is not between zeros
    quarter = [(utc("2024-03-01T00:00"), utc("2024-06-01T00:00"))]
    for metric in (Metric.contacts_engaged, Metric.win_rate, Metric.sales_cycle_days):
        assert measure_each(session, org, [ann], metric, quarter)[ann] != [None], metric
        assert measure_each(session, org, [ann], metric, quarter)[ann] != [0], metric
    assert measure_each(session, org, [], Metric.calls, quarter) == {}
    assert measure_each(session, org, [dan], Metric.win_rate, []) == {dan: []}


def test_a_member_outside_the_ask_is_never_counted(session: Session) -> None:
    org = make_org(session)
    ann, bob = make_users(session, org, "ann", "bob")
    facts.activity(session, org.id, bob, "call", utc("2024-05-02T09:00"), ["x@n.example"])
    may = months(org, "2024-05-01", "2024-05-01")
    assert measure_each(session, org, [ann], Metric.calls, may) == {ann: [0]}
    assert measure_each(session, org, [ann], Metric.contacts_engaged, may) == {ann: [0]}
    assert measure_each(session, org, [ann, bob], Metric.calls, may) == {ann: [0], bob: [1]}
    assert measure_each(session, org, [ann, bob], Metric.contacts_engaged, may)[bob] == [1]
