"""A Gmail message (messages.get) as a RemoteMessage, in either of the connector's two modes.

- Exact (gmail.readonly, the default): `format=full` with a `fields` mask that keeps the
  headers and the MIME tree and drops every body (`FULL_FIELDS`), in the one request per
  message the connector makes anyway. A text/calendar part with a METHOD anywhere in the tree
  makes the message calendar traffic (semantics §2), whoever sent it.
- Metadata only (gmail.metadata): `format=metadata`, headers only; Google refuses format=full
  under that scope. Only what the headers tell can be used: Google Calendar's sender, Exchange's
  Content-Class, a top-level text/calendar. An invitation sent by another calendar system as a
  text/calendar part of a multipart message is counted as an email.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from connectors.base import FolderRole, RemoteMessage
from connectors.mail import FETCHED_HEADERS, parse_fields

# What an IMAP header fetch reads (header names are case-insensitive), and Exchange's mark
METADATA_HEADERS = (*FETCHED_HEADERS, "content-class")
_WANTED = frozenset(METADATA_HEADERS)
# Levels of MIME parts below the top the mask asks for. Invitations put their text/calendar
# part at level 1 (Outlook: multipart/alternative) or 2 (multipart/mixed > alternative); 4
# leaves room for a multipart/related as well. Deeper parts are not sent, so not seen.
MIME_DEPTH = 4


def _tree_fields(depth: int) -> str:
    fields = "mimeType,headers"
    for _ in range(depth):
        fields = f"mimeType,headers,parts({fields})"
    return fields


# Partial responses (https://developers.google.com/workspace/gmail/api/guides/performance):
# everything the rules read and nothing else; `body` is never named, so no body data is sent.
FULL_FIELDS = f"id,labelIds,internalDate,payload({_tree_fields(MIME_DEPTH)})"
METADATA_FIELDS = "id,labelIds,internalDate,payload(mimeType,headers)"
# The metadata scope shows headers only. What they do show: Google Calendar sends invitations
# and answers with this Sender (or From), and Exchange marks meeting messages with
# `Content-Class: urn:content-classes:calendarmessage`.
CALENDAR_SENDERS = frozenset(
    {"calendar-notification@google.com", "calendar-notification@googlemail.com"}
)
_ANSWER = re.compile(r"^\s*(accepted|declined|tentatively accepted|updated rsvp)\b", re.IGNORECASE)
_CANCEL = re.compile(r"^\s*(cancel+ed event|canceled|cancelled)\b", re.IGNORECASE)
_METHOD = re.compile(r";\s*method\s*=\s*\"?([A-Za-z-]+)", re.IGNORECASE)
SKIPPED_LABELS = frozenset({"DRAFT", "SPAM", "TRASH", "CHAT"})


def to_message(data: Mapping[str, Any], *, metadata_only: bool = False) -> RemoteMessage | None:
    """A messages.get answer as a RemoteMessage; None when skipped. `metadata_only`: the
    answer is format=metadata (no MIME tree), so calendar traffic is told from the headers."""
    labels = set(data.get("labelIds") or ())
    if labels & SKIPPED_LABELS:
        return None
    role: FolderRole = "sent" if "SENT" in labels else "inbox" if "INBOX" in labels else "other"
    payload = data.get("payload") or {}
    fields: dict[str, list[str]] = {}
    for header in payload.get("headers") or ():  # format=full sends every header: keep ours
        name, value = str(header.get("name", "")).lower(), header.get("value")
        if name in _WANTED and isinstance(value, str):
            fields.setdefault(name, []).append(value)
    internal = str(data.get("internalDate") or "")
    provider_date = (
        datetime.fromtimestamp(int(internal) / 1000, UTC) if internal.isdigit() else None
    )
    return parse_fields(
        fields,
        source_id=str(data["id"]),
        folder_role=role,
        provider_date=provider_date,
        calendar_method=calendar_method(fields) if metadata_only else tree_method(payload),
    )


def _part_method(part: Mapping[str, Any]) -> str | None:
    """METHOD of a text/calendar part: the Content-Type's method parameter (RFC 6047 §2.4).
    Its body is not fetched, so a part without the parameter is not calendar traffic, as with
    IMAP's BODYSTRUCTURE (connectors/imap/structure.py)."""
    for header in part.get("headers") or ():
        if str(header.get("name", "")).lower() == "content-type":
            found = _METHOD.search(str(header.get("value", "")))
            return found.group(1).upper() if found else None
    return None


def tree_method(part: Mapping[str, Any]) -> str | None:
    """METHOD of the first text/calendar part in a Gmail MessagePart tree. Attached messages
    (message/rfc822) are not entered: an invitation forwarded to the owner is not theirs."""
    kind = str(part.get("mimeType") or "").lower()
    if kind == "text/calendar":
        return _part_method(part)
    if kind == "message/rfc822":
        return None
    for child in part.get("parts") or ():
        if isinstance(child, Mapping):
            method = tree_method(child)
            if method:
                return method
    return None


def calendar_method(fields: Mapping[str, list[str]]) -> str | None:
    """The iMIP METHOD a message carries, as far as its headers tell (see CALENDAR_SENDERS)."""
    content_type = fields.get("content-type", [""])[0]
    if content_type.lower().startswith("text/calendar"):
        found = _METHOD.search(content_type)
        return found.group(1).upper() if found else "REQUEST"
    senders = " ".join(fields.get("sender", []) + fields.get("from", [])).lower()
    exchange = any("calendarmessage" in value.lower() for value in fields.get("content-class", []))
    if not exchange and not any(address in senders for address in CALENDAR_SENDERS):
        return None
    subject = fields.get("subject", [""])[0]
    if _ANSWER.match(subject):
        return "REPLY"
    if _CANCEL.match(subject):
        return "CANCEL"
    return "REQUEST"
