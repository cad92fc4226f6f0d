"""What Slack's Events API sends the app's Request URL, for a workspace of the emulator.

Each delivery is `{"type": "event_callback", "team_id", "api_app_id", "event", "event_id",
"event_time"}` signed as Slack signs: `X-Slack-Request-Timestamp` and `X-Slack-Signature:
v0=<hex HMAC-SHA256 of "v0:{timestamp}:{body}">` with the app's signing secret
(https://docs.slack.dev/authentication/verifying-requests-from-slack/), written out here
independently of slack_sdk. Deleting a message removes it from the history and announces
`message_deleted` with its `deleted_ts` (https://docs.slack.dev/reference/events/message/
message_deleted); a thread parent with replies becomes a `tombstone` instead, announced as
`message_changed` (https://docs.slack.dev/reference/events/message/message_changed).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from typing import Any

from tests.emulators.slack_workspace import SlackWorkspace

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"


def delete(slack: SlackWorkspace, channel_id: str, ts: str) -> dict[str, Any]:
    """Delete a message as a person does in Slack; the event Slack then sends."""
    with slack.lock:
        channel = slack.channels[channel_id]
        message = next(m for m in channel.messages if m["ts"] == ts)
        if message.get("reply_count"):  # its replies stay: a tombstone keeps the thread
            message.update(subtype="tombstone", text="This message was deleted.", user="USLACKBOT")
            return {
                "type": "message",
                "subtype": "message_changed",
                "channel": channel_id,
                "hidden": True,
                "ts": f"{time.time():.6f}",
                "message": dict(message),
            }
        channel.messages.remove(message)
    return {
        "type": "message",
        "subtype": "message_deleted",
        "channel": channel_id,
        "hidden": True,
        "ts": f"{time.time():.6f}",
        "deleted_ts": ts,
        "previous_message": {"type": "message", "ts": ts, "user": message.get("user")},
    }


def posted(channel_id: str, user: str, ts: str) -> dict[str, Any]:
    """The event of a message posted (slack.post stores it; this is what Slack announces)."""
    return {"type": "message", "channel": channel_id, "user": user, "ts": ts, "text": "hi"}


def delivery(
    slack: SlackWorkspace,
    event: dict[str, Any],
    *,
    secret: str = SIGNING_SECRET,
    at: float | None = None,
    kind: str = "event_callback",
) -> tuple[bytes, dict[str, str]]:
    """The body and headers of Slack's POST for `event`."""
    now = time.time() if at is None else at
    if kind == "url_verification":
        envelope: dict[str, Any] = {"type": kind, "challenge": secrets.token_urlsafe(16)}
    else:
        envelope = {
            "type": kind,
            "team_id": slack.team_id,
            "api_app_id": "A1",
            "event": event,
            "event_id": f"Ev{secrets.token_hex(5).upper()}",
            "event_time": int(now),
        }
    body = json.dumps(envelope).encode()
    timestamp = str(int(now))
    mac = hmac.new(secret.encode(), f"v0:{timestamp}:".encode() + body, hashlib.sha256)
    return body, {
        "Content-Type": "application/json",
        "X-Slack-Request-Timestamp": timestamp,
        "X-Slack-Signature": f"v0={mac.hexdigest()}",
    }
