"""The Slack emulator's workspace: its people, conversations, tokens and install codes.

A test builds a workspace through the mutators here (`add_user`, `add_channel`, `post`,
`revoke`, `grant`); tests/emulators/slack_methods.py answers the Web API from it. Messages
are stored as Slack returns them: a reply carries `thread_ts`, and its parent gains
`thread_ts`, `reply_count` and `latest_reply`.
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

TEAM = "T0ACME"
TEAM_NAME = "Acme"
ALL_SCOPES = frozenset(
    [
        "channels:read",
        "groups:read",
        "im:read",
        "mpim:read",
        "channels:history",
        "groups:history",
        "im:history",
        "mpim:history",
        "users:read",
        "users:read.email",
    ]
)


@dataclass
class User:
    id: str
    email: str | None
    team_id: str = TEAM
    is_bot: bool = False
    guest: bool = False
    email_hidden: bool = False  # another organization that does not show its people's e-mail


@dataclass
class Channel:
    id: str
    name: str
    kind: str  # public, private, im, mpim
    members: list[str]
    ext_shared: bool = False
    messages: list[dict[str, Any]] = field(default_factory=list)  # every message, replies too


@dataclass
class Token:
    user: str  # the bot user or the installing user
    scopes: frozenset[str] = ALL_SCOPES
    revoked: str | None = None  # the error every call answers


class SlackWorkspace:
    """One workspace (`team_id`, `team_name`) with its bot user UBOT and the bot's token."""

    # the app's client credentials, checked by oauth.v2.access
    client_id = "1111.2222"
    client_secret = "slack-client-secret"

    def __init__(self, *, team_id: str = TEAM, team_name: str = TEAM_NAME) -> None:
        self.team_id = team_id
        self.team_name = team_name
        self.users: dict[str, User] = {}
        self.channels: dict[str, Channel] = {}
        self.tokens: dict[str, Token] = {}
        self.codes: dict[str, dict[str, Any]] = {}
        self.lock = threading.RLock()
        self.bot = self.add_user("UBOT", None, is_bot=True)
        self.bot_token = self.add_token("UBOT")

    def add_user(self, user_id: str, email: str | None, **kwargs: Any) -> User:
        """A person of this workspace unless `team_id=` names another organization."""
        kwargs.setdefault("team_id", self.team_id)
        with self.lock:
            self.users[user_id] = user = User(user_id, email, **kwargs)
            return user

    def add_token(self, user: str, scopes: frozenset[str] = ALL_SCOPES) -> str:
        token = f"xox{'b' if self.users[user].is_bot else 'p'}-{secrets.token_hex(8)}"
        self.tokens[token] = Token(user, scopes)
        return token

    def revoke(self, token: str, error: str = "token_revoked") -> None:
        self.tokens[token].revoked = error

    def add_channel(
        self, channel_id: str, kind: str, members: list[str], *, name: str = "", ext: bool = False
    ) -> Channel:
        with self.lock:
            self.channels[channel_id] = channel = Channel(channel_id, name, kind, members, ext)
            return channel

    def post(
        self,
        channel_id: str,
        user: str | None,
        ts: float,
        *,
        text: str = "hello",
        thread_ts: str | None = None,
        subtype: str | None = None,
    ) -> str:
        """A message (a reply when `thread_ts`), as Slack stores it; returns its ts."""
        stamp = f"{ts:.6f}"
        message: dict[str, Any] = {"type": "message", "ts": stamp, "text": text}
        if user is not None:
            message["user"] = user
        if subtype:
            message["subtype"] = subtype
            if subtype == "bot_message":
                message["bot_id"] = "B1"
        if thread_ts:
            message["thread_ts"] = thread_ts
        with self.lock:
            channel = self.channels[channel_id]
            # a ts is unique in its channel: it is the message's id (conversations.history)
            if any(m["ts"] == stamp for m in channel.messages):
                raise ValueError(f"{channel_id} already has a message at {stamp}")
            channel.messages.append(message)
            channel.messages.sort(key=lambda m: Decimal(m["ts"]))
            if thread_ts:
                parent = next(m for m in channel.messages if m["ts"] == thread_ts)
                parent["thread_ts"] = thread_ts
                parent["reply_count"] = parent.get("reply_count", 0) + 1
                parent["latest_reply"] = max(stamp, parent.get("latest_reply", stamp), key=Decimal)
        return stamp

    def grant(self, installer: str, user_scopes: bool = True, consent: str | None = None) -> str:
        """An install code for oauth.v2.access; `user_scopes` adds a user token to the answer.
        `consent`: the authorize URL the installer approved; its `scope` and `user_scope` are
        then exactly what the bot and user tokens may do, as Slack grants what the app asked
        for (https://docs.slack.dev/authentication/installing-with-oauth), else every scope."""
        asked = parse_qs(urlsplit(consent).query) if consent else {}
        code = secrets.token_hex(8)
        self.codes[code] = {
            "installer": installer,
            "user_scopes": user_scopes,
            "scope": _scopes(asked, "scope"),
            "user_scope": _scopes(asked, "user_scope"),
        }
        return code


def _scopes(asked: dict[str, list[str]], name: str) -> frozenset[str]:
    if not asked:
        return ALL_SCOPES
    return frozenset(s for s in ",".join(asked.get(name, [])).split(",") if s)
