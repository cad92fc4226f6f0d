"""Changes queued while a worker holds a connection's row (app/connections/changes.py), on both
databases: what readers see, who applies the queue, in what order, and that a queued settings
change ends the run under way as a direct one does. The queue is filled here as the API fills
it when the row's lock is not granted in time; that lock itself is PostgreSQL's, exercised in
tests/connections/test_busy.py and, with a stopped worker process, tests/sync/test_frozen_worker.py.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app.connections import changes, leases
from app.connections.models import ConnectionChange
from app.db import session_scope
from app.models import Connection, ConnectionStatus, utcnow
from app.sync import runner
from tests.api import Org
from tests.fakes import FakeConnector
from tests.sync.test_runner import page

IMAP = {"host": "imap.acme.example", "username": "ana", "password": "pw"}


def queue(connection_id: int, kind: str, **fields: object) -> None:
    """What PATCH or POST …/sync writes when a worker holds the row."""
    with session_scope() as session:
        connection = session.get_one(Connection, connection_id)
        changes.queue(session, connection, kind, **fields)  # type: ignore[arg-type]


def claim(owner: str = "w1") -> list[leases.Lease]:
    with session_scope() as session:
        return leases.claim_due(session, owner=owner, limit=10, now=utcnow())


def waiting() -> int:
    with session_scope() as session:
        return session.scalar(select(func.count()).select_from(ConnectionChange)) or 0


def row(connection_id: int) -> Connection:
    with session_scope() as session:
        connection = session.get_one(Connection, connection_id)
        session.expunge(connection)
        return connection


def scheduled_later(connection_id: int) -> None:
    """Synced a moment ago: not due for a while."""
    with session_scope() as session:
        connection = session.get_one(Connection, connection_id)
        connection.next_sync_at = utcnow() + timedelta(minutes=5)
        connection.status = ConnectionStatus.idle


def test_a_queued_settings_change_is_what_readers_see_and_the_claim_applies_it(
    org: Org,
) -> None:
    connection_id = org.connect("ana@acme.example", "imap", IMAP)
    scheduled_later(connection_id)
    queue(connection_id, changes.SETTINGS, public={"folders": ["Deals"]})

    shown = org.connection(connection_id)
    assert shown["config"]["folders"] == ["Deals"]
    assert shown["status"] == "pending"
    assert row(connection_id).config.get("folders") is None  # not applied yet

    (lease,) = claim()
    assert lease.connection_id == connection_id
    assert row(connection_id).config["folders"] == ["Deals"]
    assert waiting() == 0
    assert org.connection(connection_id)["status"] == "syncing"


def test_a_queued_settings_change_ends_the_run_under_way(org: Org) -> None:
    connection_id = org.connect("ana@acme.example", "imap", IMAP)
    (old,) = claim("w1")
    queue(connection_id, changes.SETTINGS, public={"folders": ["Deals"]})
    with session_scope() as session, pytest.raises(leases.LeaseLost):
        leases.fence(session, old, now=utcnow())  # the old run's next page is refused
    (new,) = claim("w2")  # its lease is void: taken over at once, not when it ends
    assert (new.owner, new.epoch) == ("w2", old.epoch + 1)
    with session_scope() as session:
        leases.fence(session, new, now=utcnow())  # the new run writes
    assert row(connection_id).config["folders"] == ["Deals"]


def test_queued_changes_come_before_the_next_direct_one(org: Org) -> None:
    connection_id = org.connect("ana@acme.example", "imap", IMAP)
    queue(connection_id, changes.SETTINGS, public={"folders": ["Old"], "security": "starttls"})
    path = f"/api/v1/connections/{connection_id}"
    patched = org.client.patch(path, json={"config": {"folders": ["New"]}}, headers=org.as_admin())
    assert patched.status_code == 200, patched.text
    assert waiting() == 0
    config = row(connection_id).config
    assert (config["folders"], config["security"]) == (["New"], "starttls")


def test_a_queued_endpoint_change_replaces_the_secret_and_the_cursors(org: Org) -> None:
    connection_id = org.connect("ana@acme.example", "imap", IMAP)
    with session_scope() as session:
        session.get_one(Connection, connection_id).cursors = {"imap": "old-server-state"}
    queue(
        connection_id,
        changes.SETTINGS,
        public={"host": "mail.acme.example"},
        secret={"password": "new"},
        moved=True,
    )
    claim()
    connection = row(connection_id)
    assert connection.config["host"] == "mail.acme.example"
    assert changes.credentials(connection) == {"password": "new"}
    assert connection.cursors == {}


def test_a_queued_sync_request_makes_a_connection_due_even_after_an_auth_failure(
    org: Org,
) -> None:
    connection_id = org.connect("ana@acme.example", "imap", IMAP)
    with session_scope() as session:
        connection = session.get_one(Connection, connection_id)
        connection.status = ConnectionStatus.needs_reconnect
        connection.next_sync_at = None
    assert claim() == []
    queue(connection_id, changes.SYNC)
    assert org.connection(connection_id)["status"] == "pending"
    (lease,) = claim()
    assert lease.connection_id == connection_id and waiting() == 0


def test_a_sync_asked_while_a_run_held_the_row_runs_right_after_it(
    org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    connection_id = org.connect("ana@acme.example", "imap", IMAP)
    scheduled_later(connection_id)

    runs: list[str | None] = []

    class Asked(FakeConnector):
        def pull(self, cursor, *, since):  # type: ignore[no-untyped-def]
            runs.append(cursor)
            if len(runs) == 1:
                queue(connection_id, changes.SYNC)  # POST …/sync meanwhile, row held
            yield from super().pull(cursor, since=since)

    monkeypatch.setattr(runner, "build_connectors", lambda _c, _s: [Asked([page(0)])])
    org.sync(connection_id)  # runs the worker until nothing is due
    assert runs == [None, "1"]  # the asked run came right after the first
    assert waiting() == 0
    assert row(connection_id).next_sync_at > utcnow()  # and then nothing more was due


def test_a_user_who_leaves_takes_the_queued_credentials_along(org: Org) -> None:
    connection_id = org.connect("ana@acme.example", "imap", IMAP)
    queue(connection_id, changes.SETTINGS, secret={"password": "new"})
    user_id = org.users["ana@acme.example"]["id"]
    gone = org.client.delete(f"/api/v1/users/{user_id}", headers=org.as_admin())
    assert gone.status_code == 204, gone.text
    assert waiting() == 0
    assert claim() == []
