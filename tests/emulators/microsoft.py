"""A local emulator of the Microsoft identity platform and of Microsoft Graph, over TLS.

msal insists on https, so the emulator serves TLS with a `trustme` test CA; the CA file is
`emulator.ca_path`. One server answers both:

- identity: `/{tenant}/v2.0/.well-known/openid-configuration`, `/{tenant}/oauth2/v2.0/authorize`
  (a 302 back to the redirect URI with a code, as if the user consented) and
  `/{tenant}/oauth2/v2.0/token` (authorization-code grant with PKCE, refresh-token grant with
  rotating refresh tokens, revoked grants answered `invalid_grant` with AADSTS codes, an
  unsigned id_token and client_info as Entra ID sends them);
- Graph under `/v1.0`: `/me`, `/me/mailFolders/{folder}/messages/delta`,
  `/me/calendarView/delta`, `/subscriptions`. Delta rounds page with `@odata.nextLink` and end
  with `@odata.deltaLink`, both opaque absolute URLs on the emulator's own base; sync states
  can be expired (410 SyncStateNotFound, for delta links and older next links alike); 429 with
  Retry-After on demand; more than 4 requests in flight for one mailbox are refused
  (429 MailboxConcurrency); ids are immutable only with `Prefer: IdType="ImmutableId"`;
  a message moved between folders leaves one folder (`@removed`) and enters the other.

State is in memory, behind one lock; every Graph request may be slowed by `latency` seconds.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import ssl
import tempfile
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import trustme

FOLDER_IDS = {
    "inbox": "AAMkFolderInbox",
    "sentitems": "AAMkFolderSent",
    "archive": "AAMkFolderArchive",
    "drafts": "AAMkFolderDrafts",
    "deleteditems": "AAMkFolderDeleted",
}
RESERVED_SCOPES = {"openid", "profile", "offline_access"}
MAX_IN_FLIGHT = 4

AADSTS = {
    70008: "The provided authorization code or refresh token has expired due to inactivity.",
    50173: (
        "The provided grant has expired due to it being revoked, a fresh auth token is needed. "
        "The user might have changed or reset their password."
    ),
    50057: "The user account is disabled.",
    65001: "The user or administrator has not consented to use the application.",
}


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


@dataclass
class Item:
    """A message or an event instance in a mailbox; `seq` is the mailbox sequence of its last
    change, `container` its folder ("calendar" for events)."""

    id: str
    container: str
    data: dict[str, Any]
    seq: int


@dataclass
class Round:
    """A delta round in progress: what it will return, page by page."""

    mailbox: str
    generation: int
    path: str  # the delta URL path, for the links
    entries: list[dict[str, Any]]
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


class MicrosoftEmulator:
    def __init__(
        self,
        *,
        tenant: str = "tenant-1",
        client_id: str = "client-1",
        client_secret: str = "client-secret",
        latency: float = 0.0,
        max_page_size: int = 1000,
        access_token_seconds: int = 3600,
    ) -> None:
        self.tenant = tenant
        self.client_id = client_id
        self.client_secret = client_secret
        self.latency = latency
        self.max_page_size = max_page_size
        self.access_token_seconds = access_token_seconds
        self.users: dict[str, User] = {}
        self.lock = threading.RLock()
        self.codes: dict[str, dict[str, Any]] = {}
        self.refresh_tokens: dict[str, str] = {}  # live refresh token -> user email
        self.spent_refresh_tokens: set[str] = set()
        self.access_tokens: dict[str, str] = {}  # access token -> user email
        self.rounds: dict[str, tuple[Round, int]] = {}  # next link token -> round, position
        self.deltas: dict[str, DeltaToken] = {}
        self.subscriptions: dict[str, dict[str, Any]] = {}
        self.grants: list[tuple[str, str]] = []  # (grant type, refresh token used or "")
        self.graph_requests = 0
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

        class Handler(_Handler):
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

    def deliver(
        self,
        email: str,
        folder: str = "inbox",
        *,
        sender: str,
        to: Iterable[str] = (),
        cc: Iterable[str] = (),
        bcc: Iterable[str] = (),
        subject: str = "Hello",
        when: datetime | None = None,
        message_id: str | None = None,
        draft: bool = False,
        odata_type: str | None = None,
    ) -> str:
        """Put a message in a folder of the mailbox; returns its (immutable) id."""
        when = when or datetime.now(UTC) - timedelta(days=1)
        with self.lock:
            user = self.user(email)
            item_id = "AAMkMsg" + secrets.token_hex(10)
            data: dict[str, Any] = {
                "id": item_id,
                "internetMessageId": f"<{message_id or secrets.token_hex(12)}@mail.example>",
                "conversationId": "AAQk" + secrets.token_hex(6),
                "subject": subject,
                "from": email_address(sender),
                "sender": email_address(sender),
                "toRecipients": [email_address(a) for a in to],
                "ccRecipients": [email_address(a) for a in cc],
                "bccRecipients": [email_address(a) for a in bcc],
                "receivedDateTime": iso(when),
                "sentDateTime": iso(when),
                "isDraft": draft,
                "bodyPreview": "Hi there.",
            }
            if odata_type:
                data["@odata.type"] = odata_type
            user.items[item_id] = Item(item_id, folder, data, user.bump())
            return item_id

    def deliver_many(self, email: str, folder: str, messages: list[dict[str, Any]]) -> list[str]:
        return [self.deliver(email, folder, **m) for m in messages]

    def move(self, email: str, item_id: str, folder: str) -> None:
        with self.lock:
            user = self.user(email)
            item = user.items[item_id]
            seq = user.bump()
            user.departures.append((seq, item.container, item_id))
            item.container, item.seq = folder, seq

    def delete(self, email: str, item_id: str) -> None:
        with self.lock:
            user = self.user(email)
            item = user.items.pop(item_id)
            user.departures.append((user.bump(), item.container, item_id))

    def update(self, email: str, item_id: str, **changes: Any) -> None:
        with self.lock:
            user = self.user(email)
            item = user.items[item_id]
            item.data.update(changes)
            item.data["changeKey"] = secrets.token_hex(4)
            item.seq = user.bump()

    # --- the test's side: calendars ---------------------------------------------------------

    def add_event(
        self,
        email: str,
        *,
        subject: str,
        start: datetime,
        minutes: int = 30,
        organizer: str | None = None,
        attendees: Iterable[tuple[str, str] | tuple[str, str, str]] = (),
        weekly: int = 0,
        online: bool = False,
        toll_number: str | None = None,
        location: str = "",
        all_day: bool = False,
        created: datetime | None = None,
        ical_uid: str | None = None,
    ) -> list[str]:
        """A single event (weekly=0) or a weekly series of `weekly` occurrences; returns the
        instance ids (calendarView gives instances, never the series master). Attendees are
        (address, response[, type]) with Graph's response values."""
        with self.lock:
            user = self.user(email)
            master = "AAMkEvt" + secrets.token_hex(8)
            uid = ical_uid or "040000008200E00074C5B7101A82E008" + secrets.token_hex(16)
            organizer = organizer or user.email
            people = []
            for attendee in attendees:
                address, response, *kind = attendee
                people.append(
                    {
                        "type": kind[0] if kind else "required",
                        "status": {"response": response, "time": "0001-01-01T00:00:00Z"},
                        **email_address(address),
                    }
                )
            common: dict[str, Any] = {
                "subject": subject,
                "bodyPreview": "",
                "isAllDay": all_day,
                "isCancelled": False,
                "location": {"displayName": location},
                "organizer": email_address(organizer),
                "attendees": people,
                "isOrganizer": organizer.lower() == user.email,
                "responseStatus": {
                    "response": "organizer" if organizer.lower() == user.email else "accepted"
                },
                "isOnlineMeeting": online or toll_number is not None,
                "onlineMeetingProvider": "teamsForBusiness" if online else "unknown",
                "onlineMeeting": (
                    {
                        "joinUrl": (
                            f"https://teams.microsoft.com/l/meetup-join/{secrets.token_hex(6)}"
                            if online
                            else None
                        ),
                        "tollNumber": toll_number,
                        "conferenceId": "123456789" if toll_number else None,
                    }
                    if online or toll_number
                    else None
                ),
                "createdDateTime": iso(created or start - timedelta(days=7)),
                "lastModifiedDateTime": iso(created or start - timedelta(days=7)),
            }
            ids = []
            for number in range(max(weekly, 1)):
                begin = start + timedelta(weeks=number)
                instance_id = master if not weekly else f"{master}_{begin:%Y%m%d}"
                data = {
                    **json.loads(json.dumps(common)),
                    "id": instance_id,
                    "iCalUId": uid if not weekly else f"{uid}{begin:%Y%m%d}",
                    "type": "occurrence" if weekly else "singleInstance",
                    "seriesMasterId": master if weekly else None,
                    "originalStart": iso(begin) if weekly else None,
                    "start": graph_time(begin),
                    "end": graph_time(begin + timedelta(minutes=minutes)),
                    "changeKey": secrets.token_hex(4),
                }
                if all_day:
                    day = begin.replace(hour=0, minute=0, second=0, microsecond=0)
                    data["start"] = graph_time(day)
                    data["end"] = graph_time(day + timedelta(days=1))
                user.items[instance_id] = Item(instance_id, "calendar", data, user.bump())
                ids.append(instance_id)
            return ids

    def move_occurrence(self, email: str, instance_id: str, start: datetime) -> None:
        """Turn an occurrence into an exception at another time (same id, type exception)."""
        with self.lock:
            item = self.user(email).items[instance_id]
            length = _parse(item.data["end"]) - _parse(item.data["start"])
        self.update(
            email,
            instance_id,
            type="exception",
            start=graph_time(start),
            end=graph_time(start + length),
        )

    def respond(self, email: str, instance_id: str, attendee: str, response: str) -> None:
        with self.lock:
            item = self.user(email).items[instance_id]
            people = json.loads(json.dumps(item.data["attendees"]))
        for person in people:
            if person["emailAddress"]["address"].lower() == attendee.lower():
                person["status"]["response"] = response
        changes: dict[str, Any] = {"attendees": people}
        if attendee.lower() == email.lower():  # the owner's own answer
            changes["responseStatus"] = {"response": response, "time": iso(datetime.now(UTC))}
        self.update(email, instance_id, **changes)

    # --- the test's side: failures ----------------------------------------------------------

    def revoke(self, email: str, code: int = 50173) -> None:
        """The user's grants are refused from now on with AADSTS `code`."""
        with self.lock:
            self.user(email).revoked = code
            for token, owner in list(self.access_tokens.items()):
                if owner == email.lower():
                    del self.access_tokens[token]

    def expire_access_tokens(self) -> None:
        with self.lock:
            self.access_tokens.clear()

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
        """Share of the 10,000 requests / 10 minutes per mailbox used in the last `window`."""
        now = time.monotonic()
        with self.lock:
            recent = [t for t in self.user(email).requests if now - t <= window]
        return len(recent) / 10_000

    # --- the test's side: the browser -------------------------------------------------------

    def consent(self, authorization_url: str, *, email: str | None = None) -> str:
        """What the user's browser ends on after consenting: the redirect URI with the code
        and state. `email` defaults to the login_hint."""
        query = {k: v[0] for k, v in parse_qs(urlsplit(authorization_url).query).items()}
        return self._authorize(query, email)

    def _authorize(self, query: dict[str, str], email: str | None) -> str:
        who = (email or query.get("login_hint") or "").lower()
        redirect = query["redirect_uri"]
        if who not in self.users:
            error = {"error": "access_denied", "error_description": "AADSTS50020: unknown user"}
            return f"{redirect}?{urlencode({**error, 'state': query.get('state', '')})}"
        code = secrets.token_urlsafe(24)
        with self.lock:
            self.codes[code] = {
                "email": who,
                "challenge": query.get("code_challenge"),
                "method": query.get("code_challenge_method"),
                "nonce": query.get("nonce"),
                "redirect_uri": redirect,
                "scope": query.get("scope", ""),
                "client_id": query.get("client_id"),
            }
        return f"{redirect}?{urlencode({'code': code, 'state': query.get('state', '')})}"

    # --- the server's side: identity --------------------------------------------------------

    def openid_configuration(self, tenant: str) -> dict[str, Any]:
        root = f"{self.base}/{tenant}"
        return {
            "issuer": f"{root}/v2.0",
            "authorization_endpoint": f"{root}/oauth2/v2.0/authorize",
            "token_endpoint": f"{root}/oauth2/v2.0/token",
            "jwks_uri": f"{root}/discovery/v2.0/keys",
            "response_types_supported": ["code", "id_token", "code id_token"],
            "tenant_region_scope": "EU",
        }

    def token(self, tenant: str, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if form.get("client_id") != self.client_id or form.get("client_secret") != (
            self.client_secret
        ):
            return 401, _aad_error("invalid_client", 7000215, "Invalid client secret provided.")
        grant = form.get("grant_type")
        with self.lock:
            if grant == "authorization_code":
                found = self.codes.pop(form.get("code", ""), None)
                if found is None:
                    return 400, _aad_error("invalid_grant", 54005, "Code already redeemed.")
                verifier = form.get("code_verifier", "")
                digest = b64url(hashlib.sha256(verifier.encode()).digest())
                if found["method"] != "S256" or digest != found["challenge"]:
                    return 400, _aad_error("invalid_grant", 501481, "Code verifier mismatch.")
                if form.get("redirect_uri") != found["redirect_uri"]:
                    return 400, _aad_error("invalid_grant", 50148, "Redirect URI mismatch.")
                self.grants.append(("authorization_code", ""))
                return 200, self._issue(tenant, found["email"], form, nonce=found["nonce"])
            if grant == "refresh_token":
                used = form.get("refresh_token", "")
                self.grants.append(("refresh_token", used))
                email = self.refresh_tokens.get(used)
                if email is None:
                    code = 70008 if used in self.spent_refresh_tokens else 9002313
                    return 400, _aad_error("invalid_grant", code, AADSTS.get(code, "Bad token."))
                user = self.users[email]
                if user.revoked is not None:
                    error = "interaction_required" if user.revoked == 50076 else "invalid_grant"
                    message = AADSTS.get(user.revoked, "Grant refused.")
                    return 400, _aad_error(error, user.revoked, message)
                del self.refresh_tokens[used]  # rotation: the old one is spent
                self.spent_refresh_tokens.add(used)
                return 200, self._issue(tenant, email, form, nonce=None)
        return 400, _aad_error("unsupported_grant_type", 70003, "Unsupported grant type.")

    def _issue(
        self, tenant: str, email: str, form: dict[str, str], *, nonce: str | None
    ) -> dict[str, Any]:
        user = self.users[email]
        access = "at-" + secrets.token_urlsafe(24)
        refresh = "rt-" + secrets.token_urlsafe(24)
        self.access_tokens[access] = email
        self.refresh_tokens[refresh] = email
        now = int(time.time())
        claims = {
            "iss": f"{self.base}/{tenant}/v2.0",
            "aud": self.client_id,
            "sub": user.oid,
            "oid": user.oid,
            "tid": self.tenant,
            "preferred_username": email,
            "name": user.name,
            "iat": now,
            "exp": now + 3600,
        }
        if nonce:
            claims["nonce"] = nonce
        scopes = [s for s in form.get("scope", "").split() if s not in RESERVED_SCOPES]
        return {
            "token_type": "Bearer",
            "scope": " ".join(scopes),
            "expires_in": self.access_token_seconds,
            "ext_expires_in": self.access_token_seconds,
            "access_token": access,
            "refresh_token": refresh,
            "id_token": unsigned_jwt(claims),
            "client_info": b64url(json.dumps({"uid": user.oid, "utid": self.tenant}).encode()),
        }

    # --- the server's side: Graph -----------------------------------------------------------

    def graph_request(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], dict[str, Any] | None]:
        token = headers.get("authorization", "").removeprefix("Bearer ").strip()
        with self.lock:
            self.graph_requests += 1
            email = self.access_tokens.get(token)
            if email is None:
                return (
                    401,
                    {},
                    _graph_error(
                        "InvalidAuthenticationToken",
                        "Access token has expired or is not yet valid.",
                    ),
                )
            user = self.users[email]
            user.requests.append(time.monotonic())
            if user.in_flight >= MAX_IN_FLIGHT:
                user.refused += 1
                return (
                    429,
                    {"Retry-After": "1"},
                    _graph_error(
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
                    _graph_error("TooManyRequests", "Too many requests; retry later."),
                )
            user.in_flight += 1
            user.max_in_flight = max(user.max_in_flight, user.in_flight)
        try:
            if self.latency:
                time.sleep(self.latency)
            with self.lock:
                return self._route(user, method, path, query, headers, body)
        finally:
            with self.lock:
                user.in_flight -= 1

    def _route(
        self,
        user: User,
        method: str,
        path: str,
        query: dict[str, str],
        headers: dict[str, str],
        body: bytes,
    ) -> tuple[int, dict[str, str], dict[str, Any] | None]:
        prefer = headers.get("prefer", "")
        if method == "GET" and path == "/v1.0/me":
            return 200, {}, self._me(user)
        if method == "GET" and path.startswith("/v1.0/me/mailFolders/"):
            folder = path.split("/")[4]
            if path.endswith("/messages/delta") and folder in FOLDER_IDS:
                return self._delta(user, path, query, prefer, container=folder)
            return 404, {}, _graph_error("ErrorFolderNotFound", "The folder was not found.")
        if method == "GET" and path == "/v1.0/me/calendarView/delta":
            return self._delta(user, path, query, prefer, container="calendar")
        if path.startswith("/v1.0/subscriptions"):
            return self._subscriptions(user, method, path, body)
        return 404, {}, _graph_error("ResourceNotFound", f"no route {method} {path}")

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
        *,
        container: str,
    ) -> tuple[int, dict[str, str], dict[str, Any] | None]:
        size = 10
        for part in prefer.split(","):
            name, _, value = part.strip().partition("=")
            if name.strip() == "odata.maxpagesize":
                size = max(1, min(int(value), self.max_page_size))
        immutable = 'IdType="ImmutableId"' in prefer
        if "$skiptoken" in query:
            found = self.rounds.get(query["$skiptoken"])
            if found is None or found[0].generation != user.generation:
                return (
                    410,
                    {},
                    _graph_error("SyncStateNotFound", "The sync state generation is not found."),
                )
            state, position = found
        else:
            if "$deltatoken" in query:
                token = self.deltas.get(query["$deltatoken"])
                if token is None or token.generation != user.generation:
                    return (
                        410,
                        {},
                        _graph_error(
                            "SyncStateNotFound", "The sync state generation is not found."
                        ),
                    )
                options, since = token.query, token.seq
            else:
                options, since = dict(query), -1
                if container == "calendar" and not (
                    "startDateTime" in options and "endDateTime" in options
                ):
                    return (
                        400,
                        {},
                        _graph_error(
                            "ErrorInvalidParameter", "startDateTime and endDateTime are required."
                        ),
                    )
                if container == "calendar" and "$select" in options:
                    return (
                        400,
                        {},
                        _graph_error(
                            "ErrorInvalidParameter", "$select is not supported on event delta."
                        ),
                    )
            entries = self._changes(user, container, options, since, immutable)
            state = Round(user.email, user.generation, path, entries, user.seq, options)
            position = 0
        page = state.entries[position : position + size]
        position += len(page)
        answer: dict[str, Any] = {"value": page}
        url = f"{self.base}{state.path}"
        if position < len(state.entries):  # a next link stays good until the state is evicted
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

    def _changes(
        self, user: User, container: str, options: dict[str, Any], since: int, immutable: bool
    ) -> list[dict[str, Any]]:
        present = [i for i in user.items.values() if i.container == container and i.seq > since]
        outside: list[str] = []
        if container == "calendar":
            start = _parse_iso(options["startDateTime"])
            end = _parse_iso(options["endDateTime"])
            inside = [
                i
                for i in present
                if _parse(i.data["start"]) < end and _parse(i.data["end"]) > start
            ]
            if since >= 0:  # an instance that changed and left the window is reported removed
                outside = [i.id for i in present if i not in inside]
            present = inside
            present.sort(key=lambda i: _parse(i.data["start"]))
        else:
            floor = options.get("$filter", "")
            if floor.startswith("receivedDateTime ge "):
                limit = _parse_iso(floor.removeprefix("receivedDateTime ge ").strip())
                present = [i for i in present if _parse_iso(i.data["receivedDateTime"]) >= limit]
            present.sort(key=lambda i: i.data["receivedDateTime"], reverse=True)
        selected = [s for s in options.get("$select", "").split(",") if s]
        entries = [self._render(i, selected, immutable) for i in present]
        kind = "#microsoft.graph.event" if container == "calendar" else "#microsoft.graph.message"
        gone: dict[str, None] = {}
        for seq, left, item_id in user.departures:
            if seq > since and left == container:
                current = user.items.get(item_id)
                if current is None or current.container != container:
                    gone[item_id] = None
        gone.update(dict.fromkeys(outside))
        for item_id in gone:
            shown = item_id if immutable else f"{container}-{item_id}"
            current = user.items.get(item_id)
            reason = "changed" if current is not None else "deleted"
            entries.append({"@odata.type": kind, "id": shown, "@removed": {"reason": reason}})
        return entries

    def _render(self, item: Item, selected: list[str], immutable: bool) -> dict[str, Any]:
        data = json.loads(json.dumps(item.data))
        if item.container != "calendar":
            data["parentFolderId"] = FOLDER_IDS[item.container]
            data["@odata.etag"] = f'W/"{item.seq}"'
        if selected:
            keep = set(selected) | {"id", "@odata.type", "@odata.etag"}
            data = {k: v for k, v in data.items() if k in keep}
        if not immutable:  # a mutable id changes when the item moves
            data["id"] = f"{item.container}-{item.id}"
        return data

    def _subscriptions(
        self, user: User, method: str, path: str, body: bytes
    ) -> tuple[int, dict[str, str], dict[str, Any] | None]:
        parts = path.split("/")
        if method == "POST" and len(parts) == 3:
            request = json.loads(body or b"{}")
            missing = {
                "changeType",
                "notificationUrl",
                "resource",
                "expirationDateTime",
            } - set(request)
            if missing:
                return 400, {}, _graph_error("InvalidRequest", f"missing {sorted(missing)}")
            if not request["notificationUrl"].startswith("https://"):
                return 400, {}, _graph_error("InvalidRequest", "notificationUrl must be https")
            expiry = _parse_iso(request["expirationDateTime"])
            if expiry > datetime.now(UTC) + timedelta(minutes=10080):
                return 400, {}, _graph_error("InvalidRequest", "expirationDateTime too far")
            sub_id = secrets.token_hex(8)
            self.subscriptions[sub_id] = {**request, "id": sub_id, "owner": user.email}
            return 201, {}, dict(self.subscriptions[sub_id])
        if len(parts) == 4:
            sub_id = parts[3]
            found = self.subscriptions.get(sub_id)
            if found is None or found["owner"] != user.email:
                return 404, {}, _graph_error("ResourceNotFound", "subscription not found")
            if method == "PATCH":
                found["expirationDateTime"] = json.loads(body)["expirationDateTime"]
                found["renewals"] = found.get("renewals", 0) + 1
                return 200, {}, dict(found)
            if method == "DELETE":
                del self.subscriptions[sub_id]
                return 204, {}, None
        return 405, {}, _graph_error("MethodNotAllowed", method)


def _aad_error(error: str, code: int, message: str) -> dict[str, Any]:
    return {
        "error": error,
        "error_description": f"AADSTS{code}: {message} Trace ID: {secrets.token_hex(8)}",
        "error_codes": [code],
        "timestamp": iso(datetime.now(UTC)),
        "trace_id": secrets.token_hex(8),
        "correlation_id": secrets.token_hex(8),
        "suberror": "bad_token" if code == 70008 else "",
    }


def _graph_error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "innerError": {}}}


def _parse(value: dict[str, str]) -> datetime:
    return datetime.strptime(value["dateTime"][:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)


def _parse_iso(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


class _Handler(BaseHTTPRequestHandler):
    emulator: MicrosoftEmulator
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        return

    def _answer(
        self, status: int, body: dict[str, Any] | None, headers: dict[str, str] | None = None
    ) -> None:
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self, method: str) -> None:
        split = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        emulator = self.emulator
        path = split.path
        if path.startswith("/v1.0/"):
            status, extra, answer = emulator.graph_request(method, path, query, headers, body)
            self._answer(status, answer, extra)
            return
        parts = path.strip("/").split("/")
        if method == "GET" and path.endswith("/v2.0/.well-known/openid-configuration"):
            self._answer(200, emulator.openid_configuration(parts[0]))
        elif method == "GET" and path.endswith("/oauth2/v2.0/authorize"):
            self._answer(302, None, {"Location": emulator._authorize(query, None)})
        elif method == "POST" and path.endswith("/oauth2/v2.0/token"):
            form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
            status, answer = emulator.token(parts[0], form)
            self._answer(status, answer)
        else:
            self._answer(404, {"error": "not_found"})

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_DELETE(self) -> None:
        self._handle("DELETE")
