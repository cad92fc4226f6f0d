"""Turn raw RFC 5322 bytes into RemoteMessage: header parsing that survives real mail.

Header blocks (what IMAP fetches) are read by `connectors.rfc5322`, whole messages by the
compat32 parser; addresses by a plain-list fast path and `email.utils.getaddresses`. All of it
is about ten times faster than `policy.default`, and none of it raises on the inputs that
crash the modern header registry (`To: "`, cpython#148518; group syntax such as
`unlisted-recipients:;`, cpython#83281).
Anything that still fails for one header degrades that header to empty; a message whose
bytes cannot be read at all raises `UnreadableMessage`, which the caller records as a failure.
"""

from __future__ import annotations

import email
import email.utils
import hashlib
import re
from collections.abc import Iterable
from datetime import datetime
from email.header import Header, decode_header
from email.message import Message
from email.parser import BytesParser
from email.policy import compat32

from connectors.base import Address, FolderRole, RemoteMessage
from connectors.rfc5322 import decode_words, parse_date, split_fields

# Headers whose raw values decide whether a message is automated (semantics §2).
CLASSIFYING_HEADERS = (
    "auto-submitted",
    "precedence",
    "list-id",
    "list-unsubscribe",
    "x-autoreply",
    "x-autorespond",
    "x-auto-response-suppress",
)
# Kept on RemoteMessage.headers: classification, plus what decoding the body needs.
KEPT_HEADERS = (*CLASSIFYING_HEADERS, "content-type", "content-transfer-encoding")
# What an IMAP header-only fetch asks for: identity, participants, classification.
FETCHED_HEADERS = (
    "from",
    "sender",
    "to",
    "cc",
    "bcc",
    "date",
    "subject",
    "message-id",
    "content-type",
    "content-transfer-encoding",
    *CLASSIFYING_HEADERS,
)

_full_parser = BytesParser(policy=compat32)
_ENCODED_WORD = re.compile(r"=\?[^?]+\?[bBqQ]\?")
_MSGID = re.compile(r"<([^<>]*)>")


class UnreadableMessage(Exception):
    """The bytes are not a message we can read; the reason is the exception text."""


def _text(value: object) -> str:
    """A header value as text: RFC 2047 words decoded, unknown 8-bit bytes replaced."""
    if value is None:
        return ""
    if isinstance(value, Header):  # raw 8-bit bytes in a header: try UTF-8, then Latin-1
        parts = []
        for chunk, charset in decode_header(value):
            if isinstance(chunk, str):
                parts.append(chunk)
                continue
            if charset in (None, "unknown-8bit"):
                try:
                    parts.append(chunk.decode("utf-8"))
                except UnicodeDecodeError:
                    parts.append(chunk.decode("latin-1"))
            else:
                try:
                    parts.append(chunk.decode(charset, "replace"))
                except LookupError:  # a charset Python does not know
                    parts.append(chunk.decode("latin-1"))
        return "".join(parts)
    text = str(value)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # raw 8-bit bytes kept as surrogates by the parser: assume UTF-8
        text = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return text


def _unfold(text: str) -> str:
    return " ".join(text.split())


# One address of a plain list: a phrase (atoms and encoded words, or a quoted string without
# escapes) and <addr>, or a bare addr. Comments, groups, routes and escapes do not match and
# send the whole value to email.utils.getaddresses, which is 2–3 times slower.
_ATOMS = r"[^\s<>@,;:()\"\[\]\\]+@[^\s<>@,;:()\"\[\]\\]+"
_PLAIN_ADDRESS = re.compile(
    rf'\s*(?:(?:"(?P<quoted>[^"\\]*)"|(?P<phrase>[^"<>,;:()@\\\[\]]*?))\s*<\s*(?P<angle>{_ATOMS})\s*>'
    rf"|(?P<bare>{_ATOMS}))\s*(?:,|$)"
)


def _plain_pairs(value: str) -> list[tuple[str, str]] | None:
    """(name, address) pairs of a plain address list, or None when it needs the full parser."""
    position, end, pairs = 0, len(value), []
    while position < end:
        match = _PLAIN_ADDRESS.match(value, position)
        if match is None or match.end() == position:
            return None
        if match["bare"] is not None:
            pairs.append(("", match["bare"]))
        else:
            name = match["quoted"] if match["quoted"] is not None else match["phrase"]
            pairs.append((name, match["angle"]))
        position = match.end()
        if value[position - 1 : position] == "," and not value[position:].strip():
            break
    return pairs


def _pairs(values: list[str]) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    for value in values:
        plain = _plain_pairs(value)
        if plain is None:
            return email.utils.getaddresses(values)
        pairs.extend(plain)
    return pairs


def parse_addresses(values: Iterable[str], *, fast: bool = True) -> tuple[Address, ...]:
    """Addresses from one or more header values, lower-cased, de-duplicated, in order."""
    present = [v for v in values if v]
    if not present:  # most messages have no Cc and no Bcc
        return ()
    seen: dict[str, Address] = {}
    try:
        pairs = _pairs(present) if fast else email.utils.getaddresses(present)
    except Exception:
        return ()
    for name, addr in pairs:
        addr = addr.replace("\0", "").strip().strip("<>").strip().lower()
        if "@" not in addr or addr.startswith("@") or addr.endswith("@") or " " in addr:
            continue
        display = _unfold(decode_words(name).replace("\0", "")).strip().strip("'\"").strip() or None
        if display and display.lower() == addr:
            display = None
        if addr not in seen or (display and not seen[addr].name):
            seen[addr] = Address(addr, display)
    return tuple(seen.values())


def parse_message_id(value: str) -> str | None:
    value = value.strip()
    match = _MSGID.search(value)
    ident = (match.group(1) if match else value).strip()
    return ident or None


def _content_type(value: str) -> str:
    """The MIME type without parameters; text/plain when missing or malformed (RFC 2045)."""
    kind = value.split(";", 1)[0].strip().lower()
    return kind if kind.count("/") == 1 and " " not in kind else "text/plain"


def _calendar_method(msg: Message) -> str | None:
    """The METHOD of an iMIP part (RFC 6047 puts it in the Content-Type), walking the MIME tree."""
    for part in msg.walk():
        if part.get_content_type() != "text/calendar":
            continue
        method = part.get_param("method")
        if isinstance(method, str) and method.strip():
            return method.strip().upper()
        payload = part.get_payload(decode=True)
        if isinstance(payload, bytes):
            found = re.search(rb"^METHOD:([A-Za-z-]+)", payload, re.MULTILINE)
            if found:
                return found.group(1).decode("ascii").upper()
    return None


def _from_fields(
    fields: dict[str, list[str]],
    *,
    source_id: str,
    folder_role: FolderRole,
    provider_date: datetime | None,
    body: bytes | None,
    calendar_method: str | None,
) -> RemoteMessage:
    def header(name: str) -> str:  # NUL, which no database text column holds, removed
        values = fields.get(name)
        return values[0].replace("\0", "") if values else ""

    senders = parse_addresses(fields.get("from", ())) or parse_addresses(fields.get("sender", ()))
    date_header = _unfold(header("date"))
    content_type = _content_type(header("content-type"))
    return RemoteMessage(
        source_id=source_id,
        folder_role=folder_role,
        message_id=parse_message_id(header("message-id")),
        date=parse_date(date_header),
        date_header=date_header,
        provider_date=provider_date,
        subject=_unfold(decode_words(header("subject")).replace("\0", "")),
        sender=senders[0] if senders else None,
        to=parse_addresses(fields.get("to", ())),
        cc=parse_addresses(fields.get("cc", ())),
        bcc=parse_addresses(fields.get("bcc", ())),
        headers={n: _unfold(header(n)) for n in KEPT_HEADERS if n in fields},
        content_type=content_type,
        calendar_method=calendar_method,
        body=body,
    )


def parse_headers(
    raw_headers: bytes,
    *,
    source_id: str,
    folder_role: FolderRole,
    provider_date: datetime | None = None,
    body: bytes | None = None,
    calendar_method: str | None = None,
) -> RemoteMessage:
    """Parse a header block (an IMAP `BODY[HEADER.FIELDS …]` fetch, say) into a RemoteMessage."""
    return _from_fields(
        split_fields(raw_headers),
        source_id=source_id,
        folder_role=folder_role,
        provider_date=provider_date,
        body=body,
        calendar_method=calendar_method,
    )


def parse_fields(
    fields: dict[str, list[str]],
    *,
    source_id: str,
    folder_role: FolderRole,
    provider_date: datetime | None = None,
    calendar_method: str | None = None,
) -> RemoteMessage:
    """Headers an API already split (lower-case name -> values, e.g. Gmail's metadata format)
    into a RemoteMessage, with the same address, date and RFC 2047 handling as a header block."""
    return _from_fields(
        fields,
        source_id=source_id,
        folder_role=folder_role,
        provider_date=provider_date,
        body=None,
        calendar_method=calendar_method,
    )


def parse_full(
    raw: bytes,
    *,
    source_id: str,
    folder_role: FolderRole,
    provider_date: datetime | None = None,
) -> RemoteMessage:
    """Parse a whole message (mbox, maildir, .eml), finding any iMIP calendar part."""
    if not raw.strip():
        raise UnreadableMessage("empty message")
    try:
        msg = _full_parser.parsebytes(raw)
        method = (
            _calendar_method(msg)
            if msg.is_multipart() or "calendar" in (msg.get("content-type") or "")
            else None
        )
    except Exception as error:
        raise UnreadableMessage(f"{type(error).__name__}: {error}") from error
    if not any(msg.get(h) for h in ("from", "sender", "to", "date", "message-id")):
        raise UnreadableMessage("no message headers found")
    _, _, body = raw.replace(b"\r\n", b"\n").partition(b"\n\n")
    fields: dict[str, list[str]] = {}
    for name, value in msg.items():  # one pass: Message.get lower-cases every name per call
        fields.setdefault(name.lower(), []).append(_text(value))
    return _from_fields(
        fields,
        source_id=source_id,
        folder_role=folder_role,
        provider_date=provider_date,
        body=body,
        calendar_method=method,
    )


def content_hash(raw: bytes) -> str:
    """A stable source id for a message known only by its bytes (file imports)."""
    return hashlib.sha256(raw).hexdigest()


def text_body(message: RemoteMessage, *, limit: int = 20_000) -> str:
    """The first text/plain part of the (possibly truncated) body, decoded; "" when none."""
    if not message.body:
        return ""
    head = "".join(
        f"{name}: {message.headers[name]}\n"
        for name in ("content-type", "content-transfer-encoding")
        if name in message.headers
    )
    try:
        msg = _full_parser.parsebytes(head.encode("utf-8", "replace") + b"\n" + message.body)
        for part in msg.walk():
            if part.get_content_type() == "text/plain" and not part.is_multipart():
                payload = part.get_payload(decode=True)
                if isinstance(payload, bytes):
                    charset = part.get_content_charset() or "utf-8"
                    try:
                        return payload.decode(charset, "replace")[:limit]
                    except LookupError:
                        return payload.decode("utf-8", "replace")[:limit]
    except Exception:
        return ""
    return ""
