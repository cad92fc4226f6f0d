"""Mailbox files (mbox, maildir) as a connector, so imports run through the same pipeline.

Each message's source id is the SHA-256 of its bytes: importing the same file twice, or the
same message from two files, yields the same ids and so changes nothing.
"""

from __future__ import annotations

import mailbox
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import ClassVar, Literal

from connectors.base import Failure, FolderRole, Page, RemoteMessage
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
