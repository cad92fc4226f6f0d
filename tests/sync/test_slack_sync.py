"""Slack end to end: the workspace installed through the OAuth routes, the worker syncs it
from the local Slack emulator with the real slack_sdk, chat conversations come out (§11),
failures end in states a person can read. SQLite and PostgreSQL."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from pydantic import SecretStr

from app.config import settings
from app.db import session_scope
from app.models import Connection
from app.sync.worker import SyncWorker
from tests.emulators.slack import SlackEmulator
from tests.fakes import interrupt_syncs, raising
from tests.sync.slackworld import ANA, HOUR, WINDOW, Workspace


def test_install_then_chats_with_customers_become_conversations(workspace: Workspace) -> None:
    body = workspace.install()
    assert body["account"] == ANA and body["connections"][0]["provider"] == "slack"
    assert "xox" not in json.dumps(body)  # tokens are never returned
    now = time.time()
    workspace.talk(now - 30 * 24 * HOUR, 3)
    workspace.slack.post("C1", "UCARL", now - 29 * 24 * HOUR)  # a colleague without Tally
    workspace.slack.add_channel("G9", "private", ["UBOT", "UANA", "UBOB"], name="quiet", ext=True)
    SyncWorker(2).drain()  # due at once after the install
    state = workspace.connection()
    assert state["status"] == "idle" and state["last_error"] is None, state
    assert state["stats"]["messages_imported"] == 7
    assert workspace.conversations() == 3
    # GET /connections/{id}: every channel read, the busiest first, how far each is read
    shown, quiet = state["channels"]
    assert (shown["source"], shown["channel_id"], shown["messages"]) == ("slack", "C1", 7)
    assert (shown["name"], shown["kind"]) == ("x", "public_channel")
    last = datetime.fromisoformat(shown["last_message_at"])
    assert abs(last.timestamp() - (now - 29 * 24 * HOUR)) < 1
    for channel in (shown, quiet):  # read up to the run's start
        assert now - 5 <= datetime.fromisoformat(channel["synced_to"]).timestamp() <= time.time()
    assert (quiet["channel_id"], quiet["name"], quiet["kind"]) == ("G9", "quiet", "private_channel")
    assert (quiet["messages"], quiet["last_message_at"]) == (0, None)  # shared, nothing said yet

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


RITA = "rita@acme.example"


def test_a_workspace_is_read_once_and_each_member_adds_only_their_own_dms(
    workspace: Workspace,
) -> None:
    """The first install is an admin's and reads the shared channels; a rep's own install
    reads only the DMs their token sees, never the shared channels a second time."""
    org, slack = workspace.org, workspace.slack
    org.user(RITA)  # a rep
    slack.add_user("URITA", RITA)
    refused = org.client.get(  # nobody has connected the workspace yet: refused at once
        "/api/v1/connections/oauth/slack/start", headers=org.as_user(RITA)
    )
    assert refused.status_code == 403 and "admin" in refused.json()["error"]["message"]
    pasted = org.client.post(
        "/api/v1/connections",
        json={
            "user_id": org.users[RITA]["id"],
            "provider": "slack",
            "config": {"bot_token": slack.bot_token},
        },
        headers=org.as_user(RITA),
    )
    assert pasted.status_code == 403, pasted.text

    workspace.install()
    now = time.time()
    workspace.talk(now - 3 * 24 * HOUR, 2)  # in the shared channel C1
    slack.add_channel("D7", "im", ["URITA", "UBOB"])  # Rita's DM with the customer
    slack.post("D7", "UBOB", now - 2 * HOUR)
    slack.post("D7", "URITA", now - 2 * HOUR + 60)
    no_dms = workspace.consent(RITA, "URITA", user_scopes=False)
    assert no_dms.status_code == 400 and "direct messages" in no_dms.json()["error"]["message"]
    mine = workspace.consent(RITA, "URITA")
    assert mine.status_code == 200, mine.text
    rita_connection = mine.json()["connections"][0]["id"]
    assert rita_connection != workspace.connection_id
    history = slack.calls["conversations.history"]
    SyncWorker(2).drain()
    rita = org.connection(rita_connection)
    assert rita["status"] == "idle", rita
    assert [c["channel_id"] for c in rita["channels"]] == ["D7"]  # C1 is the workspace's
    assert [c["channel_id"] for c in workspace.connection()["channels"]] == ["C1"]
    assert slack.calls["conversations.history"] - history == 2  # C1 once, D7 once
    items = org.client.get(
        f"/api/v1/activities?user_id={org.users[RITA]['id']}", headers=org.as_admin()
    ).json()["items"]
    assert [a["type"] for a in items] == ["chat_conversation"]
    assert workspace.conversations() == 2


def test_installing_again_reconnects_and_an_admin_takes_over_a_broken_workspace(
    workspace: Workspace,
) -> None:
    org, slack = workspace.org, workspace.slack
    workspace.install()
    first = workspace.connection_id
    workspace.talk(time.time() - 24 * HOUR, 2)
    SyncWorker(2).drain()
    assert workspace.install()["connections"][0]["id"] == first  # Ana again: a reconnect
    org.user("omar@acme.example", role="admin")
    slack.add_user("UOMAR", "omar@acme.example")
    mine = workspace.consent("omar@acme.example", "UOMAR")  # the workspace works: his DMs
    assert mine.status_code == 200 and mine.json()["connections"][0]["id"] != first

    slack.revoke(slack.bot_token)
    org.sync(first)
    assert workspace.connection()["status"] == "needs_reconnect"
    slack.bot_token = slack.add_token("UBOT")  # Slack issues a new bot token on install
    taken = workspace.consent("omar@acme.example", "UOMAR")
    assert taken.status_code == 200, taken.text
    # Omar already has his own DMs connection: that one is reconnected, not the workspace's
    assert taken.json()["connections"][0]["id"] == mine.json()["connections"][0]["id"]
    assert workspace.connection()["status"] == "needs_reconnect"

    gone = org.client.delete(
        f"/api/v1/connections/{mine.json()['connections'][0]['id']}", headers=org.as_admin()
    )
    assert gone.status_code == 204, gone.text
    taken = workspace.consent("omar@acme.example", "UOMAR")
    assert taken.json()["connections"][0]["id"] == first  # handed over, cursors kept
    state = workspace.connection()
    assert state["user_id"] == org.users["omar@acme.example"]["id"]
    imported = state["stats"]["messages_imported"]
    workspace.talk(time.time() - 60, 1)
    org.sync(first)
    state = workspace.connection()
    assert state["status"] == "idle", state
    assert state["stats"]["messages_imported"] == imported + 2  # nothing read twice
    assert workspace.conversations() == 3


def test_a_second_workspace_of_the_same_admin_is_a_second_connection(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = workspace.install()["connections"][0]
    other = SlackEmulator(team_id="T0BETA", team_name="Beta", window_seconds=WINDOW).start()
    try:
        other.add_user("UANA", ANA)
        monkeypatch.setattr(settings, "slack_client_id", other.client_id)
        monkeypatch.setattr(settings, "slack_client_secret", SecretStr(other.client_secret))
        monkeypatch.setattr(settings, "slack_api_url", other.url)
        workspace.slack = other
        second = workspace.install()["connections"][0]
    finally:
        other.stop()
    assert second["id"] != first["id"]
    assert (first["config"]["team_id"], second["config"]["team_id"]) == ("T0ACME", "T0BETA")
    assert workspace.org.connection(first["id"])["config"]["team_id"] == "T0ACME"


def test_a_members_install_started_while_the_workspace_was_connected_is_checked_again(
    workspace: Workspace,
) -> None:
    """The rep may start (the workspace is connected), but the admin removes the workspace's
    connection before Slack sends the rep back: the callback refuses what start would now."""
    org, slack = workspace.org, workspace.slack
    org.user(RITA)
    slack.add_user("URITA", RITA)
    workspace.install()
    started = org.client.get("/api/v1/connections/oauth/slack/start", headers=org.as_user(RITA))
    assert started.status_code == 200, started.text
    consent = started.json()["authorization_url"]
    gone = org.client.delete(
        f"/api/v1/connections/{workspace.connection_id}", headers=org.as_admin()
    )
    assert gone.status_code == 204, gone.text
    back = org.client.get(
        "/api/v1/connections/oauth/slack/callback",
        params={
            "code": slack.grant("URITA", consent=consent),
            "state": parse_qs(urlsplit(consent).query)["state"][0],
        },
    )
    assert back.status_code == 403 and "admin" in back.json()["error"]["message"]
    listed = org.client.get("/api/v1/connections", headers=org.as_admin()).json()["items"]
    assert listed == []


def test_when_the_installer_leaves_another_admin_takes_the_workspace_over(
    workspace: Workspace,
) -> None:
    org, slack = workspace.org, workspace.slack
    workspace.install()
    workspace.talk(time.time() - 2 * 24 * HOUR, 1)
    SyncWorker(2).drain()
    org.user("omar@acme.example", role="admin")
    slack.add_user("UOMAR", "omar@acme.example")
    left = org.client.delete(f"/api/v1/users/{org.users[ANA]['id']}", headers=org.as_admin())
    assert left.status_code == 204, left.text
    stopped = workspace.connection()
    assert stopped["status"] == "needs_reconnect" and "deactivated" in stopped["last_error"]
    taken = workspace.consent("omar@acme.example", "UOMAR")
    assert taken.status_code == 200, taken.text
    assert taken.json()["connections"][0]["id"] == workspace.connection_id
    workspace.talk(time.time() - 60, 1)
    SyncWorker(2).drain()
    state = workspace.connection()
    assert state["status"] == "idle" and state["user_id"] == org.users["omar@acme.example"]["id"]
    assert state["stats"]["messages_imported"] == 4  # two before, two after: none twice
