"""The sync runner: a cursor per page, errors turned into states a person can read."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import func, select

from app.activities.models import Activity
from app.connections import leases as connections
from app.db import Database, session_scope
from app.models import Connection, ConnectionStatus, utcnow
from app.sync import runner
from connectors.base import AuthExpired, ConnectorError, CursorExpired, Page, RateLimited
from tests.factories import message
from tests.fakes import FakeConnector
from tests.world import World, make_world


def page(n: int) -> Page:
    """Page n: one email from a customer, and the cursor that resumes after it."""
    return Page(
        messages=(message(f"c{n}@northwind.example", ("ana@acme.example",), message_id=f"p{n}"),),
        cursor=str(n + 1),
    )


@pytest.fixture
def world(database: Database) -> World:
    return make_world()


def run_with(world: World, fake: FakeConnector, monkeypatch: pytest.MonkeyPatch) -> Connection:
    monkeypatch.setattr(runner, "build_connectors", lambda _c, _s: [fake])
    with session_scope() as session:
        session.get_one(Connection, world.connections["ana"]).next_sync_at = utcnow()
        leases = connections.claim_due(session, owner="test", limit=10, now=utcnow())
    assert [lease.connection_id for lease in leases] == [world.connections["ana"]]
    runner.run(leases[0])
    with session_scope() as session:
        return session.get_one(Connection, world.connections["ana"])


def emails() -> int:
    with session_scope() as session:
        return session.scalar(select(func.count()).select_from(Activity)) or 0


def test_a_clean_run_stores_every_page_and_the_last_cursor(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeConnector([page(0), page(1), page(2)])
    connection = run_with(world, fake, monkeypatch)
    assert connection.status == ConnectionStatus.idle
    assert (connection.cursors, connection.last_error, connection.lease_owner) == (
        {"fake": "3"},
        None,
        None,
    )
    assert connection.last_synced_at is not None and connection.next_sync_at is not None
    assert (connection.messages_imported, connection.activities_created, emails()) == (3, 3, 3)


def test_a_failure_mid_run_keeps_every_page_before_it_and_resumes_after_it(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeConnector([page(0), page(1), page(2)], error=None)
    broken = FakeConnector(fake.pages[:2], error=ConnectorError("connection reset by peer"))
    connection = run_with(world, broken, monkeypatch)
    assert connection.status == ConnectionStatus.error
    assert connection.last_error == "connection reset by peer"
    assert (connection.cursors, connection.failures, emails()) == ({"fake": "2"}, 1, 2)
    assert connection.next_sync_at is not None and connection.next_sync_at > utcnow()
    connection = run_with(world, fake, monkeypatch)
    assert fake.cursors_given == ["2"]
    assert (connection.status, connection.failures, emails()) == (ConnectionStatus.idle, 0, 3)


def test_refused_credentials_need_a_reconnect_and_are_not_retried(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeConnector([], error=AuthExpired("the server refused the password"))
    connection = run_with(world, fake, monkeypatch)
    assert connection.status == ConnectionStatus.needs_reconnect
    assert connection.last_error == "Reconnect needed: the server refused the password"
    assert connection.next_sync_at is None
    with session_scope() as session:
        assert connections.claim_due(session, owner="t", limit=10, now=utcnow()) == []


def test_rate_limits_wait_as_long_as_the_provider_asks(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    connection = run_with(world, FakeConnector([page(0)], error=RateLimited(120)), monkeypatch)
    assert connection.status == ConnectionStatus.idle and connection.cursors == {"fake": "1"}
    assert connection.next_sync_at is not None
    wait = (connection.next_sync_at - utcnow()).total_seconds()
    assert 110 < wait <= 120


def test_a_forgotten_cursor_restarts_from_scratch_without_duplicates(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Forgetful(FakeConnector):
        def pull(self, cursor: str | None, *, since: object) -> Iterator[Page]:  # type: ignore[override]
            self.cursors_given.append(cursor)
            if cursor is not None:
                raise CursorExpired("history too old")
            yield from self.pages

    run_with(world, FakeConnector([page(0), page(1)]), monkeypatch)
    forgetful = Forgetful([page(0), page(1), page(2)])
    connection = run_with(world, forgetful, monkeypatch)
    assert forgetful.cursors_given == ["2", None]
    assert (connection.status, connection.cursors, emails()) == (
        ConnectionStatus.idle,
        {"fake": "3"},
        3,
    )


def test_a_bug_is_recorded_and_the_lease_released(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    connection = run_with(world, FakeConnector([page(0)], error=KeyError("boom")), monkeypatch)
    assert connection.status == ConnectionStatus.error
    assert connection.last_error == "Internal error while syncing (KeyError); it will be retried"
    assert (connection.lease_owner, emails()) == (None, 1)


def test_a_worker_that_lost_its_lease_writes_nothing(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Slow(FakeConnector):
        def pull(self, cursor: str | None, *, since: object) -> Iterator[Page]:  # type: ignore[override]
            with session_scope() as session:  # meanwhile another worker takes the connection over
                session.get_one(Connection, world.connections["ana"]).lease_epoch += 1
            yield from self.pages

    connection = run_with(world, Slow([page(0)]), monkeypatch)
    assert (emails(), connection.cursors) == (0, {})


def test_each_due_connection_is_claimed_by_one_worker_only(world: World) -> None:
    with session_scope() as session:
        for connection_id in world.connections.values():
            session.get_one(Connection, connection_id).next_sync_at = utcnow()
    with session_scope() as session:
        first = connections.claim_due(session, owner="w1", limit=2, now=utcnow())
    with session_scope() as session:
        second = connections.claim_due(session, owner="w2", limit=10, now=utcnow())
    with session_scope() as session:
        third = connections.claim_due(session, owner="w3", limit=10, now=utcnow())
    claimed = [lease.connection_id for lease in first + second]
    assert sorted(claimed) == sorted(world.connections.values())
    assert third == []


def test_concurrent_workers_never_claim_the_same_connection(database: Database) -> None:
    """Eight threads, each its own session, claim from the same pool of due connections."""
    from concurrent.futures import ThreadPoolExecutor

    from sqlalchemy import update

    world = make_world()
    with session_scope() as session:
        extra = [
            Connection(
                org_id=world.org_id,
                user_id=world.users["ana"],
                provider="imap",
                config={},
                cursors={},
            )
            for _ in range(57)
        ]
        session.add_all(extra)
    with session_scope() as session:
        session.execute(update(Connection).values(next_sync_at=utcnow()))
        total = session.scalar(select(func.count()).select_from(Connection))

    def claim_all(worker: int) -> list[int]:
        claimed: list[int] = []
        while True:
            with session_scope() as session:
                leases = connections.claim_due(session, owner=f"w{worker}", limit=3, now=utcnow())
            if not leases:
                return claimed
            claimed += [lease.connection_id for lease in leases]

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(claim_all, range(8)))
    everything = [connection_id for claimed in results for connection_id in claimed]
    assert len(everything) == len(set(everything)) == total


def test_a_connection_whose_worker_died_is_claimed_again_after_the_lease(world: World) -> None:
    from datetime import timedelta

    from app.config import settings

    with session_scope() as session:
        session.get_one(Connection, world.connections["ana"]).next_sync_at = utcnow()
        first = connections.claim_due(session, owner="dead", limit=1, now=utcnow())
    assert first  # ... and that worker never reports back
    later = utcnow() + timedelta(seconds=settings.sync_lease_seconds + 1)
    with session_scope() as session:
        assert connections.claim_due(session, owner="early", limit=5, now=utcnow()) == []
        again = connections.claim_due(session, owner="next", limit=5, now=later)
    assert [lease.connection_id for lease in again] == [first[0].connection_id]
    assert again[0].epoch == first[0].epoch + 1


def test_a_sync_requested_during_a_run_runs_right_after_it(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Requested(FakeConnector):
        def pull(self, cursor: str | None, *, since: object) -> Iterator[Page]:  # type: ignore[override]
            with session_scope() as session:  # someone presses "sync now" meanwhile
                session.get_one(Connection, world.connections["ana"]).next_sync_at = utcnow()
            yield from self.pages

    connection = run_with(world, Requested([page(0)]), monkeypatch)
    assert connection.next_sync_at is not None and connection.next_sync_at <= utcnow()
    plain = run_with(world, FakeConnector([page(1)]), monkeypatch)
    assert plain.next_sync_at is not None and plain.next_sync_at > utcnow()
