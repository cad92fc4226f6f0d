"""What the Google connectors share: endpoints, credentials, services, calls, errors.

Services are built from the discovery documents bundled with google-api-python-client, with
`rootUrl` rewritten when `Endpoints.api_url` is set: `api_endpoint` alone would leave batch
requests pointed at Google (testing.md §4), and a test must never reach Google.

Every call goes through `Caller.call`/`Caller.batch`, which books the method's quota units with
the pacer first, holds an in-flight slot, waits out a Retry-After of up to
`quota.max_wait_seconds` and retries, and translates whatever remains into the contract's
errors: invalid_grant and 401 -> AuthExpired, rate limits -> RateLimited, the rest ->
ConnectorError (HttpError keeps its status in `GoogleError.status`).
"""

from __future__ import annotations

import base64
import copy
import importlib.resources
import json
import socket
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import lru_cache
from typing import Any

import google_auth_httplib2
import httplib2
from google.auth.exceptions import RefreshError, TransportError
from google.oauth2.credentials import Credentials
from googleapiclient.discovery import build_from_document
from googleapiclient.errors import HttpError

from connectors.base import AuthExpired, ConnectorError, RateLimited
from connectors.google.pacing import Pacer

REVOKED = "Google access was revoked or expired: reconnect"
RATE_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded", "quotaExceeded"})


@dataclass(frozen=True, slots=True)
class Endpoints:
    api_url: str | None = None  # rootUrl of Gmail and Calendar; None: Google's own
    token_uri: str = "https://oauth2.googleapis.com/token"
    auth_uri: str = "https://accounts.google.com/o/oauth2/auth"


@dataclass(frozen=True, slots=True)
class App:
    """The OAuth client registered in Google Cloud console."""

    client_id: str
    client_secret: str

    def __repr__(self) -> str:  # never show the secret
        return f"App({self.client_id!r})"


class GoogleError(ConnectorError):
    def __init__(self, message: str, status: int = 0, reason: str = "") -> None:
        super().__init__(message)
        self.status, self.reason = status, reason


@lru_cache(maxsize=4)
def _bundled(name: str) -> str:
    files = importlib.resources.files("googleapiclient.discovery_cache")
    return files.joinpath(f"documents/{name}.json").read_text(encoding="utf-8")


def discovery(name: str, api_url: str | None) -> dict[str, Any]:
    document: dict[str, Any] = copy.deepcopy(json.loads(_bundled(name)))
    if api_url:
        document["rootUrl"] = api_url.rstrip("/") + "/"
    return document


def credentials(refresh_token: str, app: App, endpoints: Endpoints) -> Credentials:
    """Credentials that refresh on first use (no access token is stored)."""
    return Credentials(
        token=None,
        refresh_token=refresh_token,
        token_uri=endpoints.token_uri,
        client_id=app.client_id,
        client_secret=app.client_secret,
    )


def authorized_http(creds: Credentials, timeout: float) -> google_auth_httplib2.AuthorizedHttp:
    return google_auth_httplib2.AuthorizedHttp(creds, http=httplib2.Http(timeout=timeout))


def build(name: str, creds: Credentials, endpoints: Endpoints, timeout: float) -> Any:
    return build_from_document(
        discovery(name, endpoints.api_url), http=authorized_http(creds, timeout)
    )


def _error_body(error: HttpError) -> tuple[str, str]:
    """(reason, message) of a Google error body."""
    try:
        body = json.loads(error.content.decode("utf-8", "replace"))
    except (ValueError, AttributeError):
        return "", ""
    inner = body.get("error") if isinstance(body, dict) else None
    if isinstance(inner, str):  # the token endpoint: {"error": "invalid_grant", ...}
        return inner, str(body.get("error_description", ""))
    if not isinstance(inner, dict):
        return "", ""
    reasons = [e.get("reason", "") for e in inner.get("errors", []) if isinstance(e, dict)]
    return (reasons[0] if reasons else str(inner.get("status", ""))), str(inner.get("message", ""))


def retry_after(headers: Mapping[str, str] | None, default: float = 60.0) -> float:
    value = (headers or {}).get("retry-after", "")
    if not value:
        return default
    try:
        return max(float(value), 0.0)
    except ValueError:
        try:
            moment = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return default
        return max((moment - datetime.now(UTC)).total_seconds(), 0.0)


def is_rate_limit(error: HttpError) -> bool:
    status = error.resp.status
    reason, _ = _error_body(error)
    return status == 429 or (status == 403 and reason in RATE_REASONS)


def translate(error: BaseException, what: str) -> ConnectorError:
    """An exception of the Google libraries as one of the contract's errors."""
    if isinstance(error, ConnectorError):
        return error
    if isinstance(error, RefreshError):
        text = str(error)
        if "invalid_grant" in text or "invalid_client" in text or "unauthorized" in text:
            return AuthExpired(REVOKED)
        return ConnectorError(f"Google did not refresh the access token ({what})")
    if isinstance(error, HttpError):
        status = error.resp.status
        reason, message = _error_body(error)
        if status == 401:
            return AuthExpired(REVOKED)
        if is_rate_limit(error):
            return RateLimited(retry_after(error.resp), f"Google rate limit on {what} ({reason})")
        if status == 403 and reason in (
            "insufficientPermissions",
            "forbidden",
            "PERMISSION_DENIED",
        ):
            return AuthExpired(f"Google refused {what}: the consent lacks a permission; reconnect")
        detail = f": {message}" if message else ""
        return GoogleError(f"Google answered {status} to {what}{detail}", status, reason)
    if isinstance(error, TransportError | httplib2.HttpLib2Error | OSError | socket.timeout):
        return ConnectorError(f"Google could not be reached ({what}): {type(error).__name__}")
    return ConnectorError(f"Google call failed ({what}): {type(error).__name__}")


class Caller:
    """Paced, retried calls on behalf of one account."""

    def __init__(self, creds: Credentials, pacer: Pacer, timeout: float) -> None:
        self.creds, self.pacer, self.timeout = creds, pacer, timeout
        self._local = threading.local()
        self.requests = 0  # HTTP requests made (a batch counts once)
        self.rate_limited = 0  # 429 / rateLimitExceeded answers received

    def http(self) -> google_auth_httplib2.AuthorizedHttp:
        """This thread's transport: httplib2 is not thread-safe."""
        http = getattr(self._local, "http", None)
        if http is None:
            http = self._local.http = authorized_http(self.creds, self.timeout)
        return http

    def _wait(self, seconds: float, waited: float, what: str) -> float:
        if waited + seconds > self.pacer.quota.max_wait_seconds:
            raise RateLimited(max(seconds, 1.0), f"Google rate limit on {what}: retry later")
        self.pacer.block(seconds)
        return waited + seconds

    def call(self, method: str, request: Any, *, what: str | None = None) -> Any:
        """Execute one request (method: its quota name)."""
        what = what or method
        waited = 0.0
        attempts = 0
        while True:
            try:
                with self.pacer.in_flight():  # booked when it leaves, not before a queue
                    self.pacer.spend(method)
                    self.requests += 1
                    return request.execute(http=self.http())
            except HttpError as error:
                if is_rate_limit(error):
                    self.rate_limited += 1
                    self.pacer.refund(self.pacer.quota.cost(method))
                    waited = self._wait(retry_after(error.resp, 5.0), waited, what)
                    continue
                if error.resp.status >= 500 and attempts < 2:
                    attempts += 1
                    waited = self._wait(2.0**attempts, waited, what)
                    continue
                raise translate(error, what) from error
            except Exception as error:
                raise translate(error, what) from error

    def batch(
        self,
        service: Any,
        method: str,
        requests: Sequence[tuple[str, Any]],
        *,
        what: str,
        tolerate: Callable[[HttpError], bool] = lambda _e: False,
    ) -> dict[str, Any]:
        """Execute (key, request) pairs in batch requests; answers by key. When the quota has
        room for only part of them now, that part goes at once (a smaller batch rather than a
        wait). Parts that hit the rate limit or a 5xx are sent again (only those); parts
        `tolerate` accepts are left out."""
        queue = dict(requests)
        answers: dict[str, Any] = {}
        unit = self.pacer.quota.cost(method)
        waited, attempts = 0.0, 0
        while queue:
            failed: dict[str, HttpError] = {}

            def done(
                key: str,
                response: Any,
                error: Exception | None,
                failed: dict[str, HttpError] = failed,
            ) -> None:
                if error is None:
                    answers[key] = response
                elif isinstance(error, HttpError):
                    failed[key] = error
                else:
                    raise translate(error, what)

            try:
                # the slot first, then the quota: units are booked when the request leaves
                with self.pacer.in_flight():
                    count = self.pacer.acquire_up_to(unit, len(queue), minimum=min(len(queue), 25))
                    chunk = dict(list(queue.items())[:count])
                    batch = service.new_batch_http_request(callback=done)
                    for key, request in chunk.items():
                        batch.add(request, request_id=key)
                    self.requests += 1
                    batch.execute(http=self.http())
            except HttpError as error:
                if is_rate_limit(error):
                    self.rate_limited += 1
                    self.pacer.refund(unit * count)
                    waited = self._wait(retry_after(error.resp, 5.0), waited, what)
                    continue
                raise translate(error, what) from error
            except ConnectorError:
                raise
            except Exception as error:
                raise translate(error, what) from error
            for key in chunk:
                if key not in failed:
                    del queue[key]
            limited = {k: e for k, e in failed.items() if is_rate_limit(e)}
            if limited:
                self.rate_limited += 1
                self.pacer.refund(unit * len(limited))
            retrying = False
            for key, part_error in failed.items():
                if key in limited or (part_error.resp.status >= 500 and attempts < 2):
                    retrying = True
                elif tolerate(part_error):
                    del queue[key]
                else:
                    raise translate(part_error, what) from part_error
            if retrying:
                attempts += 1
                first = next(iter(limited.values()), None)
                delay = retry_after(first.resp, 5.0) if first is not None else 2.0**attempts
                waited = self._wait(delay, waited, what)
        return answers


def id_token_claims(id_token: str) -> dict[str, Any]:
    """The claims of an ID token received straight from Google's token endpoint over TLS
    (OpenID Connect Core §3.1.3.7 allows trusting TLS instead of checking the signature)."""
    try:
        payload = id_token.split(".")[1]
        payload += "=" * (-len(payload) % 4)
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (IndexError, ValueError) as error:
        raise ConnectorError("Google sent an unreadable ID token") from error
    if not isinstance(claims, dict):
        raise ConnectorError("Google sent an unreadable ID token")
    return claims
