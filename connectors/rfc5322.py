"""Fast paths for the hot steps of reading a header block, each falling back to the stdlib.

A sync reads hundreds of thousands of header blocks, and most of them are plain: one header
per line, RFC 2047 words in UTF-8 or Latin-1, dates as RFC 5322 writes them. For those, the
functions here do what `email` does in a fraction of the time (bench/README.md); anything
they do not recognise goes to the stdlib code, so the result is the stdlib's in every case
(tests/connectors/test_rfc5322.py compares both on generated and real headers).
"""

from __future__ import annotations

import binascii
import email.utils
import re
from datetime import UTC, datetime, timedelta, timezone
from email.header import decode_header, make_header

# The field-name rule of email.feedparser (headerRE): printable ASCII but the colon, then ':'.
_FIELD = re.compile(r"([\041-\071\073-\176]*):[ \t]*")
_LINES = re.compile(r"\r\n|\r|\n")


def _value_text(value: str) -> str:
    """Bytes that were not UTF-8 arrive as surrogates: read the field as Latin-1 instead
    (what the stdlib path does with its unknown-8bit header chunks)."""
    if value.isascii():
        return value
    try:
        value.encode("utf-8")
        return value
    except UnicodeEncodeError:
        return value.encode("utf-8", "surrogateescape").decode("latin-1")


def split_fields(raw: bytes) -> dict[str, list[str]]:
    """Lower-cased field name -> its values in order, unfolded lines kept, as the compat32
    parser reads a header block: mbox `From ` lines are skipped, a continuation line before
    any field is dropped, and the block ends at an empty line or the first line that
    is not a field."""
    fields: dict[str, list[str]] = {}
    text = raw.decode("utf-8", "surrogateescape")
    name: str | None = None
    parts: list[str] = []
    for line in _LINES.split(text):
        if line[:1] in (" ", "\t"):
            if name is not None:
                parts.append(line)
            continue
        if name is not None:
            fields.setdefault(name, []).append(_value_text("\n".join(parts)))
            name = None
        if line.startswith("From "):  # an mbox envelope line: skipped, as the stdlib does
            continue
        match = _FIELD.match(line)
        if match is None:  # an empty line, or the body began without one
            break
        if not match.group(1):  # no field name: dropped with its continuation lines
            continue
        name = match.group(1).lower()
        parts = [line[match.end() :]]
    if name is not None:
        fields.setdefault(name, []).append(_value_text("\n".join(parts)))
    return fields


# One RFC 2047 encoded word; the charset may carry an RFC 2231 language (`utf-8*en`).
_WORD = re.compile(r"=\?([^?\s*]+)(?:\*[^?\s]*)?\?([bBqQ])\?([^?\s]*)\?=")
_SIMPLE_CHARSETS = frozenset({"utf-8", "utf8", "us-ascii", "ascii", "iso-8859-1", "latin-1"})


def _word_bytes(encoding: str, data: str) -> bytes:
    if encoding in "qQ":
        return binascii.a2b_qp(data.encode("ascii"), header=True)
    return binascii.a2b_base64(data.encode("ascii") + b"=" * (-len(data) % 4), strict_mode=True)


def _fast_words(text: str) -> str | None:
    """Decode the encoded words of `text`, or None when the stdlib must (an unusual charset,
    broken encoding). Adjacent words in one charset are joined before decoding, so a
    character split across two words survives; white space between two words is dropped."""
    out: list[str] = []
    run: bytearray = bytearray()
    run_charset = ""
    position = 0
    for match in _WORD.finditer(text):
        charset = match.group(1).lower()
        if charset not in _SIMPLE_CHARSETS:
            return None
        between = text[position : match.start()]
        adjacent = bool(run_charset) and not between.strip()
        if not adjacent or charset != run_charset:
            if run_charset:
                out.append(run.decode(run_charset))
                run = bytearray()
            if not adjacent:
                out.append(between)
        try:
            run += _word_bytes(match.group(2), match.group(3))
        except (binascii.Error, ValueError):
            return None
        run_charset = charset
        position = match.end()
    if not run_charset:
        return None
    out.append(run.decode(run_charset))
    out.append(text[position:])
    return "".join(out)


def decode_words(text: str) -> str:
    """RFC 2047 encoded words decoded (`=?utf-8?q?J=C3=BCrgen?=`); plain text passes through,
    and so does text whose words cannot be decoded."""
    if "=?" not in text:
        return text
    try:
        fast = _fast_words(text)
    except UnicodeDecodeError:  # bytes that are not in their charset: as the stdlib answers
        fast = None
    if fast is not None:
        return fast
    try:
        return str(make_header(decode_header(text)))
    except Exception:
        return text


_MONTHS = {
    m: i
    for i, m in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1
    )
}
# `Tue, 6 Jan 2026 10:00:00 +0100 (CET)`: the shape nearly every mailer writes.
_DATE = re.compile(
    r"\s*(?:[A-Za-z]{3},\s*)?(\d{1,2})\s+([A-Za-z]{3})\s+(\d{4})\s+(\d{1,2}):(\d{2})(?::(\d{2}))?"
    r"\s+([+-])(\d{2})(\d{2})\s*(?:\([^()]*\))?\s*$"
)


def parse_date(value: str) -> datetime | None:
    """An RFC 5322 date as an aware UTC datetime; None when there is none or it is unreadable.
    A zone of -0000 or none at all means unknown (RFC 5322 §3.3): taken as UTC."""
    match = _DATE.match(value)
    if match is not None and (month := _MONTHS.get(match.group(2).lower())):
        day, _, year, hour, minute, second, sign, zh, zm = match.groups()
        offset = timedelta(hours=int(zh), minutes=int(zm)) * (-1 if sign == "-" else 1)
        try:
            moment = datetime(
                int(year),
                month,
                int(day),
                int(hour),
                int(minute),
                int(second or 0),
                tzinfo=timezone(offset),
            )
            return moment.astimezone(UTC)
        except (ValueError, OverflowError):
            pass  # out of range (30 Feb, hour 24, second 60): the stdlib decides
    return _stdlib_date(value)


def _stdlib_date(value: str) -> datetime | None:
    if not value.strip():
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if parsed is None:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except (OverflowError, ValueError):
        return None
