"""One typed HTTP client for Microsoft Graph (httpx2), shared by a mailbox's connectors.

Graph allows 4 concurrent requests and 10,000 requests per 10 minutes per app and mailbox.
The client never has more than `max_in_flight` requests open for its mailbox (a semaphore:
the mail and calendar connectors of one connection share one client); a JSON batch holds as
many places as Graph runs of its requests at once (`slots`, up to 4). A 429 or 503 with a
`Retry-After` is honoured: a short wait is slept in the run, a longer one raises
`RateLimited(retry_after)` so the runner persists it and the worker moves on. Without a
`Retry-After`, 429 and 5xx and network errors are retried with capped exponential backoff
and full jitter. A 401 gets one forced token refresh, then becomes `AuthExpired`.

Links from Graph (`@odata.nextLink`, `@odata.deltaLink`) are followed as opaque absolute URLs,
but only on the configured Graph origin: the bearer token never goes anywhere else.
"""

from __future__ import annotations

import random
import ssl
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Protocol
from urllib.parse import urlsplit

import httpx2

from connectors.base import AuthExpired, ConnectorError, Page, RateLimited

GRAPH_URL = "https://graph.microsoft.com/v1.0"


class TokenSource(Protocol):
    def token(self) -> str:
        """A valid access token (cached or silently refreshed); AuthExpired when refused."""
        ...

    def refresh(self) -> str:
        """A new access token even if the cached one looks valid (after a 401)."""
        ...

    def fresh_secret(self) -> dict[str, Any] | None:
        """The credentials changed since the last call (a serialized token cache), or None."""
        ...


class SyncStateGone(ConnectorError):
    """410 / SyncStateNotFound: Graph forgot a delta round; restart it."""


class NotFound(ConnectorError):
    """404 from Graph."""


@dataclass
class Stats:
    requests: int = 0
    throttled: int = 0  # 429 and 503 answers
    retried: int = 0
    waited: float = 0.0  # seconds slept for Retry-After and backoff
    peak_in_flight: int = 0
    in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


def _retry_after(response: httpx2.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _error_of(response: httpx2.Response) -> tuple[str, str]:
    try:
        body = response.json()
        error = body.get("error", {}) if isinstance(body, dict) else {}
        return str(error.get("code", "")), str(error.get("message", ""))[:300]
    except ValueError:
        return "", ""


class GraphClient:
    def __init__(
        self,
        auth: TokenSource,
        *,
        base_url: str = GRAPH_URL,
        verify: ssl.SSLContext | bool = True,
        timeout: float = 60.0,
        max_in_flight: int = 4,
        max_wait: float = 10.0,
        attempts: int = 5,
        backoff_base: float = 1.0,
        backoff_cap: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        transport: httpx2.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        origin = urlsplit(self.base_url)
        self._origin = (origin.scheme, origin.netloc)
        self._auth = auth
        self._verify, self._timeout, self._transport = verify, timeout, transport
        self._http: httpx2.Client | None = None
        self._open_lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(max_in_flight)
        self.max_in_flight = max_in_flight
        # one request taking several places at a time: two, each holding some and waiting
        # for the rest, would wait forever
        self._wide = threading.Lock()
        self.max_wait = max_wait
        self.attempts = attempts
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self._sleep = sleep
        self.stats = Stats()

    def close(self) -> None:
        """Close the connections; the next request opens new ones."""
        with self._open_lock:
            http, self._http = self._http, None
        if http is not None:
            http.close()

    def fresh_secret(self) -> dict[str, Any] | None:
        return self._auth.fresh_secret()

    def _connection(self) -> httpx2.Client:
        with self._open_lock:
            if self._http is None:
                self._http = httpx2.Client(
                    verify=self._verify, timeout=self._timeout, transport=self._transport
                )
            return self._http

    def url(self, path_or_url: str) -> str:
        """An absolute URL on the Graph origin: a path is joined to the base URL, an absolute
        link (nextLink, deltaLink) is checked to stay on the origin."""
        if "://" not in path_or_url:
            return f"{self.base_url}/{path_or_url.lstrip('/')}"
        parts = urlsplit(path_or_url)
        if (parts.scheme, parts.netloc) != self._origin:
            raise ConnectorError(f"Graph sent a link to another host ({parts.netloc}); refused")
        return path_or_url

    def backoff(self, attempt: int) -> float:
        """Capped exponential backoff with full jitter."""
        return random.uniform(0, min(self.backoff_cap, self.backoff_base * 2**attempt))

    def get(
        self,
        path_or_url: str,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        return self.request("GET", path_or_url, params=params, headers=headers) or {}

    def request(
        self,
        method: str,
        path_or_url: str,
        *,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        json: Mapping[str, Any] | None = None,
        slots: int = 1,
    ) -> dict[str, Any] | None:
        """One request, retried as the module says; `slots`: the places it holds in the
        mailbox's concurrency (a batch: as many of its requests as Graph runs at once)."""
        url = self.url(path_or_url)
        slots = max(1, min(slots, self.max_in_flight))
        refreshed = False
        token = self._auth.token()
        last = self.attempts - 1
        for attempt in range(self.attempts):
            sent = {**(headers or {}), "Authorization": f"Bearer {token}"}
            try:
                response = self._send(method, url, params, sent, json, slots)
            except httpx2.TransportError as error:
                if attempt == last:
                    raise ConnectorError(
                        f"Microsoft Graph could not be reached ({type(error).__name__})"
                    ) from None
                self._wait(self.backoff(attempt))
                continue
            status = response.status_code
            if status == 401:
                if refreshed:
                    code, message = _error_of(response)
                    raise AuthExpired(
                        f"Microsoft Graph refused the renewed access token ({code or 401})"
                    )
                token, refreshed = self._auth.refresh(), True
                continue
            if status in (429, 503) or status >= 500:
                code, message = _error_of(response)
                with self.stats.lock:
                    self.stats.throttled += status in (429, 503)
                wait = _retry_after(response)
                if wait is not None and (wait > self.max_wait or attempt == last):
                    raise RateLimited(
                        wait,
                        f"Microsoft Graph is throttling this mailbox ({status} {code}); "
                        f"retrying in {wait:.0f}s",
                    )
                if attempt == last:
                    raise ConnectorError(f"Microsoft Graph failed ({status} {code}): {message}")
                self._wait(wait if wait is not None else self.backoff(attempt))
                continue
            if status == 410:
                code, message = _error_of(response)
                raise SyncStateGone(f"Graph forgot the sync state ({code or 410})")
            if status == 404:
                code, message = _error_of(response)
                raise NotFound(f"Graph: not found ({code}): {message}")
            if status == 403:
                code, message = _error_of(response)
                raise AuthExpired(
                    f"Microsoft refused access to this mailbox ({code or 403}): {message}"
                )
            if status >= 400:
                code, message = _error_of(response)
                raise ConnectorError(
                    f"Microsoft Graph refused a request ({status} {code}): {message}"
                )
            if status == 204 or not response.content:
                return None
            try:
                body = response.json()
            except ValueError:
                raise ConnectorError(
                    "Microsoft Graph answered something that is not JSON"
                ) from None
            if not isinstance(body, dict):
                raise ConnectorError("Microsoft Graph answered an unexpected JSON value")
            return body
        raise ConnectorError("Microsoft Graph: out of attempts")  # pragma: no cover

    def _send(
        self,
        method: str,
        url: str,
        params: Mapping[str, str] | None,
        headers: Mapping[str, str],
        json: Mapping[str, Any] | None,
        slots: int = 1,
    ) -> httpx2.Response:
        if slots == 1:
            self._slots.acquire()
        else:
            with self._wide:
                for _ in range(slots):
                    self._slots.acquire()
        stats = self.stats
        try:
            with stats.lock:
                stats.requests += 1
                stats.in_flight += slots
                stats.peak_in_flight = max(stats.peak_in_flight, stats.in_flight)
            try:
                return self._connection().request(
                    method,
                    url,
                    params=dict(params) if params else None,
                    headers=dict(headers),
                    json=dict(json) if json is not None else None,
                )
            finally:
                with stats.lock:
                    stats.in_flight -= slots
        finally:
            for _ in range(slots):
                self._slots.release()

    def pause(self, seconds: float) -> None:
        """Wait as Graph asked (Retry-After) or as the backoff says, counted in the stats."""
        self._wait(seconds)

    def _wait(self, seconds: float) -> None:
        with self.stats.lock:
            self.stats.retried += 1
            self.stats.waited += seconds
        self._sleep(seconds)


def delta_pages(
    client: GraphClient,
    start: tuple[str, Mapping[str, str]] | str,
    headers: Mapping[str, str],
) -> Iterator[tuple[list[Any], str]]:
    """Follow a delta round: (entries, the link that resumes after them) per page, from the
    first request (`start` = (path, params)) or a stored link, until the deltaLink."""
    for items, after in _follow(client, start, headers, delta=True):
        assert after is not None
        yield items, after


def list_pages(
    client: GraphClient,
    start: tuple[str, Mapping[str, str]] | str,
    headers: Mapping[str, str],
) -> Iterator[tuple[list[Any], str | None]]:
    """Follow a plain collection (no delta): (entries, the nextLink after them, None after
    the last page) per page, from the first request or a stored nextLink."""
    return _follow(client, start, headers, delta=False)


def _follow(
    client: GraphClient,
    start: tuple[str, Mapping[str, str]] | str,
    headers: Mapping[str, str],
    *,
    delta: bool,
) -> Iterator[tuple[list[Any], str | None]]:
    """The pages of a collection, following `@odata.nextLink`; a delta round ends with an
    `@odata.deltaLink`, a plain collection with neither.

    The next page is requested while the caller stores the current one (one request ahead,
    within the client's in-flight limit): a page's network wait and its ingest overlap."""
    if isinstance(start, str):
        body = client.get(start, headers=headers)
    else:
        body = client.get(start[0], params=start[1], headers=headers)
    with ThreadPoolExecutor(1, thread_name_prefix="graph-next") as ahead:
        while True:
            items = body.get("value")
            following_link = body.get("@odata.nextLink")
            after = following_link or (body.get("@odata.deltaLink") if delta else None)
            if not isinstance(items, list) or (delta and not isinstance(after, str)):
                kind = "delta page without value or link" if delta else "page without value"
                raise ConnectorError(f"Microsoft Graph answered a {kind}")
            following = None
            if isinstance(following_link, str):
                following = ahead.submit(client.get, following_link, headers=headers)
            try:
                yield items, after if isinstance(after, str) else None
            except GeneratorExit:
                if following is not None:
                    following.cancel()
                raise
            if following is None:
                return
            body = following.result()


class GraphConnector:
    """What the mail and the calendar connector do alike with the Graph client they share:
    a cheap authenticated call to check, the client's connections closed after each pull,
    and the credentials msal renewed handed over (connectors.base.RefreshesCredentials)."""

    client: GraphClient
    # a window widened later is read only in the stretch not read yet (connectors.base)
    widens_history: ClassVar[bool] = True

    def check(self) -> None:
        self.client.get("me", params={"$select": "id"})

    def pull(
        self, cursor: str | None, *, since: datetime, history_from: datetime | None = None
    ) -> Iterator[Page]:
        try:
            yield from self._pull(cursor, since, history_from)
        finally:
            self.client.close()

    def fresh_secret(self) -> dict[str, Any] | None:
        return self.client.fresh_secret()

    def _pull(
        self, cursor: str | None, since: datetime, history_from: datetime | None
    ) -> Iterator[Page]:
        raise NotImplementedError
