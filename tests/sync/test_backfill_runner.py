"""The runner gives a connection's widened window (`config.history_from`) to the connectors that
can widen theirs (connectors.base.WidensHistory), and to no other: those are called exactly as
before, with the instance's default window."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import ClassVar

import pytest

from app.config import settings
from app.db import Database, session_scope
from app.models import Connection, ConnectionStatus, utcnow
from connectors.base import Page
from tests.fakes import FakeConnector
from tests.sync.test_runner import page, run_with
from tests.world import World, make_world


class Widening(FakeConnector):
    widens_history: ClassVar[bool] = True

    def __init__(self, pages: list[Page]) -> None:
        super().__init__(pages)
        self.windows: list[tuple[datetime, datetime | None]] = []

    def pull(
        self, cursor: str | None, *, since: datetime, history_from: datetime | None = None
    ) -> Iterator[Page]:
        self.windows.append((since, history_from))
        yield from super().pull(cursor, since=since)


class Plain(FakeConnector):
    """Today's contract only: passing history_from would be a TypeError."""

    def __init__(self, pages: list[Page]) -> None:
        super().__init__(pages)
        self.sinces: list[datetime] = []

    def pull(self, cursor: str | None, *, since: datetime) -> Iterator[Page]:
        self.sinces.append(since)
        yield from super().pull(cursor, since=since)


@pytest.fixture
def world(database: Database) -> World:
    return make_world()


def widened_to(world: World, day: str | None) -> None:
    with session_scope() as session:
        connection = session.get_one(Connection, world.connections["ana"])
        config = {k: v for k, v in connection.config.items() if k != "history_from"}
        connection.config = config if day is None else {**config, "history_from": day}


def default_since() -> datetime:
    return utcnow() - timedelta(days=settings.backfill_days)


def test_a_widening_connector_gets_the_connections_own_start(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    widened_to(world, "2024-06-01")
    fake = Widening([page(0)])
    connection = run_with(world, fake, monkeypatch)
    assert connection.status == ConnectionStatus.idle
    ((since, history_from),) = fake.windows
    assert history_from == datetime(2024, 6, 1, tzinfo=UTC)
    assert abs(since - default_since()) < timedelta(minutes=1)  # `since` means what it did


def test_without_a_widened_window_nothing_changes(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = Widening([page(0)])
    run_with(world, fake, monkeypatch)
    ((since, history_from),) = fake.windows
    assert history_from is None
    assert abs(since - default_since()) < timedelta(minutes=1)


def test_a_connector_that_cannot_widen_is_called_as_before(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    widened_to(world, "2024-06-01")  # set by hand: the API refuses such providers
    fake = Plain([page(0)])
    connection = run_with(world, fake, monkeypatch)
    assert (connection.status, connection.last_error) == (ConnectionStatus.idle, None)
    (since,) = fake.sinces
    assert abs(since - default_since()) < timedelta(minutes=1)
