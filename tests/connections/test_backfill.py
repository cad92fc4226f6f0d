"""POST /connections/{id}/backfill: who may widen a connection's window, which days it takes,
which providers, and that it never waits for a worker holding the row. What the sync then
fetches is tested against real servers and the provider emulators: tests/sync/test_backfill_*.py
(IMAP, CalDAV, Google, Graph)."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from app import providers
from app.config import settings
from app.db import Database, session_scope
from app.main import create_app
from app.models import Connection, ConnectionStatus, utcnow
from tests.api import Org, make_org

IMAP = {"host": "imap.acme.example", "username": "ana", "password": "pw"}
ANA, ABE, BOB, MIA = "ana@acme.example", "abe@acme.example", "bob@acme.example", "mia@acme.example"


def today() -> date:
    return datetime.now(UTC).date()


def default_start() -> date:
    """Where a connection's window starts when it was never widened."""
    return (datetime.now(UTC) - timedelta(days=settings.backfill_days)).date()


def ago(days: int) -> str:
    return (today() - timedelta(days=days)).isoformat()


@pytest.fixture
def org(client: TestClient) -> Org:
    """Mia manages Ana and Abe; Bob is a rep of no team."""
    org = make_org(client)
    mia = org.user(MIA, role="manager")
    team = org.team("East", manager_id=mia["id"])
    org.user(ANA, team_id=team["id"])
    org.user(ABE, team_id=team["id"])
    org.user(BOB)
    return org


def backfill(org: Org, connection_id: int, body: Any, who: str = "admin") -> Any:
    headers = org.as_admin() if who == "admin" else org.as_user(who)
    path = f"/api/v1/connections/{connection_id}/backfill"
    return org.client.post(path, json=body, headers=headers)


def refused(response: Any, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and body["error"]["code"] == code
    message: str = body["error"]["message"]
    return message


def synced_a_moment_ago(connection_id: int) -> None:
    with session_scope() as session:
        connection = session.get_one(Connection, connection_id)
        connection.next_sync_at = utcnow() + timedelta(minutes=5)
        connection.status = ConnectionStatus.idle


def row(org: Org, email: str, provider: str) -> int:
    """A connection of a provider the API does not create (OAuth consents, `tally import`)."""
    with session_scope() as session:
        connection = Connection(
            org_id=org.id, user_id=org.users[email]["id"], provider=provider, config={}, cursors={}
        )
        session.add(connection)
        session.flush()
        return connection.id


def test_the_owner_widens_the_window_and_a_sync_is_due_at_once(org: Org) -> None:
    connection_id = org.connect(ANA, "imap", IMAP)
    synced_a_moment_ago(connection_id)
    before = org.connection(connection_id)
    assert "history_from" not in before["config"] and before["status"] == "idle"

    answer = backfill(org, connection_id, {"from": ago(540)}, who=ANA)
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert body["config"]["history_from"] == ago(540)
    assert body["config"]["host"] == IMAP["host"]  # the other settings are kept
    assert "password" not in body["config"]
    assert body["status"] == "pending"
    assert datetime.fromisoformat(body["next_sync_at"]) <= datetime.now(UTC)
    assert org.connection(connection_id)["config"]["history_from"] == ago(540)


def test_an_admin_may_and_so_may_a_manager_for_their_own_connection(org: Org) -> None:
    ana = org.connect(ANA, "imap", IMAP)
    mia = org.connect(MIA, "imap", {**IMAP, "username": "mia"})
    assert backfill(org, ana, {"from": ago(400)}).status_code == 202
    assert backfill(org, mia, {"from": ago(400)}, who=MIA).status_code == 202


def test_a_manager_sees_a_reps_connection_but_may_not_widen_it(org: Org) -> None:
    connection_id = org.connect(ANA, "imap", IMAP)
    assert (
        org.client.get(f"/api/v1/connections/{connection_id}", headers=org.as_user(MIA)).status_code
        == 200
    )
    message = refused(backfill(org, connection_id, {"from": ago(400)}, who=MIA), 403, "forbidden")
    assert "owner or an admin" in message
    assert "history_from" not in org.connection(connection_id)["config"]


def test_another_rep_or_another_org_finds_no_such_connection(org: Org, client: TestClient) -> None:
    connection_id = org.connect(ANA, "imap", IMAP)
    for who in (ABE, BOB):
        refused(backfill(org, connection_id, {"from": ago(400)}, who=who), 404, "not_found")
    other = make_org(client, name="Umbrella", domains=("umbrella.example",))
    path = f"/api/v1/connections/{connection_id}/backfill"
    answer = client.post(path, json={"from": ago(400)}, headers=other.as_admin())
    refused(answer, 404, "not_found")
    refused(backfill(org, 2**31 - 1, {"from": ago(400)}), 404, "not_found")
    assert "history_from" not in org.connection(connection_id)["config"]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"from": "2025-02-30"}, 422, "validation_error"),  # no such day
        ({"from": "2025-1-5"}, 422, "validation_error"),
        ({"from": "2025-01-05T00:00:00+00:00"}, 422, "validation_error"),  # a moment, not a day
        ({"from": 20250105}, 422, "validation_error"),
        ({"from": 0}, 422, "validation_error"),  # 0 is not 1970-01-01
        ({"from": None}, 422, "validation_error"),
        ({"from": "a\x00b"}, 422, "validation_error"),
        ({}, 422, "validation_error"),
        ({"from": "2025-01-05", "until": "2025-02-01"}, 422, "validation_error"),
        ({"since": "2025-01-05"}, 422, "validation_error"),
        (["2025-01-05"], 422, "validation_error"),
        ({"from": "0001-01-01"}, 400, "bad_request"),  # a date, but outside 1900..2999
        ({"from": "1899-12-31"}, 400, "bad_request"),
        ({"from": "3000-01-01"}, 400, "bad_request"),
    ],
)
def test_a_bad_day_gets_the_documented_error_the_same_on_both_databases(
    org: Org, body: Any, status: int, code: str
) -> None:
    connection_id = org.connect(ANA, "imap", IMAP)
    message = refused(backfill(org, connection_id, body), status, code)
    assert message
    assert "history_from" not in org.connection(connection_id)["config"]


@pytest.mark.parametrize("days_ahead", [0, 1, 400])
def test_today_or_a_future_day_is_refused(org: Org, days_ahead: int) -> None:
    connection_id = org.connect(ANA, "imap", IMAP)
    day = (today() + timedelta(days=days_ahead)).isoformat()
    message = refused(backfill(org, connection_id, {"from": day}), 409, "conflict")
    if days_ahead:
        assert f"{day} is in the future" in message
    else:
        assert f"already starts on {default_start()}" in message


def test_a_day_not_before_the_current_window_is_refused_and_the_same_day_is_a_no_op(
    org: Org,
) -> None:
    connection_id = org.connect(ANA, "imap", IMAP)
    # inside the default window, and its very first day
    for day in (ago(30), default_start().isoformat()):
        message = refused(backfill(org, connection_id, {"from": day}), 409, "conflict")
        assert f"already starts on {default_start()}" in message
    assert backfill(org, connection_id, {"from": ago(500)}).status_code == 202
    # later than the widened start, though earlier than the default one
    message = refused(backfill(org, connection_id, {"from": ago(450)}), 409, "conflict")
    assert f"already starts on {ago(500)}" in message
    synced_a_moment_ago(connection_id)
    again = backfill(org, connection_id, {"from": ago(500)})  # a retried request
    assert again.status_code == 202, again.text
    assert (again.json()["status"], again.json()["config"]["history_from"]) == ("idle", ago(500))
    further = backfill(org, connection_id, {"from": "1990-01-01"})
    assert further.status_code == 202, further.text
    assert further.json()["config"]["history_from"] == "1990-01-01"
    assert further.json()["status"] == "pending"


@pytest.mark.parametrize("provider", ["gmail", "google_calendar"])
def test_google_connections_widen_too(org: Org, provider: str) -> None:
    connection_id = row(org, ANA, provider)
    answer = backfill(org, connection_id, {"from": ago(500)}, who=ANA)
    assert answer.status_code == 202, answer.text
    assert answer.json()["config"]["history_from"] == ago(500)


def test_a_microsoft_365_connection_widens_too(org: Org) -> None:
    """Its mail and its calendar connector both read only the older stretch
    (tests/sync/test_backfill_graph.py)."""
    connection_id = row(org, ANA, "microsoft")
    answer = backfill(org, connection_id, {"from": ago(500)}, who=ANA)
    assert answer.status_code == 202, answer.text
    assert answer.json()["config"]["history_from"] == ago(500)
    assert answer.json()["status"] == "pending"


def test_a_provider_whose_connector_cannot_widen_gets_a_409_saying_so(
    org: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every synced provider widens today; one added without it is refused, as the table says."""
    unable = replace(providers.PROVIDERS["microsoft"], widens=False)
    monkeypatch.setitem(providers.PROVIDERS, "microsoft", unable)
    connection_id = row(org, ANA, "microsoft")
    message = refused(backfill(org, connection_id, {"from": ago(500)}), 409, "conflict")
    assert message.startswith("microsoft connections cannot reach further back yet")
    assert "history_from" not in org.connection(connection_id)["config"]


def test_an_import_has_no_window_to_widen(org: Org) -> None:
    connection_id = row(org, ANA, "import")
    message = refused(backfill(org, connection_id, {"from": ago(500)}), 409, "conflict")
    assert "no window" in message


def test_a_caldav_calendar_widens_too(org: Org) -> None:
    config = {"url": "https://cal.acme.example/dav/", "username": "ana", "password": "pw"}
    connection_id = org.connect(ANA, "caldav", config)
    answer = backfill(org, connection_id, {"from": ago(500)}, who=ANA)
    assert answer.status_code == 202, answer.text
    assert answer.json()["config"]["history_from"] == ago(500)


def test_a_deactivated_owners_connection_is_not_widened(org: Org) -> None:
    connection_id = org.connect(ANA, "imap", IMAP)
    response = org.client.delete(f"/api/v1/users/{org.users[ANA]['id']}", headers=org.as_admin())
    assert response.status_code == 204, response.text
    refused(backfill(org, connection_id, {"from": ago(500)}), 409, "conflict")


def test_the_openapi_states_the_rules() -> None:
    spec = create_app().openapi()
    operation = spec["paths"]["/api/v1/connections/{connection_id}/backfill"]["post"]
    assert set(operation["responses"]) >= {"202", "401", "403", "404", "409", "422"}
    for words in ("owner or an admin", "only what lies between", "409", "status", "stats"):
        assert words in operation["description"], words
    body = spec["components"]["schemas"]["BackfillRequest"]
    assert body["required"] == ["from"] and body["additionalProperties"] is False
    assert body["properties"]["from"]["format"] == "date"
    assert "never today or later" in body["properties"]["from"]["description"]


@pytest.mark.postgresql_only
def test_a_worker_holding_the_row_does_not_make_the_request_wait(
    org: Org, database: Database
) -> None:
    connection_id = org.connect(ANA, "imap", IMAP)
    synced_a_moment_ago(connection_id)
    with database.engine.connect() as worker:
        # what a worker's lease check holds until its commit
        worker.execute(
            text(f"SELECT id FROM connections WHERE id = {connection_id} FOR NO KEY UPDATE")
        )
        started = time.monotonic()
        answer = backfill(org, connection_id, {"from": ago(500)})
        seconds = time.monotonic() - started
        assert answer.status_code == 202, answer.text
        assert seconds < settings.db_connection_lock_seconds + 1.0
        assert answer.json()["config"]["history_from"] == ago(500)  # as it will be
        assert answer.json()["status"] == "pending"
        # a second, later day is judged against the queued one
        message = refused(backfill(org, connection_id, {"from": ago(450)}), 409, "conflict")
        assert f"already starts on {ago(500)}" in message
        worker.rollback()
    with session_scope() as session:
        assert "history_from" not in session.get_one(Connection, connection_id).config
    # the next holder applies it: here the next API write
    path = f"/api/v1/connections/{connection_id}/sync"
    assert org.client.post(path, headers=org.as_admin()).status_code == 202
    with session_scope() as session:
        assert session.get_one(Connection, connection_id).config["history_from"] == ago(500)
