"""What GET /connections/{id} says while a run is under way: what is happening now, and how
the previous run ended beside it, with when."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from app.db import session_scope
from app.models import Connection, utcnow
from app.sync import runner
from connectors.base import ConnectorError, Page
from tests.api import Org
from tests.fakes import FakeConnector
from tests.sync.test_runner import page


def connect(org: Org) -> int:
    config = {"host": "imap.acme.example", "username": "ana", "password": "pw"}
    return org.connect("ana@acme.example", "imap", config)


def at(value: Any) -> datetime:
    return datetime.fromisoformat(str(value))


def test_a_run_under_way_says_so_and_keeps_the_last_error_beside_it(
    org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    connection_id = connect(org)
    failing = FakeConnector([page(0)], error=ConnectorError("connection reset by peer"))
    monkeypatch.setattr(runner, "build_connectors", lambda _c, _s: [failing])
    before = utcnow()
    org.sync(connection_id)
    failed = org.connection(connection_id)
    assert (failed["status"], failed["last_error"]) == ("error", "connection reset by peer")
    assert before <= at(failed["last_error_at"]) <= utcnow()
    assert failed["syncing_since"] is None

    seen: list[dict[str, Any]] = []

    class Watched(FakeConnector):
        def pull(self, cursor: str | None, *, since: datetime) -> Iterator[Page]:
            seen.append(org.connection(connection_id))  # what a user sees meanwhile
            yield from super().pull(cursor, since=since)

    monkeypatch.setattr(runner, "build_connectors", lambda _c, _s: [Watched([page(0), page(1)])])
    started = utcnow()
    org.sync(connection_id)
    during = seen[0]
    assert during["status"] == "syncing"
    assert started <= at(during["syncing_since"]) <= utcnow()
    assert during["last_error"] == "connection reset by peer"
    assert during["last_error_at"] == failed["last_error_at"]  # the previous run's, not now

    done = org.connection(connection_id)
    assert (done["status"], done["last_error"], done["last_error_at"]) == ("idle", None, None)
    assert done["syncing_since"] is None and at(done["last_synced_at"]) >= started


def test_a_run_whose_worker_died_reads_as_queued_until_it_is_taken_over(org: Org) -> None:
    connection_id = connect(org)
    with session_scope() as session:
        connection = session.get_one(Connection, connection_id)
        connection.lease_owner, connection.status = "dead-worker", "syncing"
        connection.lease_until = utcnow() + timedelta(minutes=5)
    assert org.connection(connection_id)["status"] == "syncing"
    with session_scope() as session:
        session.get_one(Connection, connection_id).lease_until = utcnow() - timedelta(seconds=1)
    assert org.connection(connection_id)["status"] == "pending"
