"""The alert job as the scheduler runs it: leased per organization, run when due."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app import jobs
from app.alerts import job
from app.alerts.models import Alert
from app.db import Database, session_scope
from app.models import ConnectionStatus, OrgJob, utcnow
from connectors.base import AuthExpired
from tests.api import Org, make_org
from tests.fakes import FakeConnector
from tests.sync.test_runner import run_with
from tests.world import make_world


def acme(client: TestClient) -> tuple[Org, int]:
    org = make_org(client)
    ana = org.user("ana@acme.example")["id"]
    return org, ana


def cold_deal(org: Org, owner: int, days_ago: int) -> int:
    created = (utcnow() - timedelta(days=days_ago)).isoformat()
    return int(org.deal(owner, created_at=created)["id"])


def open_deal_alerts(org: Org) -> set[int | None]:
    with session_scope() as session:
        return set(
            session.scalars(
                select(Alert.deal_id).where(
                    Alert.org_id == org.id,
                    Alert.kind == "deal_going_cold",
                    Alert.resolved_at.is_(None),
                )
            )
        )


def test_a_tick_evaluates_due_organizations_and_a_deal_change_makes_one_due(
    client: TestClient,
) -> None:
    org, ana = acme(client)
    first = cold_deal(org, ana, 30)
    assert job.tick() == 1
    assert open_deal_alerts(org) == {first}
    assert job.tick() == 0  # ran just now and nothing asked for another run
    second = cold_deal(org, ana, 20)  # the deals service asks for a run (mark_due)
    assert job.tick() == 0  # evaluated less than SPACING ago: it waits its turn
    assert job.tick(now=utcnow() + job.SPACING) == 1  # within a minute of the change
    assert open_deal_alerts(org) == {first, second}
    with session_scope() as session:
        row = session.get_one(OrgJob, (org.id, job.JOB))
        assert row.lease_owner is None and row.last_run_at is not None


def test_an_organization_not_evaluated_for_a_while_is_due_again(client: TestClient) -> None:
    org, ana = acme(client)
    assert job.tick() == 1
    cold = cold_deal(org, ana, 30)
    with session_scope() as session:  # the deal's own request for a run is served
        session.get_one(OrgJob, (org.id, job.JOB)).due_at = None
    assert job.tick() == 0
    assert job.tick(now=utcnow() + job.EVERY + timedelta(seconds=1)) == 1
    assert open_deal_alerts(org) == {cold}


def test_two_ticks_at_once_evaluate_an_organization_once(client: TestClient) -> None:
    org, ana = acme(client)
    cold_deal(org, ana, 30)
    barrier = threading.Barrier(2)
    counts: list[int] = []

    def tick() -> None:
        barrier.wait()
        counts.append(job.tick())

    threads = [threading.Thread(target=tick) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(counts) == [0, 1]
    assert len(open_deal_alerts(org)) == 1


def test_a_lease_held_elsewhere_is_left_alone_until_it_runs_out(client: TestClient) -> None:
    org, ana = acme(client)
    cold_deal(org, ana, 30)
    with session_scope() as session:
        (held,) = jobs.claim(session, job.JOB, [org.id], now=utcnow(), lease=job.LEASE, owner="x")
    assert job.tick() == 0 and open_deal_alerts(org) == set()
    # that process stalled past its lease: another one takes over, and the stale one may write
    # nothing more
    later = utcnow() + job.LEASE + timedelta(seconds=1)
    with session_scope() as session:
        (taken,) = jobs.claim(session, job.JOB, [org.id], now=later, lease=job.LEASE)
    assert job.run(held) == 0
    assert job.run(taken) == 1 and len(open_deal_alerts(org)) == 1


def test_the_end_of_a_sync_run_makes_the_organization_due(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = make_world()
    assert job.tick() == 1  # evaluated: not due again for 15 minutes
    assert job.tick() == 0
    connection = run_with(world, FakeConnector([], AuthExpired("token revoked")), monkeypatch)
    assert connection.status == ConnectionStatus.needs_reconnect
    assert job.tick(now=utcnow() + job.SPACING) == 1
    with session_scope() as session:
        broken = session.scalars(
            select(Alert.connection_id).where(
                Alert.kind == "connection_broken", Alert.resolved_at.is_(None)
            )
        ).all()
    assert broken == [world.connections["ana"]]
