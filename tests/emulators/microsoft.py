"""A local emulator of the Microsoft identity platform and of Microsoft Graph, over TLS.

msal insists on https, so the emulator serves TLS with a `trustme` test CA; the CA file is
`emulator.ca_path`. One server answers both:

- identity (microsoft_identity.py): `/{tenant}/v2.0/.well-known/openid-configuration`,
  `/{tenant}/oauth2/v2.0/authorize` (a 302 back to the redirect URI with a code, as if the
  user consented) and `/{tenant}/oauth2/v2.0/token`;
- Graph under `/v1.0`: `/me`, `/me/mailFolders/{folder}/messages/delta`, the folder's
  message list `/me/mailFolders/{folder}/messages`, `/me/messages/{id}` and `/$batch`
  (microsoft_mail.py), `/me/calendarView/delta` and `/me/events/{id}`
  (microsoft_calendar.py), `/subscriptions`. Delta rounds page with `@odata.nextLink` and end
  with `@odata.deltaLink`, both opaque absolute URLs on the emulator's own base; sync states
  can be expired (410 SyncStateNotFound, for delta links and older next links alike); 429 with
  Retry-After on demand; more than 4 requests in flight for one mailbox are refused
  (429 MailboxConcurrency); ids are immutable only with `Prefer: IdType="ImmutableId"`;
  a message moved between folders leaves one folder (`@removed`) and enters the other; an
  access token only reads what its scopes allow (403 ErrorAccessDenied).

State is in memory, behind one lock; every Graph request may be slowed by `latency` seconds
(a JSON batch too, once: its requests run in parallel). `calls` counts Graph requests by
kind ("mail-delta", "mail-list", "calendar-delta", "event", "message", "batch"…);
`inner_requests` the requests inside batches; `served` how many times each subject went out
in a page of a delta round or a message list (removals and occurrence stubs have none).
"""

from __future__ import annotations

import secrets
import ssl
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterable
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import trustme

from tests.emulators.microsoft_calendar import CalendarSide, refused_calendar_options
from tests.emulators.microsoft_common import (
    CALENDARS_READ,
    FOLDER_IDS,
    MAIL_READ,
    MAIL_READ_BASIC,
    MAX_IN_FLIGHT,
    Answer,
    DeltaToken,
    Item,
    Round,
    User,
    graph_error,
    graph_time,
    iso,
)
from tests.emulators.microsoft_http import GraphHandler
from tests.emulators.microsoft_identity import IdentitySide
from tests.emulators.microsoft_mail import MailSide, batch_size
from tests.emulators.microsoft_push import SubscriptionSide

__all__ = ["Item", "MicrosoftEmulator", "User", "graph_time", "iso"]

_DENIED = graph_error("ErrorAccessDenied", "Access is denied. Check credentials and try again.")


class MicrosoftEmulator(IdentitySide, MailSide, CalendarSide, SubscriptionSide):
    def __init__(
        self,
        *,
        tenant: str = "tenant-1",
        client_id: str = "client-1",
        client_secret: str = "client-secret",
        latency: float = 0.0,
        max_page_size: int = 1000,
        access_token_seconds: int = 3600,
        split_series: bool = False,
    ) -> None:
        IdentitySide.__init__(self)
        self.tenant = tenant
        self.client_id = client_id
        self.client_secret = client_secret
        self.latency = latency
        self.max_page_size = max_page_size
        self.access_token_seconds = access_token_seconds
        # pages cut at odata.maxpagesize even inside a series: Graph documents the page size
        # (https://learn.microsoft.com/graph/delta-query-events), not that a series stays
        # whole, which was only seen by experiment (microsoftgraph/microsoft-graph-docs#4501)
        self.split_series = split_series
        self.users: dict[str, User] = {}
        self.lock = threading.RLock()
        self.rounds: dict[str, tuple[Round, int]] = {}  # next link token -> round, position
        self.deltas: dict[str, DeltaToken] = {}
        self.subscriptions: dict[str, dict[str, Any]] = {}
        self.graph_requests = 0
        self.inner_requests = 0
        self.calls: Counter[str] = Counter()
        self.served: Counter[str] = Counter()
        self._ca = trustme.CA()
        self._dir = tempfile.TemporaryDirectory(prefix="ms-emulator-")
        self.ca_path = Path(self._dir.name) / "ca.pem"
        self._ca.cert_pem.write_to_path(str(self.ca_path))
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> MicrosoftEmulator:
        cert = self._ca.issue_cert("127.0.0.1", "localhost")
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(context)
        emulator = self

        class Handler(GraphHandler):
            pass

        Handler.emulator = emulator
        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        server.socket = context.wrap_socket(server.socket, server_side=True)
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        self._dir.cleanup()

    @property
    def port(self) -> int:
        assert self._server is not None
        return int(self._server.server_address[1])

    @property
    def base(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def authority(self) -> str:
        return f"{self.base}/{self.tenant}"

    @property
    def graph(self) -> str:
        return f"{self.base}/v1.0"

    def ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        self._ca.configure_trust(context)
        return context

    # --- the test's side: mailboxes ---------------------------------------------------------

    def add_user(self, email: str, *, name: str = "", aliases: Iterable[str] = ()) -> User:
        with self.lock:
            user = User(
                email=email.lower(),
                name=name or email.split("@")[0].title(),
                oid=secrets.token_hex(8),
                aliases=tuple(aliases),
            )
            self.users[user.email] = user
            return user

    def user(self, email: str) -> User:
        return self.users[email.lower()]

    def delete(self, email: str, item_id: str) -> None:
        with self.lock:
            user = self.user(email)
            item = user.items[item_id]
            if item.container == "calendar":
                self.delete_event(user, item)
                return
            del user.items[item_id]
            user.departures.append((user.bump(), item.container, item_id))

    def update(self, email: str, item_id: str, **changes: Any) -> None:
        with self.lock:
            user = self.user(email)
            item = user.items[item_id]
            if item.container == "calendar":
                self.update_event(email, item_id, **changes)
                return
            item.data.update(changes)
            item.data["changeKey"] = secrets.token_hex(4)
            item.seq = user.bump()

    # --- the test's side: failures ----------------------------------------------------------

    def expire_sync_states(self, email: str) -> None:
        """Evict the mailbox's sync states: its delta and next links now answer 410."""
        with self.lock:
            self.user(email).generation += 1

    def throttle(self, email: str, *retry_after: float) -> None:
        """The next Graph requests of the mailbox get 429 with these Retry-After values."""
        with self.lock:
            self.user(email).throttled.extend(retry_after)

    def throttle_after(self, email: str, requests: int, retry_after: float) -> None:
        """Refuse the mailbox's Graph request after the next `requests` ones with a 429."""
        with self.lock:
            user = self.user(email)
            user.throttle_at = (len(user.requests) + requests + 1, retry_after)

    def budget_used(self, email: str, *, window: float = 600.0) -> float:
        """Share of the 10,000 requests / 10 minutes per mailbox used in the last `window`
        (a batch's requests count one by one)."""
        now = time.monotonic()
        with self.lock:
            recent = [t for t in self.user(email).requests if now - t <= window]
        return len(recent) / 10_000

    # --- the server's side: Graph -----------------------------------------------------------

    def graph_request(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: bytes
    ) -> Answer:
        token = headers.get("authorization", "").removeprefix("Bearer ").strip()
        with self.lock:
            self.graph_requests += 1
            email = self.access_tokens.get(token)
            if email is None:
                return (
                    401,
                    {},
                    graph_error(
                        "InvalidAuthenticationToken",
                        "Access token has expired or is not yet valid.",
                    ),
                )
            scopes = self.token_scopes.get(token, frozenset())
            user = self.users[email]
            user.requests.append(time.monotonic())
            if user.in_flight >= MAX_IN_FLIGHT:
                user.refused += 1
                return (
                    429,
                    {"Retry-After": "1"},
                    graph_error(
                        "ApplicationThrottled",
                        "Application is over its MailboxConcurrency limit.",
                    ),
                )
            if user.throttle_at is not None and len(user.requests) >= user.throttle_at[0]:
                user.throttled.append(user.throttle_at[1])
                user.throttle_at = None
            if user.throttled:
                wait = user.throttled.pop(0)
                return (
                    429,
                    {"Retry-After": f"{wait:g}"},
                    graph_error("TooManyRequests", "Too many requests; retry later."),
                )
            # a batch runs up to 4 of its requests at once: it holds that much of the
            # mailbox's concurrency, or what is left of it
            slots = 1
            if method == "POST" and path == "/v1.0/$batch":
                slots = min(batch_size(body), MAX_IN_FLIGHT - user.in_flight)
            user.in_flight += slots
            user.max_in_flight = max(user.max_in_flight, user.in_flight)
        try:
            if self.latency:
                time.sleep(self.latency)
            with self.lock:
                if method == "POST" and path == "/v1.0/$batch":
                    self.calls["batch"] += 1
                    return self.batch(user, body, slots, scopes)
                return self.route(user, method, path, query, headers, body, scopes)
        finally:
            with self.lock:
                user.in_flight -= slots

    def route(
        self,
        user: User,
        method: str,
        path: str,
        query: dict[str, str],
        headers: dict[str, str],
        body: bytes,
        scopes: frozenset[str],
    ) -> Answer:
        prefer = headers.get("prefer", "")
        mail = bool(scopes & {MAIL_READ, MAIL_READ_BASIC})
        if method == "GET" and path == "/v1.0/me":
            self.calls["me"] += 1
            return 200, {}, self._me(user)
        if method == "GET" and path.startswith("/v1.0/me/mailFolders/"):
            folder = path.split("/")[4]
            listing = path == f"/v1.0/me/mailFolders/{folder}/messages"
            self.calls["mail-list" if listing else "mail-delta"] += 1
            if not mail:
                return 403, {}, _DENIED
            if path.endswith("/messages/delta") and folder in FOLDER_IDS:
                return self._delta(user, path, query, prefer, "folder", folder, scopes)
            if listing and folder in FOLDER_IDS:
                url = f"{self.base}{path}"
                return self.list_messages(user, folder, url, query, prefer, scopes)
            return 404, {}, graph_error("ErrorFolderNotFound", "The folder was not found.")
        if method == "GET" and path.startswith("/v1.0/me/messages/"):
            self.calls["message"] += 1
            if not mail:
                return 403, {}, _DENIED
            return self.get_message(user, path.split("/")[4], query, prefer, scopes)
        if method == "GET" and path == "/v1.0/me/calendarView/delta":
            self.calls["calendar-delta"] += 1
            if CALENDARS_READ not in scopes:
                return 403, {}, _DENIED
            return self._delta(user, path, query, prefer, "calendar", "calendar", scopes)
        if method == "GET" and path.startswith("/v1.0/me/events/"):
            self.calls["event"] += 1
            if CALENDARS_READ not in scopes:
                return 403, {}, _DENIED
            return self.get_event(user, path.split("/")[4], query)
        if path.startswith("/v1.0/subscriptions"):
            self.calls["subscriptions"] += 1
            return self.subscription(user, method, path, body)
        return 404, {}, graph_error("ResourceNotFound", f"no route {method} {path}")

    def _me(self, user: User) -> dict[str, Any]:
        return {
            "id": user.oid,
            "displayName": user.name,
            "mail": user.email,
            "userPrincipalName": user.email,
            "proxyAddresses": [f"SMTP:{user.email}", *(f"smtp:{a}" for a in user.aliases)],
        }

    def _delta(
        self,
        user: User,
        path: str,
        query: dict[str, str],
        prefer: str,
        kind: str,
        container: str,
        scopes: frozenset[str],
    ) -> Answer:
        size = 10
        for part in prefer.split(","):
            name, _, value = part.strip().partition("=")
            if name.strip() == "odata.maxpagesize":
                size = max(1, min(int(value), self.max_page_size))
        immutable = 'IdType="ImmutableId"' in prefer
        lost = "The sync state generation is not found."
        gone = (410, {}, graph_error("SyncStateNotFound", lost))
        if "$skiptoken" in query:
            found = self.rounds.get(query["$skiptoken"])
            if found is None or found[0].generation != user.generation:
                return gone
            state, position = found
        else:
            if "$deltatoken" in query:
                token = self.deltas.get(query["$deltatoken"])
                if token is None or token.generation != user.generation:
                    return gone
                options, since = token.query, token.seq
            else:
                options, since = dict(query), -1
                refused = refused_calendar_options(options) if kind == "calendar" else None
                if refused:
                    return 400, {}, graph_error("ErrorInvalidParameter", refused)
            if kind == "calendar":
                units = self.calendar_units(user, options, since, immutable)
            else:
                units = self.mail_units(user, container, options, since, immutable, scopes)
            if self.split_series:
                units = [[entry] for unit in units for entry in unit]
            state = Round(user.email, user.generation, path, units, user.seq, options)
            position = 0
        page: list[dict[str, Any]] = []
        while position < len(state.units) and (
            not page or len(page) + len(state.units[position]) <= size
        ):
            page += state.units[position]
            position += 1
        self.count_served(page)
        answer: dict[str, Any] = {"value": page}
        url = f"{self.base}{state.path}"
        if position < len(state.units):  # a next link stays good until the state is evicted
            skip = secrets.token_urlsafe(16)
            self.rounds[skip] = (state, position)
            answer["@odata.nextLink"] = f"{url}?{urlencode({'$skiptoken': skip})}"
        else:
            delta = secrets.token_urlsafe(16)
            self.deltas[delta] = DeltaToken(
                user.email, user.generation, state.path, state.base, state.query
            )
            answer["@odata.deltaLink"] = f"{url}?{urlencode({'$deltatoken': delta})}"
        return 200, {}, answer
