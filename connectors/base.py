"""The contract between connectors/ and app/. Nothing in connectors/ touches the database.

A connector fetches from one provider account and parses what it fetched into plain frozen
dataclasses. It yields `Page`s; each page carries the opaque cursor that resumes *after* it,
so the sync runner can store the page's rows and that cursor in one transaction. Pages may
repeat items (after a crash, a cursor reset or a UIDVALIDITY change): ingest is idempotent.

Errors are translated at the edge into the four types below, so app/ never sees an SDK's
exception classes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable

FolderRole = Literal["inbox", "sent", "other"]


@dataclass(frozen=True, slots=True)
class Address:
    email: str  # lower-cased, trimmed
    name: str | None = None  # RFC 2047 decoded display name


@dataclass(frozen=True, slots=True)
class RemoteMessage:
    """One message as one mailbox holds it: headers only, plus a lazily decoded text body.
    No text field holds a NUL character (no database text column can store one)."""

    source_id: str  # stable, unique in one connection (folder/uidvalidity/uid, content hash…)
    folder_role: FolderRole  # where this copy sits: its owner is a recipient unless "sent"
    message_id: str | None  # Message-ID, trimmed, angle brackets removed
    date: datetime | None  # Date header in UTC; None when missing or unparsable
    date_header: str  # the raw Date header ("" when missing): part of the fallback identity
    provider_date: datetime | None  # INTERNALDATE / internalDate / receivedDateTime, UTC
    subject: str
    sender: Address | None
    to: tuple[Address, ...] = ()
    cc: tuple[Address, ...] = ()
    bcc: tuple[Address, ...] = ()
    # the raw values of the headers that decide whether mail is automated, lower-case names
    headers: Mapping[str, str] = field(default_factory=dict)
    content_type: str = "text/plain"  # top-level MIME type, lower-cased, no parameters
    calendar_method: str | None = None  # METHOD of a text/calendar part (REQUEST, REPLY, CANCEL…)
    body: bytes | None = None  # raw body bytes (possibly truncated) for signature extraction


Response = Literal["accepted", "declined", "tentative", "needs-action", "delegated"]
AttendeeKind = Literal["individual", "group", "resource", "room", "unknown"]


@dataclass(frozen=True, slots=True)
class Attendee:
    email: str  # lower-cased, `mailto:` removed
    name: str | None = None  # CN
    response: Response = "needs-action"  # PARTSTAT, lower-cased; unknown values: needs-action
    kind: AttendeeKind = "individual"  # CUTYPE, lower-cased; unknown values: unknown


@dataclass(frozen=True, slots=True)
class RemoteEvent:
    """One occurrence of a calendar event as one calendar holds it (a recurring series gives
    one RemoteEvent per occurrence in the sync window, moved ones at their new time)."""

    source_id: str  # unique in one connection: resource + UID + original start of the occurrence
    uid: str  # iCalendar UID (Google iCalUID, Graph iCalUId): shared by every copy of the event
    recurrence_id: datetime | None  # the occurrence's original start in UTC; None: not recurring
    start: datetime  # UTC; for an all-day event, midnight UTC of its date
    end: datetime  # UTC; DTEND, else DTSTART + DURATION, else start (+1 day when all-day)
    all_day: bool  # DTSTART is a DATE
    status: str  # STATUS lower-cased: "confirmed" (the default), "tentative" or "cancelled"
    summary: str
    location: str
    description: str
    conference: tuple[str, ...]  # join URLs, phone entry points, tel: URIs (CONFERENCE, X-…)
    organizer: Address | None
    attendees: tuple[Attendee, ...]
    created: datetime | None  # CREATED, else DTSTAMP (UTC): when the meeting was scheduled
    version: str  # changes whenever the stored event changes (ETag, SEQUENCE, LAST-MODIFIED…)


@dataclass(frozen=True, slots=True)
class CalendarObject:
    """One calendar resource (a .ics file on a CalDAV server, one provider event series) as it
    stands now: `events` are all its occurrences inside `window`; any occurrence stored before
    for this resource inside that window and missing now was deleted or moved away.
    `deleted`: the resource itself is gone (events is then empty)."""

    resource: str  # unique in one connection: the CalDAV href, the provider's series id…
    events: tuple[RemoteEvent, ...] = ()
    window: tuple[datetime, datetime] | None = None  # None: all time
    deleted: bool = False


@dataclass(frozen=True, slots=True)
class Failure:
    """An item the connector fetched but could not read: recorded with its reason, sync goes on."""

    source_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class Page:
    messages: tuple[RemoteMessage, ...] = ()
    calendar: tuple[CalendarObject, ...] = ()
    failures: tuple[Failure, ...] = ()  # source_id of a calendar failure: its resource
    cursor: str | None = None  # resume point once this page is stored; None: keep the old one


class Connector(Protocol):
    name: ClassVar[str]  # the key of this connector's cursor on the connection

    def check(self) -> None:
        """Make one cheap authenticated call; raise AuthExpired if the credentials are refused."""
        ...

    def pull(self, cursor: str | None, *, since: datetime) -> Iterator[Page]:
        """Yield every change after `cursor`, or everything after `since` when there is none.

        The connector opens and closes its own network connection inside the generator.
        """
        ...


@runtime_checkable
class WidensHistory(Protocol):
    """A connector whose window can later reach further back than its first pull did.

    Its cursor records the stretch of history it covers. Given `history_from` earlier than
    that, a pull fetches only what lies in the gap, then records the wider stretch. The runner
    passes `history_from` (the connection's `config.history_from`, which POST
    /connections/{id}/backfill sets) only to a connector that says `widens_history = True`;
    others are called as `Connector.pull` says. `since` keeps its meaning, the instance's
    default window start, so a cursor written before the connector recorded its stretch can be
    taken to cover at least that much."""

    widens_history: ClassVar[bool]

    def pull(
        self, cursor: str | None, *, since: datetime, history_from: datetime | None = None
    ) -> Iterator[Page]:
        """As Connector.pull, the window starting at the earlier of `since` and
        `history_from`."""
        ...


def widens_history(connector: object) -> bool:
    """Whether `connector` (an instance or a class) takes `history_from` (WidensHistory)."""
    return getattr(connector, "widens_history", False) is True


def sync_window(
    since: datetime,
    past: timedelta,
    future: timedelta,
    history_from: datetime | None = None,
) -> tuple[datetime, datetime]:
    """The stretch a calendar connector syncs: from `past` ago (never before `since`, the
    runner's backfill limit; but from `history_from` when that is earlier: a widened window,
    WidensHistory) to `future` ahead, in UTC, to the second."""
    now = datetime.now(UTC).replace(microsecond=0)
    start = max(now - past, _aware(since))
    if history_from is not None:
        start = min(start, _aware(history_from))
    return start, now + future


def _aware(moment: datetime) -> datetime:
    """In UTC; a time without an offset is taken as UTC."""
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def iso_moment(value: object) -> datetime | None:
    """An ISO 8601 time from a provider's JSON (`…Z` included) in UTC; a time without an
    offset is taken as UTC; None when missing or unreadable."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def push_terms(address: str, token: str) -> str:
    """A fingerprint of where a push subscription delivers and the token it echoes, kept with
    the subscription's state: when either changes (a new public URL, a rotated push secret)
    the subscription is made again, since providers renew a subscription on its old terms."""
    return hashlib.sha256(f"{address}\n{token}".encode()).hexdigest()[:16]


def dump_cursor(state: Mapping[str, Any]) -> str:
    """A connector's cursor state as the compact, stable JSON text a Page carries."""
    return json.dumps(state, separators=(",", ":"), sort_keys=True)


@runtime_checkable
class RefreshesCredentials(Protocol):
    """A connector whose provider issues new credentials while it syncs (a rotated refresh
    token, a serialized MSAL token cache). The runner asks after every page and at the end of
    the run, and stores what it gets (merged over the stored secret, encrypted) in the same
    transaction as the page, so only the worker holding the connection ever writes it."""

    def fresh_secret(self) -> Mapping[str, Any] | None:
        """Secret fields changed since the last call, or None when nothing changed."""
        ...


class ConnectorError(Exception):
    """Anything else the provider did wrong; retried on a later run with backoff."""


class AuthExpired(ConnectorError):
    """Credentials refused. Retrying will not help; the user must reconnect."""


class CursorExpired(ConnectorError):
    """The provider forgot our cursor; the runner drops it and starts that connector afresh."""


class RateLimited(ConnectorError):
    def __init__(self, retry_after: float, message: str = "") -> None:
        super().__init__(message or f"rate limited; retry after {retry_after:.0f}s")
        self.retry_after = retry_after
