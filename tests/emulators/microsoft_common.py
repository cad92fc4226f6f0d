"""What the parts of the Microsoft emulator share: the mailbox state and Graph's shapes."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

FOLDER_IDS = {
    "inbox": "AAMkFolderInbox",
    "sentitems": "AAMkFolderSent",
    "archive": "AAMkFolderArchive",
    "drafts": "AAMkFolderDrafts",
    "deleteditems": "AAMkFolderDeleted",
}
RESERVED_SCOPES = {"openid", "profile", "offline_access"}
MAX_IN_FLIGHT = 4
MAIL_READ, MAIL_READ_BASIC, CALENDARS_READ = "Mail.Read", "Mail.ReadBasic", "Calendars.Read"

Answer = tuple[int, dict[str, str], dict[str, Any] | None]


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def graph_time(moment: datetime) -> dict[str, str]:
    """An event time as Graph gives it with Prefer: outlook.timezone="UTC"."""
    return {
        "dateTime": moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.0000000"),
        "timeZone": "UTC",
    }


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned_jwt(claims: dict[str, Any]) -> str:
    header = b64url(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"{header}.{b64url(json.dumps(claims).encode())}."


def email_address(text: str) -> dict[str, Any]:
    if "<" in text:
        name, address = text.split("<", 1)
        return {"emailAddress": {"name": name.strip(), "address": address.rstrip(">").strip()}}
    return {"emailAddress": {"name": text, "address": text}}


def copy(data: Any) -> Any:
    return json.loads(json.dumps(data))


def scope_names(text: str) -> set[str]:
    """Scope names of a scope parameter: Graph scopes come as `<resource>/<name>`."""
    return {s.rsplit("/", 1)[-1] for s in text.split() if s not in RESERVED_SCOPES}


@dataclass
class Item:
    """A message, an event instance or a series master in a mailbox; `seq` is the mailbox
    sequence of its last change, `container` its folder ("calendar" for events), `series`
    the series master's id for a master and its instances."""

    id: str
    container: str
    data: dict[str, Any]
    seq: int
    series: str | None = None


@dataclass
class Round:
    """A delta round in progress: what it will return, unit by unit (a unit is never split
    over two pages: one message, one single event, or a series with its instances)."""

    mailbox: str
    generation: int
    path: str  # the delta URL path, for the links
    units: list[list[dict[str, Any]]]
    base: int  # the mailbox sequence when the round started: its deltaLink resumes from it
    query: dict[str, Any]


@dataclass
class DeltaToken:
    mailbox: str
    generation: int
    path: str
    seq: int
    query: dict[str, Any]


@dataclass
class User:
    email: str
    name: str
    oid: str
    aliases: tuple[str, ...]
    items: dict[str, Item] = field(default_factory=dict)
    departures: list[tuple[int, str, str]] = field(default_factory=list)  # seq, container, id
    seq: int = 0
    generation: int = 0  # bumped when the sync states are evicted
    in_flight: int = 0
    max_in_flight: int = 0
    throttled: list[float] = field(default_factory=list)  # Retry-After of the next 429s
    requests: list[float] = field(default_factory=list)  # monotonic times of Graph requests
    refused: int = 0  # requests refused for concurrency
    revoked: int | None = None  # the AADSTS code refresh grants get
    throttle_at: tuple[int, float] | None = None  # (request number, Retry-After) to refuse

    def bump(self) -> int:
        self.seq += 1
        return self.seq


def graph_error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "innerError": {}}}


def parse_time(value: dict[str, str]) -> datetime:
    return datetime.strptime(value["dateTime"][:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)


def parse_iso(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def selected(query: dict[str, str]) -> list[str]:
    return [s.strip() for s in query.get("$select", "").split(",") if s.strip()]
