"""Slack's Web API through slack_sdk's WebClient: tier pacing, errors translated at the edge.

Slack limits each method per workspace per app by tier ("Web API Tier 2: 20+ per minute,
Tier 3: 50+ per minute, Tier 4: 100+ per minute", https://docs.slack.dev/apis/web-api/rate-limits).
`Caller` spaces the calls of each tier so a sync stays inside those numbers, and still obeys
a 429: "HTTP 429 Too Many Requests … a Retry-After HTTP header containing the number of
seconds until you can retry" (same page). A short Retry-After is waited out here; a longer
one ends the run as RateLimited, and the runner comes back when Slack said.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler

from connectors.base import AuthExpired, ConnectorError, RateLimited

# "invalid_auth", "token_revoked", "account_inactive" are listed by every method's reference
# (e.g. https://docs.slack.dev/reference/methods/conversations.history, Errors); retrying them
# cannot help: the workspace must install the app again
AUTH_ERRORS = frozenset(
    {
        "invalid_auth",
        "not_authed",
        "token_revoked",
        "token_expired",
        "account_inactive",
        "no_permission",
        "missing_scope",
        "not_allowed_token_type",
        "ekm_access_denied",
        "team_access_not_granted",
        "app_uninstalled",
    }
)

# Each method's tier, from its reference page ("Rate limits" in the facts of
# https://docs.slack.dev/reference/methods/<method>)
TIERS: dict[str, int] = {
    "auth.test": 4,
    "conversations.list": 2,
    "conversations.members": 4,
    "conversations.history": 3,
    "conversations.replies": 3,
    "users.info": 4,
    "users.list": 2,
    "users.lookupByEmail": 3,
}
# 429s waited out in a row before the run ends as RateLimited (another client of the same
# app in the workspace may be spending the limit: waiting on would never end)
MAX_429S = 5
# requests per window (a minute at Slack) of each tier: the documented floor ("20+", "50+"…)
PER_WINDOW = {1: 1, 2: 20, 3: 50, 4: 100}


@dataclass(frozen=True, slots=True)
class Limits:
    """How fast a sync may call Slack: `per_window[tier]` requests every `window_seconds`,
    per method. `history_per_window` / `history_page` override conversations.history and
    .replies: Slack allows non-Marketplace apps distributed commercially 1 request a minute
    and 15 messages a page there (docs/slack.md)."""

    window_seconds: float = 60.0
    per_window: Mapping[int, int] = field(default_factory=lambda: dict(PER_WINDOW))
    history_per_window: int | None = None
    history_page: int = 200  # "We recommend no more than 200 results at a time" (pagination)
    max_wait_seconds: float = 30.0  # a longer Retry-After ends the run (RateLimited)
    # the share of each limit used: requests spaced exactly at the limit arrive bunched now
    # and then (the network's jitter) and meet a 429 they caused themselves
    share: float = 0.9

    def allowed(self, method: str) -> int:
        if self.history_per_window and method in ("conversations.history", "conversations.replies"):
            return self.history_per_window
        return self.per_window.get(TIERS.get(method, 2), 20)


class _Spacing:
    """The calls of one method, evenly spaced: at most `allowed` per window, the next one
    never earlier than window / allowed after the previous one (Slack tolerates bursts, but
    an even pace never meets a 429 it caused itself)."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.next_at = 0.0

    def wait(self, sleep: Callable[[float], None]) -> None:
        now = time.monotonic()
        start = max(now, self.next_at)
        self.next_at = start + self.interval
        if start > now:
            sleep(start - now)


class Caller:
    """One workspace's calls (the bot token's, and the installer's user token's): paced per
    method, counted, errors translated (connectors.base)."""

    def __init__(
        self,
        token: str,
        *,
        user_token: str | None = None,
        base_url: str | None = None,
        timeout: int = 30,
        limits: Limits | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.limits = limits or Limits()
        # connection resets are retried by the SDK; a 429 is ours to decide (below)
        self.clients = {
            as_user: WebClient(
                token=value,
                base_url=base_url or WebClient.BASE_URL,
                timeout=timeout,
                retry_handlers=[ConnectionErrorRetryHandler(max_retry_count=2)],
            )
            for as_user, value in ((False, token), (True, user_token))
            if value
        }
        self.sleep = sleep
        self.calls: Counter[str] = Counter()  # requests made, by method
        self.limited: Counter[str] = Counter()  # 429s met, by method
        self.waited = 0.0  # seconds spent pacing and waiting out Retry-After
        self._spacing: dict[str, _Spacing] = {}
        self._lock = threading.Lock()

    def _pace(self, method: str) -> None:
        with self._lock:
            spacing = self._spacing.get(method)
            if spacing is None:
                allowed = self.limits.allowed(method) * self.limits.share
                interval = self.limits.window_seconds / allowed
                spacing = self._spacing[method] = _Spacing(interval)
        started = time.monotonic()
        spacing.wait(self.sleep)
        self.waited += time.monotonic() - started

    def call(self, method: str, *, as_user: bool = False, **params: Any) -> dict[str, Any]:
        """The method's answer (`ok` true), called with the bot token or (`as_user`) the
        installer's user token, both as a Bearer header; raises AuthExpired, RateLimited,
        ConnectorError, or SlackError for an error the caller may handle (channel_not_found…).
        Every token of the app shares a method's limit (per workspace per app)."""
        client = self.clients[as_user]
        for attempt in range(MAX_429S + 1):
            self._pace(method)
            self.calls[method] += 1
            try:
                answer = client.api_call(
                    method, http_verb="GET" if method != "auth.test" else "POST", params=params
                )
                return dict(answer.data) if isinstance(answer.data, dict) else {}
            except SlackApiError as error:
                retry_after = self._limited(method, error)
                if retry_after is None:
                    raise _translate(method, error) from None
                if retry_after > self.limits.max_wait_seconds or attempt == MAX_429S:
                    raise RateLimited(
                        retry_after,
                        f"Slack's rate limit for {method}: retry after {retry_after:.0f}s",
                    ) from None
                self.sleep(retry_after)
                self.waited += retry_after
            except SlackClientError as error:
                raise ConnectorError(f"Slack {method} failed ({type(error).__name__})") from None
            except OSError as error:  # timeouts, refused connections (urllib)
                raise ConnectorError(
                    f"Slack could not be reached ({type(error).__name__})"
                ) from None
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _limited(self, method: str, error: SlackApiError) -> float | None:
        response = error.response
        if response.status_code != 429 and response.get("error") != "ratelimited":
            return None
        self.limited[method] += 1
        headers = {k.lower(): v for k, v in (response.headers or {}).items()}
        value = headers.get("retry-after")
        if isinstance(value, list):
            value = value[0] if value else None
        try:
            return max(float(value), 0.0) if value is not None else 1.0
        except ValueError:
            return 1.0


class SlackError(ConnectorError):
    """An error Slack answered that concerns one object (a channel gone, a user unknown)."""

    def __init__(self, method: str, code: str) -> None:
        super().__init__(f"Slack {method} answered {code}")
        self.code = code


def _translate(method: str, error: SlackApiError) -> ConnectorError:
    code = str(error.response.get("error") or "unknown_error")
    if code in AUTH_ERRORS:
        needed = error.response.get("needed")
        detail = f" (needs {needed})" if needed else ""
        return AuthExpired(f"Slack refused the token: {code}{detail}; install the app again")
    return SlackError(method, code)
