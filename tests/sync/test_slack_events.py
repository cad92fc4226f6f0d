"""Slack's Events API end to end (POST /api/v1/push/slack): signed deliveries only, the
url_verification handshake, a deleted message taken back at once (§11: the result depends
only on which messages exist), a new message making the workspace due. SQLite and
PostgreSQL; the events are built as Slack sends them (tests/emulators/slack_events.py)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import SecretStr

from app.config import settings
from app.db import session_scope
from app.models import Connection
from app.sync.worker import SyncWorker
from tests.emulators import slack_events
from tests.sync.slackworld import HOUR, Workspace

PUSH = "/api/v1/push/slack"


@pytest.fixture(autouse=True)
def signing_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(settings, "slack_signing_secret", SecretStr(slack_events.SIGNING_SECRET))


def send(workspace: Workspace, event: dict[str, Any], **options: Any) -> Any:
    body, headers = slack_events.delivery(workspace.slack, event, **options)
    return workspace.org.client.post(PUSH, content=body, headers=headers)


def synced(workspace: Workspace) -> Workspace:
    """Installed, two conversations in C1 (8 h apart), synced."""
    workspace.install()
    workspace.talk(time.time() - 3 * 24 * HOUR, 2)
    SyncWorker(2).drain()
    assert workspace.conversations() == 2
    return workspace


def test_slack_s_handshake_is_answered(workspace: Workspace) -> None:
    body, headers = slack_events.delivery(workspace.slack, {}, kind="url_verification")
    answer = workspace.org.client.post(PUSH, content=body, headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"challenge": json.loads(body)["challenge"]}


@pytest.mark.parametrize(
    "tamper",
    ["no signature", "another secret", "five minutes and more old", "not a number", "body"],
)
def test_only_what_slack_signed_now_is_taken(workspace: Workspace, tamper: str) -> None:
    synced(workspace)
    first = workspace.slack.channels["C1"].messages[0]["ts"]
    event = slack_events.delete(workspace.slack, "C1", first)
    options: dict[str, Any] = {}
    if tamper == "another secret":
        options["secret"] = "not-the-app-s-secret"
    if tamper == "five minutes and more old":
        options["at"] = time.time() - 301
    body, headers = slack_events.delivery(workspace.slack, event, **options)
    if tamper == "no signature":
        headers.pop("X-Slack-Signature")
    if tamper == "not a number":
        headers["X-Slack-Request-Timestamp"] = "soon"
    if tamper == "body":
        body = body.replace(b'"C1"', b'"C2"')
    answer = workspace.org.client.post(PUSH, content=body, headers=headers)
    assert answer.status_code == 401, answer.text
    assert answer.json()["error"]["code"] == "unauthorized"
    assert workspace.conversations() == 2  # nothing taken back


def test_without_a_signing_secret_the_route_is_not_there(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "slack_signing_secret", None)
    answer = send(workspace, slack_events.posted("C1", "UBOB", f"{time.time():.6f}"))
    assert answer.status_code == 404 and "TALLY_SLACK_SIGNING_SECRET" in answer.text


def test_a_deleted_message_stops_counting_at_once(workspace: Workspace) -> None:
    synced(workspace)
    # the first conversation: Bob then Ana; without Bob's message nobody external wrote
    bob_first = workspace.slack.channels["C1"].messages[0]
    assert bob_first["user"] == "UBOB"
    event = slack_events.delete(workspace.slack, "C1", bob_first["ts"])
    answer = send(workspace, event)
    assert answer.status_code == 200 and answer.json() == {"ok": True}, answer.text
    assert workspace.conversations() == 1
    assert send(workspace, event).status_code == 200  # Slack's retry changes nothing
    assert workspace.conversations() == 1
    workspace.org.sync(workspace.connection_id)  # the history no longer has it either
    assert workspace.conversations() == 1
    channel = workspace.connection()["channels"][0]
    assert channel["messages"] == 3


def test_a_deleted_thread_parent_is_a_tombstone_and_stops_counting(
    workspace: Workspace,
) -> None:
    workspace.install()
    start = time.time() - 2 * 24 * HOUR
    parent = workspace.slack.post("C1", "UBOB", start)
    workspace.slack.post("C1", "UANA", start + 60, thread_ts=parent)
    SyncWorker(2).drain()
    assert workspace.conversations() == 1
    event = slack_events.delete(workspace.slack, "C1", parent)
    assert event["subtype"] == "message_changed"  # its reply stays: a tombstone
    assert send(workspace, event).status_code == 200
    assert workspace.conversations() == 0  # Ana's reply alone is nobody external


def test_an_edit_or_another_workspace_changes_nothing(workspace: Workspace) -> None:
    synced(workspace)
    message = workspace.slack.channels["C1"].messages[0]
    edit = {
        "type": "message",
        "subtype": "message_changed",
        "channel": "C1",
        "message": {**message, "text": "edited"},
    }
    assert send(workspace, edit).status_code == 200
    workspace.slack.team_id = "T0ELSEWHERE"  # a workspace no organization connected
    gone = slack_events.delete(workspace.slack, "C1", message["ts"])
    assert send(workspace, gone).json() == {"ok": True}
    assert workspace.conversations() == 2


def test_a_new_message_makes_the_workspace_due(workspace: Workspace) -> None:
    synced(workspace)
    with session_scope() as session:
        later = session.get_one(Connection, workspace.connection_id).next_sync_at
    assert later is not None and later > datetime.now(UTC)  # polling waits
    ts = workspace.slack.post("C1", "UBOB", time.time() - 5)
    workspace.slack.post("C1", "UANA", time.time() - 4)
    assert send(workspace, slack_events.posted("C1", "UBOB", ts)).status_code == 200
    with session_scope() as session:
        due = session.get_one(Connection, workspace.connection_id).next_sync_at
    assert due is not None and due <= datetime.now(UTC)
    SyncWorker(2).drain()
    assert workspace.conversations() == 3
