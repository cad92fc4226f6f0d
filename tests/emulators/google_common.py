"""What the parts of the Google emulator share: scopes, stored objects, errors, dates."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

GMAIL_METADATA = "https://www.googleapis.com/auth/gmail.metadata"
GMAIL_READONLY = "https://www.googleapis.com/auth/gmail.readonly"
GMAIL_SETTINGS = "https://www.googleapis.com/auth/gmail.settings.basic"
CALENDAR_EVENTS = "https://www.googleapis.com/auth/calendar.events.readonly"
IDENTITY = ("openid", "https://www.googleapis.com/auth/userinfo.email")


class Answer(Exception):
    def __init__(self, status: int, body: Any = None, headers: Mapping[str, str] | None = None):
        super().__init__(status)
        self.status, self.body, self.headers = status, body, dict(headers or {})


def google_error(
    status: int, message: str, reason: str, state: str = "", domain: str = "global"
) -> Answer:
    body = {
        "error": {
            "code": status,
            "message": message,
            "errors": [{"message": message, "domain": domain, "reason": reason}],
            "status": state,
        }
    }
    return Answer(status, body)


@dataclass
class Message:
    id: str
    thread_id: str
    labels: set[str]
    internal_date: int  # ms
    headers: list[tuple[str, str]]
    history_id: int
    payload: dict[str, Any]  # the MessagePart tree format=full returns (google_gmail.py)


@dataclass
class Mailbox:
    email: str
    aliases: list[str] = field(default_factory=list)
    messages: dict[str, Message] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)  # records, oldest first
    history_id: int = 1000
    history_floor: int = 0  # startHistoryId below this: 404
    events: dict[str, dict[str, Any]] = field(default_factory=dict)  # id -> event (latest)
    event_seq: dict[str, int] = field(default_factory=dict)  # id -> change number
    calendar_seq: int = 1
    sync_floor: int = 0  # sync tokens below this: 410
    watches: list[dict[str, Any]] = field(default_factory=list)
    channels: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Grant:
    email: str
    scopes: list[str]
    revoked: bool = False


def rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def event_time(value: Mapping[str, str]) -> datetime:
    if "dateTime" in value:
        return parse_time(value["dateTime"])
    return datetime.fromisoformat(value["date"]).replace(tzinfo=UTC)
