"""Slack's Events API as plain data: whether a request is Slack's, and what its events say.

Slack POSTs each event to the app's Request URL (https://docs.slack.dev/apis/events-api/):
- signed: `X-Slack-Signature: v0=<hex HMAC-SHA256 of "v0:{X-Slack-Request-Timestamp}:{raw
  body}" with the app's signing secret>`, the timestamp within 5 minutes
  (https://docs.slack.dev/authentication/verifying-requests-from-slack/), checked with
  slack_sdk's SignatureVerifier;
- `{"type": "url_verification", "challenge": …}` once, when the URL is set: answered with the
  challenge;
- `{"type": "event_callback", "team_id": …, "event": {…}}` for each event, retried (with
  `X-Slack-Retry-Num`) when not answered 2xx within 3 seconds, so handling must be quick and
  idempotent.
Message events (`message.channels`, `.groups`, `.im`, `.mpim`; https://docs.slack.dev/
reference/events/message) say a message was posted, changed or deleted. A deletion has the
subtype `message_deleted` and the deleted message's `deleted_ts`
(https://docs.slack.dev/reference/events/message/message_deleted); a thread parent deleted
while replies remain becomes a `tombstone`, announced as `message_changed` whose `message`
has that subtype (https://docs.slack.dev/reference/events/message/message_changed): gone too.
Nothing here touches the database or imports app/.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from slack_sdk.signature import SignatureVerifier


@dataclass(frozen=True, slots=True)
class Challenge:
    value: str


@dataclass(frozen=True, slots=True)
class Deleted:
    """A message that no longer exists: its identity is (channel, ts)."""

    team: str
    channel: str
    ts: str


@dataclass(frozen=True, slots=True)
class Posted:
    """Something new in a channel: the next sync reads it (with its sender's address)."""

    team: str
    channel: str


Event = Challenge | Deleted | Posted


def verified(secret: str, body: bytes, timestamp: str | None, signature: str | None) -> bool:
    """Whether Slack signed this body now. A timestamp that is not a number is not Slack's
    (slack_sdk would raise on it)."""
    if not secret or not timestamp or not signature:
        return False
    if not timestamp.isdigit() or len(timestamp) > 12:
        return False
    return SignatureVerifier(secret).is_valid(body, timestamp, signature)


def read(payload: object) -> list[Event]:
    """What a verified request asks of Tally; [] for what Tally does not need (other event
    types, edits, joins)."""
    if not isinstance(payload, dict):
        return []
    if payload.get("type") == "url_verification":
        return [Challenge(str(payload.get("challenge") or ""))]
    event = payload.get("event")
    team = payload.get("team_id")
    if payload.get("type") != "event_callback" or not isinstance(event, dict) or not team:
        return []
    if event.get("type") != "message" or not isinstance(event.get("channel"), str):
        return []
    return _message(str(team), event["channel"], event)


def _message(team: str, channel: str, event: dict[str, Any]) -> list[Event]:
    subtype = event.get("subtype")
    if subtype == "message_deleted" and event.get("deleted_ts"):
        return [Deleted(team, channel, str(event["deleted_ts"]))]
    if subtype == "message_changed":
        changed = event.get("message")
        if isinstance(changed, dict) and changed.get("subtype") == "tombstone":
            return [Deleted(team, channel, str(changed.get("ts") or ""))]
        return []  # an edit: §11 counts a message by its identity, not its text
    return [Posted(team, channel)]
