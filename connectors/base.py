"""The contract between connectors/ and app/. Nothing in connectors/ touches the database.

A connector fetches from one provider account and parses what it fetched into plain frozen
dataclasses. It yields `Page`s; each page carries the opaque cursor that resumes *after* it,
so the sync runner can store the page's rows and that cursor in one transaction. Pages may
repeat items (after a crash, a cursor reset or a UIDVALIDITY change): ingest is idempotent.

Errors are translated at the edge into the four types below, so app/ never sees an SDK's
exception classes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar, Literal, Protocol

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


@dataclass(frozen=True, slots=True)
class Failure:
    """An item the connector fetched but could not read: recorded with its reason, sync goes on."""

    source_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class Page:
    messages: tuple[RemoteMessage, ...] = ()
    failures: tuple[Failure, ...] = ()
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
