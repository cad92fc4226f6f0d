"""IMAP connector (imapclient): headers plus a body prefix from the inbox and the sent folder.

Per-folder state machine. The cursor is JSON, one entry per folder:

    {"INBOX": {"uidvalidity": 1795, "last_uid": 4120, "backfill_below": 3871, "modseq": null,
               "history_top": 3990, "covered_from": "2025-12-07", "backfill_before": null}}

- New folder (no entry), or UIDVALIDITY differs from the entry: every stored UID is meaningless.
  Record `last_uid = UIDNEXT - 1` *before* reading anything (the incremental boundary) and
  `backfill_below = last_uid + 1`. Old copies come again under new source ids; ingest is
  idempotent, and the messages' own identity (Message-ID, Date) links them up.
- Backfill (`backfill_below` not null): UIDs below `backfill_below` whose INTERNALDATE is on or
  after the `covered_from` day (the window's start when it began), newest first, `batch_size`
  per page. Each page lowers `backfill_below` to the lowest UID it holds; the last one sets it
  to null. A resumed run picks up below it.
- Incremental (always, backfill or not): UIDs above `last_uid`, ascending, `batch_size` per page;
  each page raises `last_uid`. The page that finishes the pass also records HIGHESTMODSEQ from
  the same SELECT, so a modseq is never stored for mail we have not read (twenty#24826).
  A folder whose STATUS shows the stored modseq, or a UIDNEXT no higher than `last_uid + 1`,
  is skipped without a SELECT.
- Widening: each entry also records the stretch of history it covers: `history_top` (UIDs up to
  it are history, read by date; every UID above it is read by the incremental pass) and
  `covered_from` (the INTERNALDATE day history is read from, once the backfill under way ends).
  Given `history_from` earlier than `covered_from`, a backfill of the gap starts once no other is
  under way: UIDs up to `history_top` dated SINCE `history_from` BEFORE `covered_from`
  (`backfill_before`), so nothing read before is fetched again; then `covered_from` is the new
  day. A cursor from before these fields covers at least the default window (`since`).

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
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import datetime
from typing import ClassVar, Literal

from imapclient import IMAPClient
from imapclient.exceptions import CapabilityError, LoginError

from connectors.base import AuthExpired, ConnectorError, Page
from connectors.imap.cursor import decode_cursor
from connectors.imap.pull import Pull as _Pull
from connectors.imap.structure import calendar_method
from connectors.imap.transport import ConnectTimeout, GuardedIMAPClient
from connectors.netguard import BlockedAddress

__all__ = ["ImapConnector", "_Pull", "calendar_method", "decode_cursor"]

log = logging.getLogger(__name__)

Security = Literal["ssl", "starttls", "none"]

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
    widens_history: ClassVar[bool] = True  # connectors.base.WidensHistory

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

    def pull(
        self, cursor: str | None, *, since: datetime, history_from: datetime | None = None
    ) -> Iterator[Page]:
        states = decode_cursor(cursor)
        with self._session() as client:
            yield from _Pull(self, client, states, since, history_from).pages()

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
