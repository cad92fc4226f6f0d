"""Which IMAP folders to read: the inbox and the sent folder (SPECIAL-USE, else by name), or
the configured ones; never drafts, junk or trash."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from connectors.base import FolderRole

log = logging.getLogger(__name__)

# Without SPECIAL-USE, the names servers and clients commonly give the sent folder, in order.
SENT_FALLBACKS = ("Sent", "Sent Items", "Sent Messages", "[Gmail]/Sent Mail", "INBOX.Sent")
# Never read, even when configured: drafts are not sent mail, junk and trash are not activity.
_SKIPPED_FLAGS = frozenset({"\\drafts", "\\junk", "\\trash"})
_SKIPPED_NAMES = frozenset(
    {"drafts", "trash", "junk", "spam", "deleted items", "deleted messages", "junk e-mail"}
)
_UNSELECTABLE_FLAGS = frozenset({"\\noselect", "\\nonexistent"})


@dataclass(frozen=True, slots=True)
class Folder:
    name: str
    role: FolderRole


def choose_folders(
    listing: Mapping[str, set[str]], configured: Sequence[str] | None, *, host: str
) -> list[Folder]:
    """The folders to read, from LIST (name -> lower-cased flags), each with its role."""
    by_lower = {name.lower(): name for name in listing}
    inbox = by_lower.get("inbox", "INBOX")
    sent = sent_folder(listing, by_lower)
    wanted = configured or [inbox, *([sent] if sent else [])]
    folders: list[Folder] = []
    # configured names match case-insensitively ("inbox" is INBOX); each folder once
    for name in dict.fromkeys(by_lower.get(n.lower(), n) for n in wanted):
        flags = listing.get(name)
        if flags is None or flags & _UNSELECTABLE_FLAGS:
            log.warning("IMAP folder %r does not exist on %s; skipped", name, host)
        elif flags & _SKIPPED_FLAGS or looks_skipped(name):
            log.info("IMAP folder %r is drafts, junk or trash; never read", name)
        else:
            role: FolderRole = "inbox" if name == inbox else "sent" if name == sent else "other"
            folders.append(Folder(name, role))
    return folders


def sent_folder(listing: Mapping[str, set[str]], by_lower: Mapping[str, str]) -> str | None:
    for name, flags in listing.items():
        if "\\sent" in flags:
            return name
    for candidate in SENT_FALLBACKS:
        if candidate.lower() in by_lower:
            return by_lower[candidate.lower()]
    return None


def looks_skipped(name: str) -> bool:
    """Drafts, junk or trash by name, for servers without SPECIAL-USE flags."""
    lowered = name.lower()
    return lowered in _SKIPPED_NAMES or re.split(r"[/.]", lowered)[-1] in _SKIPPED_NAMES
