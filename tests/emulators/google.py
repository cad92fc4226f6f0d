"""A local emulator of the Google APIs Tally uses: OAuth, Gmail, Calendar.

A ThreadingHTTPServer on 127.0.0.1:0, spoken to by the real google-api-python-client,
google-auth and google-auth-oauthlib (the connectors point their `Endpoints` at `url`). It
behaves like Google where Tally depends on it:

- OAuth: `/o/oauth2/auth` consents at once for the `login_hint` account (or `consenting`) and
  redirects with `code` and `state`; `/token` checks the PKCE verifier (S256), issues an
  access token (1 h), a refresh token and an unsigned ID token, refreshes, and answers
  `invalid_grant` for a revoked or unknown refresh token. Access tokens die with their grant,
  or earlier (`expire_access`): a request with one gets 401 authError, a batch part too.
  `include_granted_scopes=true` makes the new grant cover every scope granted before.
- Gmail (google_gmail.py): getProfile, messages.list, messages.get (format=full with the MIME
  tree, format=metadata with metadataHeaders, `fields` partial responses), history.list,
  settings.sendAs.list, watch / stop; gmail.metadata's limits whenever it is granted.
- Calendar (google_calendar.py): events.list with singleEvents, sync tokens, events.watch,
  channels.stop.
- Batch: POST /batch, /batch/gmail/v1 and /batch/calendar/v3, multipart/mixed in and out,
  each part answered (authenticated and priced) on its own.
- Quota: per user and API, a sliding window of `window` seconds holding at most `units`
  units at Google's method costs; a request over it is refused (and not charged). Gmail
  answers 429 without a Retry-After header, the time being in the error message, and refuses
  everything until then; Calendar answers 429 with Retry-After. `stats` counts HTTP requests,
  calls, units, 429s, 401s and the body data sent.
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import hashlib
import itertools
import json
import math
import secrets
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlencode, urlsplit

from connectors.google.pacing import CALENDAR_COSTS, GMAIL_COSTS
from tests.emulators.google_calendar import calendar_api
from tests.emulators.google_common import (
    CALENDAR_EVENTS,
    GMAIL_METADATA,
    GMAIL_READONLY,
    GMAIL_SETTINGS,
    IDENTITY,
    Answer,
    Grant,
    Mailbox,
    Message,
    google_error,
    rfc3339,
)
from tests.emulators.google_gmail import gmail_api, header_payload, mime_payload

__all__ = [
    "CALENDAR_EVENTS",
    "GMAIL_METADATA",
    "GMAIL_READONLY",
    "GMAIL_SETTINGS",
    "IDENTITY",
    "GoogleEmulator",
    "enron_headers",
    "enron_messages",
    "google_error",
]


class Quota:
    """A sliding-window per-user budget."""

    def __init__(self, units: int, window: float) -> None:
        self.units, self.window = units, window
        self.log: deque[tuple[float, int]] = deque()
        self.used = 0
        self.locked_until = 0.0  # Gmail refuses everything before the time it announced
        self.locked_at = 0.0  # when the request that was told that time arrived

    def take(self, cost: int, now: float) -> float:
        """0 when admitted (and booked), else the seconds until it would fit."""
        while self.log and self.log[0][0] <= now - self.window:
            self.used -= self.log.popleft()[1]
        if self.used + cost <= self.units:
            self.log.append((now, cost))
            self.used += cost
            return 0.0
        excess, freed = self.used + cost - self.units, 0
        for when, units in self.log:
            freed += units
            if freed >= excess:
                return max(when + self.window - now, 0.001)
        return self.window


@dataclass
class Stats:
    http_requests: int = 0  # a batch counts once
    calls: int = 0  # a batch counts its parts
    units: int = 0
    rejected: int = 0  # 429 answers
    early: int = 0  # of which to requests sent before the time an earlier 429 named
    unauthorized: int = 0  # 401 answers (a batch's parts count one by one)
    body_bytes: int = 0  # message body data sent (base64url characters)
    by_method: dict[str, int] = field(default_factory=dict)


class GoogleEmulator:
    def __init__(
        self,
        *,
        gmail_units: int | None = None,
        calendar_units: int | None = None,
        window: float = 60.0,
        client_id: str = "tally-test-client",
        client_secret: str = "tally-test-secret",
    ) -> None:
        self.client_id, self.client_secret = client_id, client_secret
        self.mailboxes: dict[str, Mailbox] = {}
        self.grants: dict[str, Grant] = {}  # refresh token -> grant
        self.access: dict[str, Grant] = {}  # access token -> grant
        self.codes: dict[str, dict[str, Any]] = {}
        self.consenting: str | None = None  # the account that consents (default: login_hint)
        self.granted: list[str] | None = None  # scopes the user leaves ticked (default: all)
        self.quota_units = {"gmail": gmail_units, "calendar": calendar_units}
        self.window = window
        self._quotas: dict[tuple[str, str], Quota] = {}
        self.stats = Stats()
        self.external_units: dict[str, int] = {}  # units another client of the user spends
        self.lock = threading.RLock()
        self.arrival = threading.local()  # when the HTTP request being served arrived
        self._ids = itertools.count(0x18C0000000)
        self.failures: deque[tuple[str, int]] = deque()  # (path fragment, status) to fail once
        # Gmail's "Retry after" is often many minutes past the quota window (twentyhq/twenty
        # #17850: "usually ~15 minutes out"): seconds added to the time a 429 announces
        self.gmail_penalty = 0.0
        self.token_latency = 0.0  # seconds the token endpoint takes to answer a refresh
        self.consented: dict[str, set[str]] = {}  # account -> every scope it ever granted
        self._expiring: dict[str, int] = {}  # account -> API calls left to its access tokens
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> GoogleEmulator:
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> GoogleEmulator:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # -- accounts and grants ------------------------------------------------------------------

    def account(self, address: str, *, aliases: Iterable[str] = ()) -> Mailbox:
        with self.lock:
            box = self.mailboxes.get(address.lower())
            if box is None:
                box = self.mailboxes[address.lower()] = Mailbox(address.lower())
            box.aliases = list(aliases) or box.aliases
            return box

    def grant(self, address: str, scopes: Iterable[str] | None = None) -> str:
        """A refresh token for `address` (its account is created when missing); by default
        with the scopes Tally asks for by default."""
        self.account(address)
        token = "1//rt-" + secrets.token_urlsafe(16)
        default = [*IDENTITY, GMAIL_READONLY, GMAIL_SETTINGS, CALENDAR_EVENTS]
        with self.lock:
            self.grants[token] = Grant(address.lower(), list(scopes or default))
            self.consented.setdefault(address.lower(), set()).update(scopes or default)
        return token

    def expire_access(self, address: str, *, after_calls: int = 0) -> None:
        """The account's access tokens stop working once `after_calls` more API calls have
        been answered (a batch's parts count one by one); its refresh tokens still work.
        Google: "A 401 error indicates that the access token you're using is either expired
        or invalid" (https://developers.google.com/gmail/api/guides/handle-errors); in a batch
        each part carries its own 401 inside a 200 (googleapis/google-api-ruby-client#167,
        google/google-api-javascript-client#481)."""
        with self.lock:
            self._expiring[address.lower()] = after_calls
        if after_calls == 0:
            self._expire_now(address.lower())

    def _expire_now(self, email: str) -> None:
        with self.lock:
            self._expiring.pop(email, None)
            for token in [t for t, g in self.access.items() if g.email == email]:
                del self.access[token]

    def revoke(self, address: str) -> None:
        """The user removed Tally's access: every grant of the account dies."""
        with self.lock:
            for grant in self.grants.values():
                if grant.email == address.lower():
                    grant.revoked = True

    # -- Gmail --------------------------------------------------------------------------------

    def _record(self, box: Mailbox, **change: Any) -> None:
        box.history_id += 1
        box.history.append({"id": str(box.history_id), **change})

    def deliver(
        self,
        address: str,
        headers: Mapping[str, str] | Iterable[tuple[str, str]],
        *,
        labels: Iterable[str] = ("INBOX",),
        when: datetime | None = None,
        thread_id: str | None = None,
        payload: dict[str, Any] | None = None,
    ) -> str:
        """Put a message in the mailbox (as if it arrived now); its Gmail id. `payload` is its
        MIME tree (deliver_raw builds it); without one it is a single empty part."""
        pairs = list(headers.items() if isinstance(headers, Mapping) else headers)
        if when is None:
            for name, value in pairs:
                if name.lower() == "date":
                    from email.utils import parsedate_to_datetime

                    try:
                        when = parsedate_to_datetime(value)
                    except (TypeError, ValueError):
                        when = None
        when = when or datetime.now(UTC)
        with self.lock:
            box = self.account(address)
            mid = format(next(self._ids), "x")
            box.history_id += 1
            message = Message(
                mid,
                thread_id or mid,
                set(labels),
                int(when.timestamp() * 1000),
                pairs,
                box.history_id,
                payload or header_payload(pairs),
            )
            box.messages[mid] = message
            box.history.append(
                {
                    "id": str(box.history_id),
                    "messages": [{"id": mid, "threadId": message.thread_id}],
                    "messagesAdded": [{"message": self._brief(message)}],
                }
            )
            return mid

    def deliver_raw(self, address: str, raw: bytes, **kwargs: Any) -> str:
        """Put a whole RFC 5322 message in the mailbox, MIME parts and bodies included."""
        headers, payload = mime_payload(raw)
        return self.deliver(address, headers, payload=payload, **kwargs)

    @staticmethod
    def _brief(message: Message) -> dict[str, Any]:
        return {
            "id": message.id,
            "threadId": message.thread_id,
            "labelIds": sorted(message.labels),
        }

    def delete(self, address: str, mid: str) -> None:
        with self.lock:
            box = self.account(address)
            message = box.messages.pop(mid)
            self._record(
                box,
                messages=[{"id": mid, "threadId": message.thread_id}],
                messagesDeleted=[{"message": self._brief(message)}],
            )

    def relabel(
        self, address: str, mid: str, *, add: Iterable[str] = (), remove: Iterable[str] = ()
    ) -> None:
        with self.lock:
            box = self.account(address)
            message = box.messages[mid]
            added, removed = set(add) - message.labels, set(remove) & message.labels
            message.labels = (message.labels | added) - removed
            if added:
                self._record(
                    box, labelsAdded=[{"message": self._brief(message), "labelIds": sorted(added)}]
                )
            if removed:
                self._record(
                    box,
                    labelsRemoved=[{"message": self._brief(message), "labelIds": sorted(removed)}],
                )

    def expire_history(self, address: str) -> None:
        """Google forgot the mailbox's history so far: older startHistoryIds answer 404."""
        with self.lock:
            box = self.account(address)
            box.history_floor = box.history_id + 1
            box.history_id += 5  # a new boundary a client cannot guess

    # -- Calendar -----------------------------------------------------------------------------

    def put_event(self, address: str, event: Mapping[str, Any]) -> dict[str, Any]:
        """Create or replace an event (one occurrence: singleEvents semantics)."""
        with self.lock:
            box = self.account(address)
            data = dict(event)
            data.setdefault("id", secrets.token_hex(8))
            data.setdefault("iCalUID", f"{data['id']}@google.com")
            data.setdefault("status", "confirmed")
            data.setdefault("created", datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"))
            data.setdefault("organizer", {"email": box.email, "self": True})
            data["kind"] = "calendar#event"
            box.calendar_seq += 1
            data["etag"] = f'"{box.calendar_seq}"'
            data["updated"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
            box.events[data["id"]] = data
            box.event_seq[data["id"]] = box.calendar_seq
            return data

    def put_series(
        self,
        address: str,
        event: Mapping[str, Any],
        *,
        first: datetime,
        count: int,
        every: timedelta,
    ) -> list[dict[str, Any]]:
        """A recurring series as Google expands it with singleEvents=true."""
        series = str(event.get("id") or secrets.token_hex(8))
        uid = str(event.get("iCalUID") or f"{series}@google.com")
        duration = event.get("duration", timedelta(hours=1))
        instances = []
        for number in range(count):
            start = first + every * number
            stamp = start.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
            data = {k: v for k, v in event.items() if k != "duration"}
            data.update(
                id=f"{series}_{stamp}",
                iCalUID=uid,
                recurringEventId=series,
                originalStartTime={"dateTime": rfc3339(start)},
                start={"dateTime": rfc3339(start)},
                end={"dateTime": rfc3339(start + duration)},
            )
            instances.append(self.put_event(address, data))
        return instances

    def cancel_event(self, address: str, event_id: str) -> None:
        with self.lock:
            box = self.account(address)
            old = box.events[event_id]
            kept = {k: old[k] for k in ("id", "recurringEventId", "originalStartTime") if k in old}
            self.put_event(address, {**kept, "status": "cancelled", "iCalUID": old["iCalUID"]})

    def expire_sync_tokens(self, address: str) -> None:
        with self.lock:
            box = self.account(address)
            box.calendar_seq += 1
            box.sync_floor = box.calendar_seq

    # -- quota --------------------------------------------------------------------------------

    def charge(self, api: str, user: str, method: str) -> None:
        costs = GMAIL_COSTS if api == "gmail" else CALENDAR_COSTS
        cost = int(costs.get(method, 1))
        with self.lock:
            self.stats.calls += 1
            self.stats.by_method[method] = self.stats.by_method.get(method, 0) + 1
            limit = self.quota_units[api]
            if limit is not None:
                quota = self._quotas.get((api, user))
                if quota is None:
                    quota = self._quotas[(api, user)] = Quota(limit, self.window)
                # a batch's parts all count when the batch arrives, as at Google's front end
                now = getattr(self.arrival, "moment", None) or time.monotonic()
                extra = self.external_units.pop(user, 0)
                if extra:
                    quota.log.append((now, extra))
                    quota.used += extra
                if api == "gmail" and now < quota.locked_until:
                    if now > quota.locked_at:  # a later request than the one that was told
                        self.stats.early += 1
                    self._refuse(api, quota.locked_until - now)
                wait = quota.take(cost, now)
                if wait:
                    if api == "gmail":
                        wait += self.gmail_penalty
                        quota.locked_until, quota.locked_at = now + wait, now
                    self._refuse(api, wait)
            self.stats.units += cost

    def _refuse(self, api: str, wait: float) -> None:
        """429, not charged. Gmail sends no Retry-After header: the time is in the message,
        "User-rate limit exceeded.  Retry after 2024-11-12T11:16:42.247Z", and requests
        before it are refused with the same time (googleapis/google-api-ruby-client#20544,
        taers232c/GAMADV-XTD3#337, elie222/inbox-zero#711). Calendar sends Retry-After."""
        self.stats.rejected += 1
        if api == "gmail":
            until = datetime.now(UTC) + timedelta(seconds=math.ceil(wait * 1000) / 1000)
            stamp = until.isoformat(timespec="milliseconds").replace("+00:00", "Z")
            raise google_error(
                429,
                f"User-rate limit exceeded.  Retry after {stamp}",
                "rateLimitExceeded",
                "RESOURCE_EXHAUSTED",
                domain="usageLimits",
            )
        error = google_error(
            429,
            "Quota exceeded for quota metric 'Queries' and limit 'Queries per minute per user'",
            "rateLimitExceeded",
            "RESOURCE_EXHAUSTED",
        )
        error.headers["Retry-After"] = str(max(1, math.ceil(wait)))
        raise error

    # -- requests -----------------------------------------------------------------------------

    def handle(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        """One HTTP request: (status, headers, body)."""
        try:
            parts = urlsplit(target)
            path, query = parts.path, parse_qs(parts.query, keep_blank_values=True)
            for fragment, status in list(self.failures):
                if fragment in path:
                    self.failures.remove((fragment, status))
                    raise google_error(status, "backend error", "backendError")
            if path == "/token" and method == "POST":
                with self.lock:
                    self.stats.by_method["token"] = self.stats.by_method.get("token", 0) + 1
                form = parse_qs(body.decode())
                basic = headers.get("authorization", "")
                if basic.startswith("Basic "):  # requests-oauthlib sends the client this way
                    ident, _, secret = base64.b64decode(basic[6:]).decode().partition(":")
                    form.setdefault("client_id", [unquote(ident)])
                    form.setdefault("client_secret", [unquote(secret)])
                return self._json(200, self._token(form))
            if path == "/o/oauth2/auth":
                return self._consent(query)
            if path.startswith("/batch"):
                return self._batch(headers, body)
            return self._json(200, self._api(method, path, query, headers, body))
        except Answer as answer:
            return self._json(answer.status, answer.body, answer.headers)

    @staticmethod
    def _json(
        status: int, body: Any, headers: Mapping[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        if status == 204 or body is None:
            return status, dict(headers or {}), b""
        data = json.dumps(body).encode()
        return status, {"Content-Type": "application/json; charset=UTF-8", **(headers or {})}, data

    def _grant_of(self, headers: Mapping[str, str]) -> Grant:
        value = headers.get("authorization") or headers.get("Authorization") or ""
        token = value.removeprefix("Bearer ").strip()
        with self.lock:
            grant = self.access.get(token)
            if grant is not None and grant.email in self._expiring:
                if self._expiring[grant.email] <= 0:
                    self._expire_now(grant.email)
                    grant = None
                else:
                    self._expiring[grant.email] -= 1
            if grant is None or grant.revoked:
                self.stats.unauthorized += 1
                raise google_error(401, "Invalid Credentials", "authError", "UNAUTHENTICATED")
        return grant

    def _api(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        headers: Mapping[str, str],
        body: bytes,
    ) -> Any:
        grant = self._grant_of(headers)
        one = {k: v[0] for k, v in query.items()}
        if path.startswith("/gmail/v1/users/"):
            return gmail_api(self, method, path.split("/")[4:], one, query, grant, body)
        if path.startswith("/calendar/v3/"):
            return calendar_api(self, method, path.split("/")[3:], one, grant, body)
        raise google_error(404, f"no such API path {path}", "notFound")

    # -- OAuth --------------------------------------------------------------------------------

    def _consent(self, query: dict[str, list[str]]) -> tuple[int, dict[str, str], bytes]:
        one = {k: v[0] for k, v in query.items()}
        if one.get("client_id") != self.client_id:
            raise Answer(400, {"error": "invalid_client"})
        who = self.consenting or one.get("login_hint")
        if not who:
            raise Answer(400, {"error": "no account chose"})
        scopes = one.get("scope", "").split()
        if self.granted is not None:  # granular consent: the user unticked some scopes
            scopes = [s for s in scopes if s in self.granted]
        if one.get("include_granted_scopes") == "true":
            # incremental authorization: "the new access token will also cover any scopes to
            # which the user previously granted the application access"
            # (https://developers.google.com/identity/protocols/oauth2/web-server#incrementalAuth)
            with self.lock:
                before = self.consented.get(who.lower(), set())
            scopes += sorted(before - set(scopes))
        code = "4/" + secrets.token_urlsafe(12)
        with self.lock:
            self.codes[code] = {
                "email": who.lower(),
                "scopes": scopes,
                "challenge": one.get("code_challenge"),
                "redirect_uri": one.get("redirect_uri"),
            }
        target = (
            one["redirect_uri"]
            + "?"
            + urlencode({"state": one.get("state", ""), "code": code, "scope": " ".join(scopes)})
        )
        return 302, {"Location": target}, b""

    def _token(self, form: dict[str, list[str]]) -> dict[str, Any]:
        one = {k: v[0] for k, v in form.items()}
        if one.get("client_id") != self.client_id or one.get("client_secret") != self.client_secret:
            raise Answer(401, {"error": "invalid_client", "error_description": "Unauthorized"})
        grant_type = one.get("grant_type")
        if grant_type == "refresh_token" and self.token_latency:
            time.sleep(self.token_latency)
        with self.lock:
            if grant_type == "authorization_code":
                pending = self.codes.pop(one.get("code", ""), None)
                if pending is None:
                    raise Answer(
                        400, {"error": "invalid_grant", "error_description": "Bad Request"}
                    )
                verifier = one.get("code_verifier", "")
                digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
                if pending["challenge"] and digest.rstrip(b"=").decode() != pending["challenge"]:
                    raise Answer(
                        400,
                        {"error": "invalid_grant", "error_description": "Invalid code verifier."},
                    )
                if one.get("redirect_uri") != pending["redirect_uri"]:
                    raise Answer(400, {"error": "redirect_uri_mismatch"})
                refresh = self.grant(pending["email"], pending["scopes"])
                grant = self.grants[refresh]
                access = self._access(grant)
                claims = {
                    "iss": "https://accounts.google.com",
                    "aud": self.client_id,
                    "sub": hashlib.sha1(grant.email.encode()).hexdigest(),
                    "email": grant.email,
                    "email_verified": True,
                }
                return {
                    "access_token": access,
                    "expires_in": 3599,
                    "refresh_token": refresh,
                    "scope": " ".join(grant.scopes),
                    "token_type": "Bearer",
                    "id_token": _jwt(claims),
                }
            if grant_type == "refresh_token":
                grant = self.grants.get(one.get("refresh_token", ""))  # type: ignore[assignment]
                if grant is None or grant.revoked:
                    raise Answer(
                        400,
                        {
                            "error": "invalid_grant",
                            "error_description": "Token has been expired or revoked.",
                        },
                    )
                return {
                    "access_token": self._access(grant),
                    "expires_in": 3599,
                    "scope": " ".join(grant.scopes),
                    "token_type": "Bearer",
                }
        raise Answer(400, {"error": "unsupported_grant_type"})

    def _access(self, grant: Grant) -> str:
        token = "ya29." + secrets.token_urlsafe(16)
        self.access[token] = grant
        return token

    # -- batch --------------------------------------------------------------------------------

    def _batch(self, headers: Mapping[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        kind = headers.get("content-type") or headers.get("Content-Type") or ""
        parsed = email.parser.BytesParser(policy=email.policy.compat32).parsebytes(
            b"Content-Type: " + kind.encode() + b"\r\n\r\n" + body
        )
        if not parsed.is_multipart():
            raise Answer(400, {"error": {"code": 400, "message": "not multipart"}})
        boundary = "batch_" + secrets.token_hex(8)
        out: list[str] = []
        for part in parsed.get_payload():
            content_id = part["Content-ID"] or ""
            inner = part.get_payload()
            if isinstance(inner, list):
                raise Answer(400, {"error": {"code": 400, "message": "nested multipart"}})
            head, _, inner_body = inner.replace("\r\n", "\n").partition("\n\n")
            lines = head.split("\n")
            request_line = lines[0].split(" ")
            inner_headers = {}
            for line in lines[1:]:
                if ":" in line:
                    name, value = line.split(":", 1)
                    inner_headers[name.strip().lower()] = value.strip()
            status, answer_headers, data = self.handle(
                request_line[0], request_line[1], inner_headers, inner_body.encode()
            )
            reason = {200: "OK", 204: "No Content", 404: "Not Found", 429: "Too Many Requests"}.get(
                status, "Error"
            )
            response_head = [f"HTTP/1.1 {status} {reason}"]
            response_head += [f"{k}: {v}" for k, v in answer_headers.items()]
            out.append(
                f"--{boundary}\r\nContent-Type: application/http\r\n"
                f"Content-ID: <response-{content_id.strip('<>')}>\r\n\r\n"
                + "\r\n".join(response_head)
                + "\r\n\r\n"
                + data.decode()
                + "\r\n"
            )
        payload = "".join(out) + f"--{boundary}--\r\n"
        return 200, {"Content-Type": f"multipart/mixed; boundary={boundary}"}, payload.encode()


def _jwt(claims: Mapping[str, Any]) -> str:
    def part(data: Mapping[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}.sig"


def _handler(emulator: GoogleEmulator) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

        def _serve(self) -> None:
            emulator.arrival.moment = time.monotonic()
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            with emulator.lock:
                emulator.stats.http_requests += 1
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, answer_headers, data = emulator.handle(self.command, self.path, headers, body)
            self.send_response(status)
            for name, value in answer_headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = _serve

    return Handler


def enron_messages(limit: int | None = None) -> Iterator[bytes]:
    """The real Enron messages in tests/data (inbox then sent), whole."""
    import mailbox
    from pathlib import Path

    folder = Path(__file__).resolve().parent.parent / "data" / "enron" / "allen-p"
    count = 0
    for name in ("inbox.mbox", "sent_mail.mbox"):
        for message in mailbox.mbox(folder / name):
            yield message.as_bytes()
            count += 1
            if limit is not None and count >= limit:
                return


def enron_headers(limit: int | None = None) -> Iterator[list[tuple[str, str]]]:
    """Header lists of the real Enron messages in tests/data (inbox then sent)."""
    for raw in enron_messages(limit):
        yield mime_payload(raw)[0]


def main() -> None:
    """Serve a filled mailbox in a process of its own (bench/gmail.py): prints one JSON line
    {"url", "refresh_token", "account"} and serves until its standard input closes; then
    prints its stats as a second JSON line."""
    import argparse
    import sys
    from dataclasses import asdict

    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--units", type=int, default=6000)
    parser.add_argument("--window", type=float, default=60.0)
    parser.add_argument("--metadata-only", action="store_true", help="grant gmail.metadata")
    parser.add_argument("--expire-access-every", type=float, default=0.0, help="seconds")
    parser.add_argument("--token-latency", type=float, default=0.0, help="seconds")
    args = parser.parse_args()
    account = "ana@acme.example"
    emulator = GoogleEmulator(gmail_units=args.units, window=args.window)
    emulator.token_latency = args.token_latency
    gmail = GMAIL_METADATA if args.metadata_only else GMAIL_READONLY
    token = emulator.grant(account, [*IDENTITY, gmail, GMAIL_SETTINGS, CALENDAR_EVENTS])
    real = [mime_payload(raw) for raw in enron_messages()]  # whole messages, bodies included
    now = datetime.now(UTC)
    for number in range(args.messages):
        headers, payload = real[number % len(real)]
        headers = [(k, v) for k, v in headers if k.lower() != "message-id"]
        headers.append(("Message-ID", f"<bench-{number}@enron.example>"))
        tree = {**payload, "headers": [{"name": k, "value": v} for k, v in headers]}
        labels = ("SENT",) if number % 5 == 0 else ("INBOX",)
        when = now - timedelta(minutes=number)
        emulator.deliver(account, headers, labels=labels, when=when, payload=tree)
    emulator.start()
    if args.expire_access_every > 0:

        def expire() -> None:  # access tokens die early now and then: 401s mid-run
            while True:
                time.sleep(args.expire_access_every)
                emulator.expire_access(account)

        threading.Thread(target=expire, daemon=True).start()
    hello = {"url": emulator.url, "refresh_token": token, "account": account}
    sys.stdout.write(json.dumps(hello) + "\n")
    sys.stdout.flush()
    sys.stdin.read()
    sys.stdout.write(json.dumps(asdict(emulator.stats)) + "\n")
    sys.stdout.flush()
    emulator.stop()


if __name__ == "__main__":
    main()
