"""What the Google connectors share: endpoints, credentials, services, calls (errors.py: errors).

Services are built from the discovery documents bundled with google-api-python-client, with
`rootUrl` rewritten when `Endpoints.api_url` is set: `api_endpoint` alone would leave batch
requests pointed at Google (testing.md §4), and a test must never reach Google.

Every call goes through `Caller.call`/`Caller.batch`, which books the method's quota units with
the pacer first, holds an in-flight slot, waits out the time a rate limit names (Retry-After,
or the "Retry after <RFC 3339>" Gmail writes in its message) of up to `quota.max_wait_seconds`
and retries, and translates whatever remains into the contract's errors: invalid_grant and
401 -> AuthExpired, rate limits -> RateLimited, the rest -> ConnectorError (HttpError keeps
its status in `GoogleError.status`). Requests the libraries send again by themselves (after
a 401) are booked as they leave, by the transport under them (`_PacedTransport`).
"""

from __future__ import annotations

import base64
import copy
import importlib.resources
import json
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import google_auth_httplib2
import httplib2
from google.oauth2.credentials import Credentials
from googleapiclient.discovery import build_from_document
from googleapiclient.errors import HttpError

from connectors.base import ConnectorError, RateLimited
from connectors.google.errors import is_rate_limit, retry_after, translate
from connectors.google.pacing import Pacer


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


def authorized_http(
    creds: Credentials, timeout: float, transport: Any = None
) -> google_auth_httplib2.AuthorizedHttp:
    return google_auth_httplib2.AuthorizedHttp(
        creds, http=transport or httplib2.Http(timeout=timeout)
    )


def build(name: str, creds: Credentials, endpoints: Endpoints, timeout: float) -> Any:
    return build_from_document(
        discovery(name, endpoints.api_url), http=authorized_http(creds, timeout)
    )


@dataclass(slots=True)
class _Sending:
    """The call a thread is making: `unit` quota units a request (each part, for a batch)."""

    unit: int
    batch: bool
    booked: bool = True  # the Caller booked the first request; any further one books itself


def _parts(body: Any) -> int:
    """Requests in a batch body (google-api-python-client gives each part a Content-ID)."""
    return max(body.count("\nContent-ID: "), 1) if isinstance(body, str) else 1


class _PacedTransport:
    """The httplib2.Http under a Caller's AuthorizedHttp: every API request leaves through it.
    google-api-python-client sends a batch's 401 parts again inside BatchHttpRequest.execute
    after refreshing the token, and AuthorizedHttp resends a request after a 401: those went
    out around the pacer (unbooked, ignoring a Retry-After block), which is how a run with
    401s met a burst of 150 429s. Here they are booked when they leave, like any request."""

    def __init__(self, caller: Caller, timeout: float) -> None:
        self._caller = caller
        self._http = httplib2.Http(timeout=timeout)

    def request(
        self, uri: str, method: str = "GET", body: Any = None, headers: Any = None, **kwargs: Any
    ) -> Any:
        self._caller.leaving(uri, body)
        return self._http.request(uri, method, body=body, headers=headers, **kwargs)

    def __getattr__(self, name: str) -> Any:  # timeout, connections, follow_redirects…
        return getattr(self._http, name)


class Caller:
    """Paced, retried calls on behalf of one account."""

    def __init__(self, creds: Credentials, pacer: Pacer, timeout: float) -> None:
        self.creds, self.pacer, self.timeout = creds, pacer, timeout
        self._local = threading.local()
        self.requests = 0  # HTTP requests made (a batch counts once), resends included
        self.resent = 0  # of which the client libraries sent again on their own (after a 401)
        self.rate_limited = 0  # 429 / rateLimitExceeded answers received

    def http(self) -> google_auth_httplib2.AuthorizedHttp:
        """This thread's transport: httplib2 is not thread-safe."""
        http = getattr(self._local, "http", None)
        if http is None:
            transport = _PacedTransport(self, self.timeout)
            http = self._local.http = authorized_http(self.creds, self.timeout, transport)
        return http

    @contextmanager
    def _sending(self, unit: int, *, batch: bool) -> Iterator[None]:
        self._local.sending = _Sending(unit, batch)
        try:
            yield
        finally:
            self._local.sending = None

    def leaving(self, uri: str, body: Any) -> None:
        """A request leaves this thread's transport: the first of a call was booked by the
        Caller, a resend is booked now (waiting for room and for any Retry-After)."""
        sending: _Sending | None = getattr(self._local, "sending", None)
        if sending is None or uri == self.creds.token_uri:  # token refreshes are not quota
            return
        if sending.booked:
            sending.booked = False
        else:
            self.pacer.acquire(sending.unit * (_parts(body) if sending.batch else 1))
            self.resent += 1
        self.requests += 1

    @staticmethod
    def _limit_delay(error: HttpError, rounds: int) -> float:
        """The wait a rate-limit answer names; at least 0.1 s, doubled each further refusal
        of the same call, so a clock ahead of Google's (a named time already past) cannot
        spin."""
        return max(retry_after(error, 5.0), 0.1 * 2.0**rounds)

    def _wait(self, seconds: float, waited: float, what: str, *, refused: bool = True) -> float:
        """Hold the account's requests `seconds` (`refused`: the quota refused them)."""
        if waited + seconds > self.pacer.quota.max_wait_seconds:
            raise RateLimited(max(seconds, 1.0), f"Google rate limit on {what}: retry later")
        if refused:
            self.pacer.refused(seconds)
        else:
            self.pacer.block(seconds)
        return waited + seconds

    def call(self, method: str, request: Any, *, what: str | None = None) -> Any:
        """Execute one request (method: its quota name)."""
        what = what or method
        waited = 0.0
        attempts = limits = 0
        while True:
            try:
                with self.pacer.in_flight():  # booked when it leaves, not before a queue
                    self.pacer.spend(method)
                    with self._sending(self.pacer.quota.cost(method), batch=False):
                        return request.execute(http=self.http())
            except HttpError as error:
                if is_rate_limit(error):
                    self.rate_limited += 1
                    self.pacer.refund(self.pacer.quota.cost(method))
                    waited = self._wait(self._limit_delay(error, limits), waited, what)
                    limits += 1
                    continue
                if error.resp.status >= 500 and attempts < 2:
                    attempts += 1
                    waited = self._wait(2.0**attempts, waited, what, refused=False)
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
        waited, attempts, limits = 0.0, 0, 0
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
                    with self._sending(unit, batch=True):
                        batch.execute(http=self.http())
            except HttpError as error:
                if is_rate_limit(error):
                    self.rate_limited += 1
                    self.pacer.refund(unit * count)
                    waited = self._wait(self._limit_delay(error, limits), waited, what)
                    limits += 1
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
                if first is not None:
                    delay = self._limit_delay(first, limits)
                    limits += 1
                else:
                    delay = 2.0**attempts
                waited = self._wait(delay, waited, what, refused=first is not None)
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
