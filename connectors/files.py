"""Mailbox files (mbox, maildir) and .ics files as connectors, so imports run through the
same pipeline.

Each message's source id is the SHA-256 of its bytes: importing the same file twice, or the
same message from two files, yields the same ids and so changes nothing. Likewise each .ics
file's resource id is "ics:" + the SHA-256 of its bytes, not its path: an upload lands at a
different temporary path each time, while the same export must map to the same resource.
"""

from __future__ import annotations

import hashlib
import mailbox
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import ClassVar, Literal

from connectors.base import CalendarObject, Failure, FolderRole, Page, RemoteMessage
from connectors.calendar.ics import UnreadableCalendar, read_calendar_parts
from connectors.mail import UnreadableMessage, content_hash, parse_full

FileKind = Literal["mbox", "maildir"]


def _open(path: Path, kind: FileKind) -> mailbox.Mailbox:
    if kind == "mbox":
        return mailbox.mbox(path, create=False)
    return mailbox.Maildir(path, factory=None, create=False)


def _delivery_date(message: mailbox.Message) -> datetime | None:
    """When the mailbox got the message (maildir file time, mbox `From ` line): the fallback
    when the Date header is missing or unparsable."""
    if isinstance(message, mailbox.MaildirMessage):
        return datetime.fromtimestamp(message.get_date(), UTC)
    from_line = message.get_from() if isinstance(message, mailbox.mboxMessage) else ""
    parts = from_line.split(None, 1)
    if len(parts) < 2:
        return None
    try:
        moment = parsedate_to_datetime(parts[1])
    except (TypeError, ValueError, IndexError):
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class MailFileConnector:
    """Reads mbox files or maildir folders; `own_addresses` tell the owner's sent copies."""

    name: ClassVar[str] = "import"

    def __init__(
        self,
        paths: Sequence[Path],
        *,
        kind: FileKind,
        own_addresses: frozenset[str],
        page_size: int = 500,
    ) -> None:
        self.paths = list(paths)
        self.kind = kind
        self.own_addresses = own_addresses
        self.page_size = page_size

    def check(self) -> None:
        for path in self.paths:
            if not path.exists():
                raise FileNotFoundError(path)

    def count(self) -> int:
        return sum(len(_open(p, self.kind)) for p in self.paths)

    def _role(self, parsed: RemoteMessage, raw: bytes, path: Path) -> FolderRole:
        head = raw[:8192].lower()
        if b"\nx-gmail-labels:" in head:  # Google Takeout marks sent mail with a label
            labels = head.split(b"\nx-gmail-labels:", 1)[1].split(b"\n", 1)[0]
            return "sent" if b"sent" in labels else "inbox"
        if "sent" in path.name.lower():
            return "sent"
        if parsed.sender is not None and parsed.sender.email in self.own_addresses:
            return "sent"
        return "inbox"

    def _read(self, box: mailbox.Mailbox, key: str, path: Path) -> RemoteMessage:
        raw = box.get_bytes(key)
        parsed = parse_full(raw, source_id=content_hash(raw), folder_role="inbox")
        parsed = replace(parsed, folder_role=self._role(parsed, raw, path))
        if parsed.date is None:  # only then is the delivery date worth a second parse
            parsed = replace(parsed, provider_date=_delivery_date(box.get_message(key)))
        return parsed

    def pull(self, cursor: str | None, *, since: datetime) -> Iterator[Page]:
        del cursor, since  # an import reads everything it is given; ids make it idempotent
        messages: list[RemoteMessage] = []
        failures: list[Failure] = []
        for path in self.paths:
            box = _open(path, self.kind)
            for key in box.iterkeys():
                try:
                    messages.append(self._read(box, key, path))
                except UnreadableMessage as error:
                    failures.append(Failure(content_hash(box.get_bytes(key)), str(error)))
                if len(messages) + len(failures) >= self.page_size:
                    yield Page(messages=tuple(messages), failures=tuple(failures))
                    messages, failures = [], []
        if messages or failures:
            yield Page(messages=tuple(messages), failures=tuple(failures))


EARLIEST_EVENT = datetime(1900, 1, 1, tzinfo=UTC)


class IcsFileConnector:
    """Reads .ics files, and directories of them (recursively): one CalendarObject per file.

    `window` bounds the expansion of recurring series; by default from `since` to a year ahead.
    A file that cannot be read becomes a Failure; a file with some broken series keeps the
    good ones and also reports a Failure with the reasons for the rest.
    """

    name: ClassVar[str] = "import"

    def __init__(
        self,
        paths: Sequence[Path],
        *,
        window: tuple[datetime, datetime] | None = None,
        page_size: int = 50,
    ) -> None:
        self.paths = list(paths)
        self.window = window
        self.page_size = page_size

    def check(self) -> None:
        for path in self.paths:
            if not path.exists():
                raise FileNotFoundError(path)

    def files(self) -> list[Path]:
        found: list[Path] = []
        for path in self.paths:
            if path.is_dir():
                found += sorted(p for p in path.rglob("*") if p.suffix.lower() == ".ics")
            else:
                found.append(path)
        return found

    def pull(self, cursor: str | None, *, since: datetime) -> Iterator[Page]:
        del cursor  # an import reads everything it is given; ids make it idempotent
        # `since` may be datetime.min (an import of all history): expanding a series from there
        # overflows, so the window starts no earlier than EARLIEST_EVENT
        since = since if since.tzinfo else since.replace(tzinfo=UTC)
        start = max(since, EARLIEST_EVENT)
        window = self.window or (start, datetime.now(UTC) + timedelta(days=365))
        objects: list[CalendarObject] = []
        failures: list[Failure] = []
        for path in self.files():
            data = path.read_bytes()
            digest = hashlib.sha256(data).hexdigest()
            resource = f"ics:{digest}"
            try:
                calendar, reasons = read_calendar_parts(
                    data, resource=resource, window=window, version=digest[:16]
                )
            except UnreadableCalendar as error:
                failures.append(Failure(resource, f"{path.name}: {error}"))
            else:
                objects.append(calendar)
                if reasons:
                    failures.append(Failure(resource, f"{path.name}: " + "; ".join(reasons)))
            if len(objects) + len(failures) >= self.page_size:
                yield Page(calendar=tuple(objects), failures=tuple(failures))
                objects, failures = [], []
        if objects or failures:
            yield Page(calendar=tuple(objects), failures=tuple(failures))
