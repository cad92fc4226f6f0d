"""API writes to a connection while a sync holds its row: a second PostgreSQL session holds the
locks a worker's transaction takes (the end-to-end version, with real stopped processes, is
tests/sync/test_frozen_worker.py). Nothing hangs: a settings change or a sync request goes
through or is queued for the worker (app/connections/changes.py); a delete answers 503 with
Retry-After within its lock wait."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection as DBConnection
from sqlalchemy import func, select, text

from app.config import settings
from app.connections.leases import claim_due
from app.connections.models import ConnectionChange
from app.db import Database, session_scope
from app.models import Connection, utcnow
from tests.api import Org, make_org

pytestmark = pytest.mark.postgresql_only

# seconds of request handling beyond a lock wait (1 s flaked on a loaded 2-CPU CI machine)
MARGIN = 3.0


@pytest.fixture
def org(client: TestClient, database: Database) -> Org:
    assert not database.is_sqlite  # postgresql_only: the SQLite case is not collected
    org = make_org(client)
    org.user("ana@acme.example")
    return org


@contextmanager
def holding(database: Database, connection_id: int, mode: str) -> Iterator[DBConnection]:
    """Another transaction holding the connection's row: `FOR NO KEY UPDATE` as a worker's
    lease check just before its commit, `FOR KEY SHARE` as a page being written."""
    with database.engine.connect() as other:
        other.execute(text(f"SELECT id FROM connections WHERE id = {connection_id} FOR {mode}"))
        yield other
        other.rollback()


def connect(org: Org) -> int:
    config = {"host": "imap.acme.example", "username": "ana", "password": "pw"}
    return org.connect("ana@acme.example", "imap", config)


def timed(org: Org, method: str, path: str, **kwargs: Any) -> tuple[Any, float]:
    started = time.monotonic()
    response = org.client.request(method, path, headers=org.as_admin(), **kwargs)
    return response, time.monotonic() - started


def test_a_row_held_for_writing_queues_changes_and_refuses_only_a_delete(
    org: Org, database: Database
) -> None:
    connection_id = connect(org)
    path = f"/api/v1/connections/{connection_id}"
    with session_scope() as session:  # synced a minute ago: a sync request must write
        session.get_one(Connection, connection_id).next_sync_at = utcnow() + timedelta(minutes=4)
    with holding(database, connection_id, "NO KEY UPDATE"):
        read, seconds = timed(org, "GET", path)
        assert read.status_code == 200 and seconds < MARGIN  # reads never wait
        wait = settings.db_connection_lock_seconds
        synced, seconds = timed(org, "POST", path + "/sync")
        assert synced.status_code == 202 and seconds < wait + MARGIN, (synced.text, seconds)
        body = {"config": {"folders": ["INBOX"]}}
        patched, seconds = timed(org, "PATCH", path, json=body)
        assert patched.status_code == 200 and seconds < wait + MARGIN, (patched.text, seconds)
        assert (patched.json()["status"], patched.json()["config"]["folders"]) == (
            "pending",
            ["INBOX"],
        )
        # a delete takes the row itself: it waits for the holder, then answers 503
        refused, seconds = timed(org, "DELETE", path)
        assert refused.status_code == 503, refused.text
        assert refused.json()["error"]["code"] == "unavailable"
        assert refused.headers["Retry-After"] == "2"
        assert "retry in 2 s" in refused.json()["error"]["message"]
        wait = settings.db_lock_timeout_seconds
        assert wait <= seconds < wait + MARGIN, seconds
    with session_scope() as session:
        queued = session.scalars(select(ConnectionChange.kind).order_by(ConnectionChange.id))
        assert list(queued) == ["sync", "settings"]
    assert org.connection(connection_id)["config"]["folders"] == ["INBOX"]
    with session_scope() as session:  # a worker's claim applies the queue
        assert [c.connection_id for c in claim_due(session, owner="w", limit=5, now=utcnow())] == [
            connection_id
        ]
    with session_scope() as session:
        assert session.get_one(Connection, connection_id).config["folders"] == ["INBOX"]
        assert session.scalar(select(func.count()).select_from(ConnectionChange)) == 0


def test_a_page_being_written_delays_only_a_delete(org: Org, database: Database) -> None:
    connection_id = connect(org)
    path = f"/api/v1/connections/{connection_id}"
    with holding(database, connection_id, "KEY SHARE"):
        patched, seconds = timed(org, "PATCH", path, json={"config": {"folders": ["INBOX"]}})
        assert patched.status_code == 200 and seconds < MARGIN, seconds
        synced, seconds = timed(org, "POST", path + "/sync")
        assert synced.status_code == 202 and seconds < MARGIN, seconds
        deleted, seconds = timed(org, "DELETE", path)
        assert deleted.status_code == 503  # its rows point at the connection: wait for them
    assert org.connection(connection_id)["config"]["folders"] == ["INBOX"]
    assert org.client.delete(path, headers=org.as_admin()).status_code == 204
