"""A local emulator of Slack's Web API, for slack_sdk's WebClient (`base_url=emulator.url`).

Split by concern: tests/emulators/slack_workspace.py holds the workspace (people,
conversations, messages, tokens) and its mutators, tests/emulators/slack_methods.py answers
each method; this module serves them over HTTP as Slack documents:
- every method answers HTTP 200 with `{"ok": true, …}` or `{"ok": false, "error": …}`
  (https://docs.slack.dev/apis/web-api/, Evaluating responses), the token as a Bearer
  header or a `token` argument;
- rate limits per method (its tier) per window: HTTP 429 `ratelimited` with `Retry-After`
  (https://docs.slack.dev/apis/web-api/rate-limits);
- revoked tokens: `invalid_auth`, `token_revoked`, `account_inactive`.

State is in memory behind one lock; `latency` slows every request; `calls` counts requests by
method; `limited` counts 429s. `team_id`/`team_name` name the workspace, so two emulators can
stand for two workspaces.
"""

from __future__ import annotations

import base64
import json
import math
import threading
import time
from collections import Counter, defaultdict, deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.emulators.slack_methods import Refused, SlackMethods
from tests.emulators.slack_workspace import (
    ALL_SCOPES,
    TEAM,
    TEAM_NAME,
    Channel,
    Token,
    User,
)

__all__ = ["ALL_SCOPES", "TEAM", "Channel", "SlackEmulator", "Token", "User"]

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


class SlackEmulator(SlackMethods):
    def __init__(
        self,
        *,
        latency: float = 0.0,
        window_seconds: float = 60.0,
        team_id: str = TEAM,
        team_name: str = TEAM_NAME,
    ) -> None:
        super().__init__(team_id=team_id, team_name=team_name)
        self.latency = latency
        self.window_seconds = window_seconds
        self.per_window = dict(PER_MINUTE)
        self.calls: Counter[str] = Counter()
        self.limited: Counter[str] = Counter()
        # method -> [Retry-After, calls answered before it] to answer on demand
        self.forced: dict[str, list[list[float]]] = defaultdict(list)
        self._recent: dict[tuple[str, str], deque[float]] = defaultdict(deque)
        self._server: ThreadingHTTPServer | None = None

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
                return 200, self.oauth_access(args, basic), {}
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
            answer: dict[str, Any] = handler(token, args)
            return 200, answer, {}

    def _rate(self, method: str, token: str) -> float | None:
        forced = self.forced.get(method)
        if forced and forced[0][1] <= 0:
            return forced.pop(0)[0]
        if forced:
            forced[0][1] -= 1
        allowed = self.per_window[TIER.get(method, 3)]
        # per method per workspace per app: every token of the app shares the count
        recent = self._recent[(method, self.team_id)]
        now = time.monotonic()
        while recent and recent[0] <= now - self.window_seconds:
            recent.popleft()
        if len(recent) >= allowed:
            return recent[0] + self.window_seconds - now
        recent.append(now)
        return None


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
        except Refused as refused:
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
