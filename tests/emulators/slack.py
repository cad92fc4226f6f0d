"""A local emulator of Slack's Web API, for slack_sdk's WebClient (`base_url=emulator.url`).

Each behaviour follows Slack's documentation (cited where it is implemented):
- every method answers HTTP 200 with `{"ok": true, …}` or `{"ok": false, "error": …}`
  (https://docs.slack.dev/apis/web-api/, Evaluating responses), the token as a Bearer
  header or a `token` argument;
- cursor pagination: `limit` and `cursor` in, `response_metadata.next_cursor` out, "" on the
  last page (https://docs.slack.dev/apis/web-api/pagination);
- rate limits per method (its tier) per window: HTTP 429 `ratelimited` with `Retry-After`
  (https://docs.slack.dev/apis/web-api/rate-limits);
- revoked tokens: `invalid_auth`, `token_revoked`, `account_inactive`;
- conversations.list with `types`; conversations.history with `oldest`/`latest`/`inclusive`,
  newest first, `has_more`, replies left out but their parent and thread broadcasts kept;
  conversations.replies (parent first, then replies oldest first); conversations.members;
  users.info / users.lookupByEmail (the e-mail only with users:read.email, an external
  person's only when their organization shows it); auth.test; oauth.v2.access.

State is in memory behind one lock; `latency` slows every request; `calls` counts requests by
method; `limited` counts 429s.
"""

from __future__ import annotations

import base64
import json
import math
import secrets
import threading
import time
from collections import Counter, defaultdict, deque
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

TEAM = "T0ACME"
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
# the tier of each method, from its reference page (https://docs.slack.dev/reference/methods)
TIER = {
    "auth.test": 4,
    "conversations.list": 2,
    "conversations.history": 3,
    "conversations.replies": 3,
    "conversations.members": 4,
    "users.info": 4,
    "users.lookupByEmail": 3,
    "oauth.v2.access": 4,
}
PER_MINUTE = {1: 1, 2: 20, 3: 50, 4: 100}
# which scope reads which kind of conversation (conversations.history, Required scopes)
HISTORY_SCOPE = {"public": "channels:history", "private": "groups:history", "im": "im:history"}
HISTORY_SCOPE["mpim"] = "mpim:history"


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


def _ts(value: object, default: Decimal) -> Decimal:
    try:
        return Decimal(str(value)) if value not in (None, "") else default
    except ArithmeticError:
        return default


class SlackEmulator:
    def __init__(self, *, latency: float = 0.0, window_seconds: float = 60.0) -> None:
        self.latency = latency
        self.window_seconds = window_seconds
        self.per_window = dict(PER_MINUTE)
        self.users: dict[str, User] = {}
        self.channels: dict[str, Channel] = {}
        self.tokens: dict[str, Token] = {}
        self.codes: dict[str, dict[str, Any]] = {}
        self.lock = threading.RLock()
        self.calls: Counter[str] = Counter()
        self.limited: Counter[str] = Counter()
        # method -> [Retry-After, calls answered before it] to answer on demand
        self.forced: dict[str, list[list[float]]] = defaultdict(list)
        self._recent: dict[tuple[str, str], deque[float]] = defaultdict(deque)
        self.bot = self.add_user("UBOT", None, is_bot=True)
        self.bot_token = self.add_token("UBOT")
        self._server: ThreadingHTTPServer | None = None

    # --- data -----------------------------------------------------------------------------

    def add_user(self, user_id: str, email: str | None, **kwargs: Any) -> User:
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

    def force_ratelimit(
        self, method: str, retry_after: float, times: int = 1, *, after: int = 0
    ) -> None:
        """Answer `method` 429 with this Retry-After `times` times, `after` calls from now."""
        self.forced[method].append([retry_after, after])
        self.forced[method].extend([retry_after, 0] for _ in range(times - 1))

    # --- lifecycle ------------------------------------------------------------------------

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}/api/"

    def start(self) -> SlackEmulator:
        emulator = self

        class Handler(_Handler):
            pass

        Handler.emulator = emulator
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # --- requests -------------------------------------------------------------------------

    def handle(
        self, method: str, args: dict[str, str], bearer: str | None, basic: tuple[str, str] | None
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        if self.latency:
            time.sleep(self.latency)
        with self.lock:
            self.calls[method] += 1
            if method == "oauth.v2.access":
                return 200, self._oauth(args, basic), {}
            token = self.tokens.get(args.get("token") or bearer or "")
            if token is None:
                return 200, {"ok": False, "error": "invalid_auth"}, {}
            if token.revoked:
                return 200, {"ok": False, "error": token.revoked}, {}
            wait = self._rate(method, args.get("token") or bearer or "")
            if wait is not None:  # 429 with Retry-After (rate-limits page, "Responding to…")
                self.limited[method] += 1
                body = {"ok": False, "error": "ratelimited"}
                return 429, body, {"Retry-After": str(math.ceil(wait))}
            handler = getattr(self, "m_" + method.replace(".", "_"), None)
            if handler is None:
                return 200, {"ok": False, "error": "unknown_method"}, {}
            return 200, handler(token, args), {}

    def _rate(self, method: str, token: str) -> float | None:
        forced = self.forced.get(method)
        if forced and forced[0][1] <= 0:
            return forced.pop(0)[0]
        if forced:
            forced[0][1] -= 1
        allowed = self.per_window[TIER.get(method, 3)]
        # per method per workspace per app: every token of the app shares the count
        recent = self._recent[(method, TEAM)]
        now = time.monotonic()
        while recent and recent[0] <= now - self.window_seconds:
            recent.popleft()
        if len(recent) >= allowed:
            return recent[0] + self.window_seconds - now
        recent.append(now)
        return None

    @staticmethod
    def _page(
        items: list[Any], args: dict[str, str], default: int, most: int
    ) -> tuple[list[Any], str]:
        """A page of `items` and the next cursor ("" at the end); an opaque base64 offset."""
        try:
            limit = min(max(int(args.get("limit") or default), 1), most)
            start = int(base64.b64decode(args["cursor"]).decode()[5:]) if args.get("cursor") else 0
        except (ValueError, KeyError, UnicodeDecodeError):
            raise _Refused("invalid_cursor") from None
        chunk = items[start : start + limit]
        more = start + limit < len(items)
        return chunk, base64.b64encode(f"next:{start + limit}".encode()).decode() if more else ""

    def _user_json(self, user: User, token: Token) -> dict[str, Any]:
        profile: dict[str, Any] = {"real_name": user.id, "team": user.team_id}
        if user.email and "users:read.email" in token.scopes and not user.email_hidden:
            profile["email"] = user.email
        return {
            "id": user.id,
            "team_id": user.team_id,
            "is_bot": user.is_bot,
            "is_restricted": user.guest,
            "is_ultra_restricted": False,
            "deleted": False,
            "profile": profile,
        }

    def _readable(self, token: Token, channel_id: str, scope_kind: str) -> Channel:
        channel = self.channels.get(channel_id)
        if channel is None:
            raise _Refused("channel_not_found")
        needed = (HISTORY_SCOPE if scope_kind == "history" else _READ_SCOPE)[channel.kind]
        if needed not in token.scopes:
            raise _Refused("missing_scope", needed=needed)
        if token.user not in channel.members:
            raise _Refused("not_in_channel")
        return channel

    def m_auth_test(self, token: Token, args: dict[str, str]) -> dict[str, Any]:
        return {"ok": True, "team_id": TEAM, "user_id": token.user, "team": "Acme"}

    def m_conversations_list(self, token: Token, args: dict[str, str]) -> dict[str, Any]:
        wanted = set((args.get("types") or "public_channel").split(","))
        kinds = {"public_channel": "public", "private_channel": "private", "im": "im"}
        kinds["mpim"] = "mpim"
        found = []
        for channel in self.channels.values():
            if not any(kinds.get(t) == channel.kind for t in wanted):
                continue
            member = token.user in channel.members
            if channel.kind != "public" and not member:
                continue  # private conversations only show to their members
            item: dict[str, Any] = {
                "id": channel.id,
                "name": channel.name,
                "is_channel": channel.kind == "public",
                "is_group": channel.kind == "private",
                "is_im": channel.kind == "im",
                "is_mpim": channel.kind == "mpim",
                "is_private": channel.kind != "public",
                "is_member": member,
                "is_ext_shared": channel.ext_shared,
                "is_shared": channel.ext_shared,
                "is_org_shared": False,
            }
            if channel.kind == "im":
                item["user"] = next((m for m in channel.members if m != token.user), None)
            found.append(item)
        chunk, cursor = self._page(found, args, 100, 1000)
        return {"ok": True, "channels": chunk, "response_metadata": {"next_cursor": cursor}}

    def m_conversations_members(self, token: Token, args: dict[str, str]) -> dict[str, Any]:
        channel = self._readable(token, args.get("channel", ""), "read")
        chunk, cursor = self._page(channel.members, args, 100, 1000)
        return {"ok": True, "members": chunk, "response_metadata": {"next_cursor": cursor}}

    def m_conversations_history(self, token: Token, args: dict[str, str]) -> dict[str, Any]:
        channel = self._readable(token, args.get("channel", ""), "history")
        oldest = _ts(args.get("oldest"), Decimal(0))
        latest = _ts(args.get("latest"), Decimal(10**12))
        inclusive = args.get("inclusive") in ("1", "true")
        found = [
            m
            for m in reversed(channel.messages)  # newest first
            if (m.get("thread_ts") in (None, m["ts"]) or m.get("subtype") == "thread_broadcast")
            and (
                oldest <= Decimal(m["ts"]) <= latest
                if inclusive
                else oldest < Decimal(m["ts"]) < latest
            )
        ]
        chunk, cursor = self._page(found, args, 100, 999)
        return {
            "ok": True,
            "messages": [dict(m) for m in chunk],
            "has_more": bool(cursor),
            "pin_count": 0,
            "response_metadata": {"next_cursor": cursor},
        }

    def m_conversations_replies(self, token: Token, args: dict[str, str]) -> dict[str, Any]:
        channel = self._readable(token, args.get("channel", ""), "history")
        parent = args.get("ts", "")
        thread = [m for m in channel.messages if m["ts"] == parent or m.get("thread_ts") == parent]
        if not thread:
            raise _Refused("thread_not_found")
        oldest = _ts(args.get("oldest"), Decimal(0))
        latest = _ts(args.get("latest"), Decimal(10**12))
        head, replies = thread[0], [m for m in thread[1:] if oldest < Decimal(m["ts"]) < latest]
        chunk, cursor = self._page([head, *replies], args, 100, 1000)
        return {
            "ok": True,
            "messages": [dict(m) for m in chunk],
            "has_more": bool(cursor),
            "response_metadata": {"next_cursor": cursor},
        }

    def m_users_info(self, token: Token, args: dict[str, str]) -> dict[str, Any]:
        if "users:read" not in token.scopes:
            raise _Refused("missing_scope", needed="users:read")
        user = self.users.get(args.get("user", ""))
        if user is None:
            raise _Refused("user_not_found")
        return {"ok": True, "user": self._user_json(user, token)}

    def m_users_lookupByEmail(self, token: Token, args: dict[str, str]) -> dict[str, Any]:
        if "users:read.email" not in token.scopes:
            raise _Refused("missing_scope", needed="users:read.email")
        wanted = (args.get("email") or "").lower()
        for user in self.users.values():
            if user.email and user.email.lower() == wanted and not user.email_hidden:
                return {"ok": True, "user": self._user_json(user, token)}
        raise _Refused("users_not_found")

    # oauth.v2.access: client credentials as HTTP Basic or arguments, the code once
    # (https://docs.slack.dev/reference/methods/oauth.v2.access)
    client_id = "1111.2222"
    client_secret = "slack-client-secret"

    def grant(self, installer: str, user_scopes: bool = True) -> str:
        code = secrets.token_hex(8)
        self.codes[code] = {"installer": installer, "user_scopes": user_scopes}
        return code

    def _oauth(self, args: dict[str, str], basic: tuple[str, str] | None) -> dict[str, Any]:
        client = basic or (args.get("client_id", ""), args.get("client_secret", ""))
        if client != (self.client_id, self.client_secret):
            return {"ok": False, "error": "invalid_client_id"}
        grant = self.codes.pop(args.get("code", ""), None)
        if grant is None:
            return {"ok": False, "error": "invalid_code"}
        answer: dict[str, Any] = {
            "ok": True,
            "access_token": self.bot_token,
            "token_type": "bot",
            "scope": ",".join(sorted(ALL_SCOPES)),
            "bot_user_id": "UBOT",
            "app_id": "A1",
            "team": {"id": TEAM, "name": "Acme"},
            "authed_user": {"id": grant["installer"]},
        }
        if grant["user_scopes"]:
            answer["authed_user"]["access_token"] = self.add_token(grant["installer"])
            answer["authed_user"]["token_type"] = "user"
        return answer


_READ_SCOPE = {"public": "channels:read", "private": "groups:read", "im": "im:read"}
_READ_SCOPE["mpim"] = "mpim:read"


class _Refused(Exception):
    def __init__(self, error: str, **extra: str) -> None:
        super().__init__(error)
        self.body = {"ok": False, "error": error, **extra}


class _Handler(BaseHTTPRequestHandler):
    emulator: SlackEmulator
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _serve(self) -> None:
        split = urlsplit(self.path)
        args = {k: v[0] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        if body.startswith("{"):
            args.update({k: str(v) for k, v in json.loads(body).items()})
        elif body:
            args.update({k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()})
        authorization = self.headers.get("Authorization") or ""
        bearer = authorization[7:] if authorization.startswith("Bearer ") else None
        basic = None
        if authorization.startswith("Basic "):
            user, _, password = base64.b64decode(authorization[6:]).decode().partition(":")
            basic = (user, password)
        method = split.path.rstrip("/").rsplit("/", 1)[-1]
        try:
            status, answer, headers = self.emulator.handle(method, args, bearer, basic)
        except _Refused as refused:
            status, answer, headers = 200, refused.body, {}
        data = json.dumps(answer).encode()
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()
