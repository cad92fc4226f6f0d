"""IMAP connector (imapclient): headers plus a body prefix from the inbox and the sent folder.

Per-folder state machine. The cursor is JSON, one entry per folder:

    {"INBOX": {"uidvalidity": 1795, "last_uid": 4120, "backfill_below": 3871, "modseq": null}}

- New folder (no entry), or UIDVALIDITY differs from the entry: every stored UID is meaningless.
  Record `last_uid = UIDNEXT - 1` *before* reading anything (the incremental boundary) and
  `backfill_below = last_uid + 1`. Old copies come again under new source ids; ingest is
  idempotent, and the messages' own identity (Message-ID, Date) links them up.
- Backfill (`backfill_below` not null): UIDs below `backfill_below` whose INTERNALDATE is on or
  after the `since` day, newest first, `batch_size` per page. Each page lowers `backfill_below`
  to the lowest UID it holds; the last one sets it to null. A resumed run picks up below it.
- Incremental (always, backfill or not): UIDs above `last_uid`, ascending, `batch_size` per page;
  each page raises `last_uid`. The page that finishes the pass also records HIGHESTMODSEQ from
  the same SELECT, so a modseq is never stored for mail we have not read (twenty#24826).
  A folder whose STATUS shows the stored modseq, or a UIDNEXT no higher than `last_uid + 1`,
  is skipped without a SELECT.

One pull runs the incremental pass over every folder first, so fresh mail is not held up behind
a long backfill, then the backfills. Every page carries the cursor of *all* folders, valid once
that page is stored. Folders are only EXAMINEd (read-only) and bodies fetched with BODY.PEEK, so
the connector never changes a flag.
"""

from __future__ import annotations

import imaplib
import logging
import re
import socket
import ssl
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, date, datetime
from typing import Any, ClassVar, Literal

from imapclient import IMAPClient
from imapclient.exceptions import CapabilityError, LoginError, ProtocolError

from connectors.base import (
    AuthExpired,
    ConnectorError,
    Failure,
    FolderRole,
    Page,
    RemoteMessage,
)
from connectors.imap.cursor import (
    FolderState,
    Snapshot,
    batched,
    decode_cursor,
    encode_cursor,
    first_sight,
)
from connectors.imap.folders import Folder, choose_folders
from connectors.imap.structure import calendar_method, text
from connectors.imap.transport import ConnectTimeout, GuardedIMAPClient
from connectors.mail import FETCHED_HEADERS, UnreadableMessage, parse_headers
from connectors.netguard import BlockedAddress

log = logging.getLogger(__name__)

Security = Literal["ssl", "starttls", "none"]

# imaplib refuses any response line over 1,000,000 bytes, and one SEARCH answer is one line:
# 50,000 UIDs of up to 10 digits stay well under it however large the mailbox.
_SEARCH_WINDOW = 50_000
# The test parse_full applies: a header block with none of these filled in is not a message.
_IDENTITY = re.compile(rb"^(from|sender|to|date|message-id)[ \t]*:[ \t]*\S", re.I | re.M)
# What imapclient raises on a FETCH answer it cannot parse, as opposed to a server or network error
_PARSE_ERRORS = (ProtocolError, ValueError, IndexError)
_BYTES_REPR = re.compile(r"""^b(['"])(.*)\1$""", re.DOTALL)


def _server_text(error: BaseException) -> str:
    """An exception's text without the b'…' wrapping imaplib leaves around server responses."""
    if error.args and isinstance(error.args[0], bytes):
        return error.args[0].decode("utf-8", "replace")
    text = str(error) or type(error).__name__  # OSError: "[Errno 104] Connection reset…"
    match = _BYTES_REPR.match(text)
    return match.group(2) if match else text


def _close(client: IMAPClient, *, logout: bool) -> None:
    """LOGOUT when the connection is healthy, else just drop it; closing never raises."""
    if logout:
        try:
            client.logout()  # imaplib closes the socket after LOGOUT
            return
        except Exception:
            pass
    with suppress(Exception):
        client.shutdown()


class ImapConnector:
    name: ClassVar[str] = "imap"

    def __init__(
        self,
        *,
        host: str,
        port: int,
        username: str,
        password: str,
        security: Security = "ssl",
        folders: Sequence[str] | None = None,
        batch_size: int = 250,
        timeout: float = 60.0,
        body_bytes: int = 8192,
        connect_timeout: float = 10.0,
        allowed_hosts: Sequence[str] | None = None,
    ) -> None:
        """`timeout` bounds each read; `connect_timeout` the TCP connect. `allowed_hosts`:
        None connects anywhere; a list (the app always gives one) refuses non-public
        addresses but those listed (connectors.netguard)."""
        if security not in ("ssl", "starttls", "none"):
            raise ValueError(f"security must be ssl, starttls or none, not {security!r}")
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.host = host
        self.port = port
        self.username = username
        self._password = password
        self.security: Security = security
        self.folders = list(folders) if folders else None
        self.batch_size = batch_size
        self.timeout = timeout
        self.body_bytes = max(body_bytes, 0)
        self.connect_timeout = connect_timeout
        self.allowed_hosts = None if allowed_hosts is None else list(allowed_hosts)

    def __repr__(self) -> str:  # the password stays out of logs and tracebacks
        return f"ImapConnector({self.username}@{self.host}:{self.port}, {self.security})"

    def check(self) -> None:
        with self._session() as client:
            client.noop()

    def pull(self, cursor: str | None, *, since: datetime) -> Iterator[Page]:
        states = decode_cursor(cursor)
        with self._session() as client:
            yield from _Pull(self, client, states, since).pages()

    # -- the edge: connecting, and turning every transport or server error into ours -----------

    @contextmanager
    def _session(self) -> Iterator[IMAPClient]:
        client: IMAPClient | None = None
        healthy = True
        try:
            client = self._connect()
            yield client
        except (OSError, imaplib.IMAP4.error) as error:
            healthy = False
            raise self._translate(error) from (None if isinstance(error, LoginError) else error)
        except BlockedAddress as error:  # never contacted: nothing to tell about the port
            healthy = False
            raise ConnectorError(f"Not connecting to the IMAP server: {error}") from None
        finally:
            if client is not None:
                _close(client, logout=healthy)

    def _connect(self) -> IMAPClient:
        context = ssl.create_default_context() if self.security != "none" else None
        client = GuardedIMAPClient(
            self.host,
            port=self.port,
            ssl=self.security == "ssl",
            ssl_context=context if self.security == "ssl" else None,
            connect_timeout=self.connect_timeout,
            read_timeout=self.timeout,
            allowed=self.allowed_hosts,
        )
        try:
            if self.security == "starttls":
                client.starttls(context)
            client.login(self.username, self._password)
        except BaseException:
            _close(client, logout=False)
            raise
        client.normalise_times = False  # INTERNALDATE with its zone, not naive local time
        return client

    def _translate(self, error: BaseException) -> ConnectorError:
        where = f"{self.host}:{self.port}"
        text = _server_text(error)
        if self._password:
            text = text.replace(self._password, "***")
        if isinstance(error, LoginError):
            # imapclient wraps *any* error during LOGIN, a dropped connection included
            cause = error.__context__
            if isinstance(cause, OSError | imaplib.IMAP4.abort):
                return self._translate(cause)
            if "[UNAVAILABLE]" in text.upper():  # RFC 5530: a temporary failure on their side
                return ConnectorError(f"The IMAP server at {where} cannot log in now: {text}")
            return AuthExpired(f"The IMAP server refused the username or password: {text}")
        if isinstance(error, CapabilityError):
            return ConnectorError(f"The IMAP server at {where} lacks a capability: {text}")
        if isinstance(error, ssl.SSLCertVerificationError):
            return ConnectorError(f"The TLS certificate of {where} is not trusted: {text}")
        if isinstance(error, ssl.SSLError):
            return ConnectorError(f"TLS with the IMAP server at {where} failed: {text}")
        if isinstance(error, ConnectionRefusedError):
            return ConnectorError(f"The IMAP server at {where} refused the connection")
        if isinstance(error, socket.gaierror):
            return ConnectorError(f"The IMAP host {self.host!r} could not be resolved: {text}")
        if isinstance(error, ConnectTimeout):
            return ConnectorError(
                f"The IMAP server at {where} did not accept a connection in {self.connect_timeout}s"
            )
        if isinstance(error, TimeoutError):
            return ConnectorError(f"The IMAP server at {where} did not answer in {self.timeout}s")
        if isinstance(error, OSError):
            return ConnectorError(f"Network error with the IMAP server at {where}: {text}")
        if isinstance(error, imaplib.IMAP4.abort):
            return ConnectorError(f"The IMAP server at {where} dropped the connection: {text}")
        return ConnectorError(f"The IMAP server at {where} returned an error: {text}")


class _Pull:
    """One pull over one logged-in connection: the state machine of the module docstring."""

    def __init__(
        self,
        connector: ImapConnector,
        client: IMAPClient,
        states: dict[str, FolderState],
        since: datetime,
    ) -> None:
        self.connector = connector
        self.client = client
        self.states = states  # entries of folders no longer synced are kept as they are
        # IMAP SINCE takes a day, not an instant: the window opens at midnight of that day
        self.since_day = _utc(since).date()
        self.condstore = False
        self.last_cursor = encode_cursor(states)
        self.items = self._fetch_items()

    def _fetch_items(self) -> list[str]:
        fields = " ".join(name.upper() for name in FETCHED_HEADERS)
        items = ["UID", "INTERNALDATE", "FLAGS", "BODYSTRUCTURE"]
        items.append(f"BODY.PEEK[HEADER.FIELDS ({fields})]")
        if self.connector.body_bytes:
            items.append(f"BODY.PEEK[TEXT]<0.{self.connector.body_bytes}>")
        return items

    def pages(self) -> Iterator[Page]:
        folders = self._folders()
        # Before any SELECT (RFC 5161), or servers may leave HIGHESTMODSEQ out (iCloud)
        if self.client.has_capability("CONDSTORE") and self.client.has_capability("ENABLE"):
            self.condstore = b"CONDSTORE" in (self.client.enable("CONDSTORE") or [])
        for folder in folders:
            yield from self._incremental(folder)
        for folder in folders:
            yield from self._backfill(folder)
        if encode_cursor(self.states) != self.last_cursor:  # e.g. a new, empty folder
            yield self._page([], [])

    def _page(self, messages: list[RemoteMessage], failures: list[Failure]) -> Page:
        self.last_cursor = encode_cursor(self.states)
        return Page(messages=tuple(messages), failures=tuple(failures), cursor=self.last_cursor)

    # -- folders -------------------------------------------------------------------------------

    def _folders(self) -> list[Folder]:
        listing = {
            str(name): {text(flag).lower() for flag in flags}
            for flags, _delimiter, name in self.client.list_folders()
        }
        return choose_folders(listing, self.connector.folders, host=self._host)

    @property
    def _host(self) -> str:
        return f"{self.connector.host}:{self.connector.port}"

    # -- the two passes ------------------------------------------------------------------------

    def _incremental(self, folder: Folder) -> Iterator[Page]:
        state = self.states.get(folder.name)
        status = self._status(folder.name)
        if state is None or state.uidvalidity != status.uidvalidity:
            # Nothing to read above the new boundary yet; the backfill reads what lies below.
            self.states[folder.name] = first_sight(status)
            return
        if status.uidnext <= state.last_uid + 1 or (
            state.modseq is not None and status.modseq == state.modseq
        ):
            return  # no UID above last_uid can exist: skip the SELECT
        selected = self._select(folder.name)
        if selected.uidvalidity != state.uidvalidity:  # changed between STATUS and SELECT
            self.states[folder.name] = first_sight(selected)
            return
        top = selected.uidnext - 1
        for batch, last in batched(
            self._search(state.last_uid + 1, top), self.connector.batch_size
        ):
            messages, failures = self._fetch(folder, selected.uidvalidity, batch)
            state.last_uid = max(state.last_uid, batch[-1])
            state.modseq = None  # a page mid-pass must not claim the folder is caught up
            if last:
                self._finish_incremental(state, selected)
            yield self._page(messages, failures)
        # Also when nothing was new (only expunged UIDs, or only flags changed): remembering
        # it lets the next STATUS skip this folder. That cursor rides on a later page.
        self._finish_incremental(state, selected)

    @staticmethod
    def _finish_incremental(state: FolderState, selected: Snapshot) -> None:
        # The whole range below SELECT's UIDNEXT was searched, gaps (expunged UIDs) included.
        state.last_uid = max(state.last_uid, selected.uidnext - 1)
        state.modseq = selected.modseq

    def _backfill(self, folder: Folder) -> Iterator[Page]:
        state = self.states.get(folder.name)
        if state is None or state.backfill_below is None:
            return
        selected = self._select(folder.name)
        if selected.uidvalidity != state.uidvalidity:  # changed since the incremental pass
            state = self.states[folder.name] = first_sight(selected)
        assert state.backfill_below is not None
        uids = self._search(1, state.backfill_below - 1, since=self.since_day, newest=True)
        for batch, last in batched(uids, self.connector.batch_size):
            messages, failures = self._fetch(folder, selected.uidvalidity, batch)
            state.backfill_below = None if last else min(batch)
            yield self._page(messages, failures)
        state.backfill_below = None  # also when nothing was in the window at all

    # -- IMAP commands -------------------------------------------------------------------------

    def _status(self, folder: str) -> Snapshot:
        """STATUS: the cheap look at a folder, without selecting it."""
        what = ["UIDVALIDITY", "UIDNEXT", *(["HIGHESTMODSEQ"] if self.condstore else [])]
        info = self.client.folder_status(folder, what)
        if not isinstance(info.get(b"UIDNEXT"), int):
            return self._select(folder)  # only a selected folder lets us work UIDNEXT out
        return self._snapshot(info)

    def _select(self, folder: str) -> Snapshot:
        info = dict(self.client.select_folder(folder, readonly=True))  # EXAMINE
        if not isinstance(info.get(b"UIDNEXT"), int):
            # RFC 3501 requires UIDNEXT but a few servers omit it: one past the highest UID
            highest = self.client.search(["UID", "*"]) if info.get(b"EXISTS") else []
            info[b"UIDNEXT"] = max(highest, default=0) + 1
        return self._snapshot(info)

    def _snapshot(self, info: Mapping[bytes, Any]) -> Snapshot:
        modseq = info.get(b"HIGHESTMODSEQ")
        return Snapshot(
            uidvalidity=int(info.get(b"UIDVALIDITY") or 0),
            uidnext=int(info[b"UIDNEXT"]),
            modseq=modseq if isinstance(modseq, int) and self.condstore else None,
        )

    def _search(
        self, low: int, high: int, *, since: date | None = None, newest: bool = False
    ) -> Iterator[int]:
        """UIDs in [low, high] (oldest or newest first), searched one window at a time.

        Ranges only: never a UID list on the command line. `a:b` with a > b means b:a in IMAP,
        and `n:*` answers the highest UID even below n, so results are filtered to the window.
        """
        windows = range(low, high + 1, _SEARCH_WINDOW)
        for start in reversed(windows) if newest else windows:
            end = min(high, start + _SEARCH_WINDOW - 1)
            criteria: list[Any] = ["UID", f"{start}:{end}"]
            if since is not None:
                criteria += ["SINCE", since]  # day-granular, by INTERNALDATE
            found = sorted(uid for uid in self.client.search(criteria) if start <= uid <= end)
            yield from reversed(found) if newest else found

    def _fetch(
        self, folder: Folder, uidvalidity: int, uids: list[int]
    ) -> tuple[list[RemoteMessage], list[Failure]]:
        responses, failures = self._fetch_responses(folder, uidvalidity, uids)
        messages: list[RemoteMessage] = []
        for uid in uids:
            data = responses.get(uid)
            if data is None:
                continue  # expunged between the SEARCH and the FETCH (or failed to parse)
            source_id = f"{folder.name}/{uidvalidity}/{uid}"
            try:
                message = self._message(data, source_id, folder.role)
            except Exception as error:  # one unreadable message must not stop the sync
                failures.append(Failure(source_id, f"{type(error).__name__}: {error}"))
                continue
            if message is not None:
                messages.append(message)
        return messages, failures

    def _fetch_responses(
        self, folder: Folder, uidvalidity: int, uids: list[int]
    ) -> tuple[dict[int, Any], list[Failure]]:
        """FETCH a batch; if imapclient cannot parse the answer, one UID at a time.

        A response imapclient cannot parse (odd BODYSTRUCTUREs exist) would otherwise fail the
        same batch on every run and stall the folder for good. Only parse errors are isolated:
        a NO from the server or a dropped connection still ends the run, to be retried.
        """
        try:
            return dict(self.client.fetch(uids, self.items)), []
        except _PARSE_ERRORS as error:
            if len(uids) == 1:
                reason = f"unparsable FETCH response: {type(error).__name__}: {error}"
                return {}, [Failure(f"{folder.name}/{uidvalidity}/{uids[0]}", reason)]
            batch_error = error
        responses: dict[int, Any] = {}
        failures: list[Failure] = []
        for uid in uids:
            found, failed = self._fetch_responses(folder, uidvalidity, [uid])
            responses.update(found)
            failures.extend(failed)
        if not responses:
            # Every message failing on its own is no odd message but a fault of ours or the
            # server's: recording them all as failures would skip them for good.
            raise ConnectorError(
                f"IMAP FETCH answers from {self._host} could not be read: {batch_error}"
            ) from batch_error
        return responses, failures

    def _message(
        self, data: Mapping[bytes, Any], source_id: str, role: FolderRole
    ) -> RemoteMessage | None:
        if any(text(flag).lower() == "\\draft" for flag in data.get(b"FLAGS") or ()):
            return None  # an unsent draft, wherever it is filed
        headers = _item(data, b"BODY[HEADER.FIELDS")
        if headers is None:
            raise UnreadableMessage("the server returned no headers")
        body = _item(data, b"BODY[TEXT]") if self.connector.body_bytes else None
        received = data.get(b"INTERNALDATE")
        message = parse_headers(
            headers,
            source_id=source_id,
            folder_role=role,
            provider_date=_utc(received) if isinstance(received, datetime) else None,
            body=body or None,
            calendar_method=calendar_method(data.get(b"BODYSTRUCTURE")),
        )
        if not _IDENTITY.search(headers):
            raise UnreadableMessage("no message headers found")
        return message


def _item(data: Mapping[bytes, Any], prefix: bytes) -> bytes | None:
    """A BODY[…] item by prefix: servers echo the section differently (e.g. `BODY[TEXT]<0>`)."""
    for key, value in data.items():
        if isinstance(key, bytes) and key.upper().startswith(prefix):
            return value if isinstance(value, bytes) else b""
    return None


def _utc(value: datetime) -> datetime:
    """Naive times are taken as UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)
