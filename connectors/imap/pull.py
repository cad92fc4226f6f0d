"""One pull over one logged-in IMAP connection: the state machine of connectors/imap/__init__.py."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from imapclient import IMAPClient
from imapclient.exceptions import ProtocolError

from connectors.base import ConnectorError, Failure, FolderRole, Page, RemoteMessage
from connectors.imap.cursor import (
    FolderState,
    Snapshot,
    adopt,
    batched,
    encode_cursor,
    first_sight,
    widen,
)
from connectors.imap.folders import Folder, choose_folders
from connectors.imap.structure import calendar_method, text
from connectors.mail import FETCHED_HEADERS, UnreadableMessage, parse_headers

if TYPE_CHECKING:
    from connectors.imap import ImapConnector

# imaplib refuses any response line over 1,000,000 bytes, and one SEARCH answer is one line:
# 50,000 UIDs of up to 10 digits stay well under it however large the mailbox.
_SEARCH_WINDOW = 50_000
# The test parse_full applies: a header block with none of these filled in is not a message.
_IDENTITY = re.compile(rb"^(from|sender|to|date|message-id)[ \t]*:[ \t]*\S", re.I | re.M)
# What imapclient raises on a FETCH answer it cannot parse, as opposed to a server or network error
_PARSE_ERRORS = (ProtocolError, ValueError, IndexError)


class Pull:
    """One pull over one logged-in connection."""

    def __init__(
        self,
        connector: ImapConnector,
        client: IMAPClient,
        states: dict[str, FolderState],
        since: datetime,
        history_from: datetime | None = None,
    ) -> None:
        self.connector = connector
        self.client = client
        self.states = states  # entries of folders no longer synced are kept as they are
        # IMAP SINCE takes a day, not an instant: the window opens at midnight of that day
        default = _utc(since).date()
        self.since_day = min(default, _utc(history_from).date()) if history_from else default
        self.condstore = False
        self.last_cursor = encode_cursor(states)
        for state in states.values():  # stored with the next page (one of its own at least)
            adopt(state, default)
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
            self.states[folder.name] = first_sight(status, self.since_day)
            return
        if status.uidnext <= state.last_uid + 1 or (
            state.modseq is not None and status.modseq == state.modseq
        ):
            return  # no UID above last_uid can exist: skip the SELECT
        selected = self._select(folder.name)
        if selected.uidvalidity != state.uidvalidity:  # changed between STATUS and SELECT
            self.states[folder.name] = first_sight(selected, self.since_day)
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
        """The backfill under way, then the gap a window widened since leaves, if any: UIDs
        of the folder's history dated in [covered_from, backfill_before), newest first."""
        state = self.states.get(folder.name)
        selected: Snapshot | None = None
        while state is not None and (
            state.backfill_below is not None or widen(state, self.since_day)
        ):
            if selected is None:
                selected = self._select(folder.name)
                if selected.uidvalidity != state.uidvalidity:  # changed since the incremental pass
                    state = self.states[folder.name] = first_sight(selected, self.since_day)
            assert state.backfill_below is not None and state.covered_from is not None
            uids = self._search(
                1,
                state.backfill_below - 1,
                since=state.covered_from,
                before=state.backfill_before,
                newest=True,
            )
            for batch, last in batched(uids, self.connector.batch_size):
                messages, failures = self._fetch(folder, selected.uidvalidity, batch)
                state.backfill_below = None if last else min(batch)
                if last:
                    state.backfill_before = None
                yield self._page(messages, failures)
            # also when nothing was in the window at all
            state.backfill_below = state.backfill_before = None

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
        self,
        low: int,
        high: int,
        *,
        since: date | None = None,
        before: date | None = None,
        newest: bool = False,
    ) -> Iterator[int]:
        """UIDs in [low, high] (oldest or newest first) dated on or after `since` and before
        `before` when given, searched one window at a time.

        Ranges only: never a UID list on the command line. `a:b` with a > b means b:a in IMAP,
        and `n:*` answers the highest UID even below n, so results are filtered to the window.
        """
        windows = range(low, high + 1, _SEARCH_WINDOW)
        for start in reversed(windows) if newest else windows:
            end = min(high, start + _SEARCH_WINDOW - 1)
            criteria: list[Any] = ["UID", f"{start}:{end}"]
            if since is not None:
                criteria += ["SINCE", since]  # day-granular, by INTERNALDATE
            if before is not None:  # SINCE d and BEFORE d split every message (RFC 3501 6.4.4)
                criteria += ["BEFORE", before]
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
