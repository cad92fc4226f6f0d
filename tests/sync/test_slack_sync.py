"""Slack end to end: the workspace installed through the OAuth routes, the worker syncs it
from the local Slack emulator with the real slack_sdk, chat conversations come out (§11),
failures end in states a person can read. SQLite and PostgreSQL."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from app.config import settings
from app.connections.schemas import CONFIG_MODELS
from app.db import session_scope
from app.models import Connection
from app.sync.slack import channels
from app.sync.worker import SyncWorker
from tests.api import Org, make_org
from tests.emulators.slack import SlackEmulator
from tests.fakes import interrupt_syncs, raising

WINDOW = 0.6  # Slack's minute, scaled (tests/connectors/test_slack.py)
ANA = "ana@acme.example"
HOUR = 3600.0


@pytest.fixture
def slack(monkeypatch: pytest.MonkeyPatch) -> Iterator[SlackEmulator]:
    emulator = SlackEmulator(window_seconds=WINDOW).start()
    emulator.add_user("UANA", ANA)
    emulator.add_user("UCARL", "carl@acme.example")  # a colleague without Tally
    emulator.add_user("UBOB", "bob@client.example", team_id="TCLIENT")
    emulator.add_channel("C1", "public", ["UBOT", "UANA", "UCARL", "UBOB"], name="x", ext=True)
    for name, value in {
        "slack_client_id": emulator.client_id,
        "slack_client_secret": SecretStr(emulator.client_secret),
        "slack_api_url": emulator.url,
        "slack_window_seconds": WINDOW,
        "slack_max_wait_seconds": 2.0,
    }.items():
        monkeypatch.setattr(settings, name, value)
    yield emulator
    emulator.stop()


class Workspace:
    def __init__(self, client: TestClient, slack: SlackEmulator) -> None:
        self.org: Org = make_org(client)
        self.org.user(ANA)
        self.slack = slack
        self.connection_id = 0

    def install(self) -> dict[str, Any]:
        """The admin installs the app: start, Slack's consent (a code), the callback."""
        started = self.org.client.get(
            "/api/v1/connections/oauth/slack/start", headers=self.org.as_user(ANA)
        )
        assert started.status_code == 200, started.text
        query = parse_qs(urlsplit(started.json()["authorization_url"]).query)
        code = self.slack.grant("UANA")
        back = self.org.client.get(
            "/api/v1/connections/oauth/slack/callback",
            params={"code": code, "state": query["state"][0]},
        )
        assert back.status_code == 200, back.text
        body: dict[str, Any] = back.json()
        self.connection_id = body["connections"][0]["id"]
        return body

    def talk(self, start: float, runs: int, per_run: int = 2) -> None:
        """`runs` conversations 8 h apart (over §11's 240 min gap), each Bob then Ana."""
        for run in range(runs):
            for i in range(per_run):
                self.slack.post("C1", "UBOB" if i % 2 == 0 else "UANA", start + run * 8 * HOUR + i)

    def conversations(self) -> int:
        user = self.org.users[ANA]["id"]
        items = self.org.client.get(
            f"/api/v1/activities?user_id={user}&limit=1000", headers=self.org.as_admin()
        ).json()["items"]
        return sum(1 for a in items if a["type"] == "chat_conversation")

    def connection(self) -> dict[str, Any]:
        return self.org.connection(self.connection_id)


@pytest.fixture
def workspace(client: TestClient, slack: SlackEmulator) -> Workspace:
    return Workspace(client, slack)


def test_install_then_chats_with_customers_become_conversations(workspace: Workspace) -> None:
    body = workspace.install()
    assert body["account"] == ANA and body["connections"][0]["provider"] == "slack"
    assert "xox" not in json.dumps(body)  # tokens are never returned
    now = time.time()
    workspace.talk(now - 30 * 24 * HOUR, 3)
    workspace.slack.post("C1", "UCARL", now - 29 * 24 * HOUR)  # a colleague without Tally
    SyncWorker(2).drain()  # due at once after the install
    state = workspace.connection()
    assert state["status"] == "idle" and state["last_error"] is None, state
    assert state["stats"]["messages_imported"] == 7
    assert workspace.conversations() == 3
    with session_scope() as session:  # what the connection's view will list (docs/slack.md)
        read = channels(session.get_one(Connection, workspace.connection_id))
    assert [(c["id"], c["name"], c["kind"]) for c in read] == [("C1", "x", "public_channel")]
    assert read[0]["synced_to"] is not None
    [shown] = state["channels"]  # GET /connections/{id}: what was captured, per channel
    assert (shown["source"], shown["channel_id"], shown["messages"]) == ("slack", "C1", 7)
    assert shown["last_message_at"] is not None

    workspace.talk(time.time() - 60, 1)  # the incremental sync
    workspace.org.sync(workspace.connection_id)
    assert workspace.conversations() == 4
    workspace.org.sync(workspace.connection_id)
    assert workspace.connection()["stats"]["messages_imported"] == 9


def test_a_crash_between_pages_loses_and_doubles_nothing(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "slack_history_page", 20)
    workspace.install()
    workspace.talk(time.time() - 40 * 24 * HOUR, 60)  # 120 messages, 6 pages
    restore = interrupt_syncs(
        monkeypatch, after_pages=3, then=raising(ConnectionResetError("the network went away"))
    )
    SyncWorker(2).drain()
    assert workspace.connection()["status"] == "error"
    kept = workspace.conversations()
    assert 0 < kept < 60
    restore()
    workspace.org.sync(workspace.connection_id)
    state = workspace.connection()
    assert state["status"] == "idle", state
    assert workspace.conversations() == 60
    assert state["stats"]["messages_imported"] == 120  # each stored once


def test_a_rate_limit_mid_backfill_leaves_the_connection_waiting(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "slack_history_page", 4)
    workspace.install()
    workspace.talk(time.time() - 10 * 24 * HOUR, 5)
    workspace.slack.force_ratelimit("conversations.history", 90, after=1)  # the 2nd page
    SyncWorker(2).drain()
    assert workspace.conversations() == 2  # the first page's (two runs) are kept
    state = workspace.connection()
    assert state["status"] == "idle" and "rate limit" in str(state["last_error"]), state
    with session_scope() as session:
        due = session.get_one(Connection, workspace.connection_id).next_sync_at
    assert due is not None and due > datetime.now(UTC) + timedelta(seconds=60)
    workspace.org.sync(workspace.connection_id)  # asked by hand, once Slack allows again
    assert workspace.conversations() == 5


def test_a_revoked_token_asks_for_a_new_install(workspace: Workspace) -> None:
    workspace.install()
    workspace.talk(time.time() - 24 * HOUR, 1)
    SyncWorker(2).drain()
    workspace.slack.revoke(workspace.slack.bot_token)
    workspace.org.sync(workspace.connection_id)
    state = workspace.connection()
    assert state["status"] == "needs_reconnect" and "token_revoked" in state["last_error"]
    with session_scope() as session:
        assert session.get_one(Connection, workspace.connection_id).next_sync_at is None


@pytest.mark.skipif(
    "slack" not in CONFIG_MODELS, reason="POST /connections takes no Slack config yet"
)
def test_a_pasted_bot_token_connects_a_private_app(workspace: Workspace) -> None:
    org = workspace.org
    user_id = org.users[ANA]["id"]
    refused = org.client.post(
        "/api/v1/connections",
        json={"user_id": user_id, "provider": "slack", "config": {"bot_token": "xoxp-1234567890"}},
        headers=org.as_admin(),
    )
    assert refused.status_code == 422, refused.text
    made = org.client.post(
        "/api/v1/connections",
        json={
            "user_id": user_id,
            "provider": "slack",
            "config": {"bot_token": workspace.slack.bot_token},
        },
        headers=org.as_admin(),
    )
    assert made.status_code == 201, made.text
    assert "xox" not in made.text
    workspace.connection_id = made.json()["id"]
    workspace.talk(time.time() - 24 * HOUR, 2)
    SyncWorker(2).drain()
    assert workspace.connection()["status"] == "idle"
    assert workspace.conversations() == 2
