"""The fast header paths answer exactly what the stdlib answers, on real and generated mail."""

from __future__ import annotations

import base64
import mailbox
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from email import quoprimime
from email.header import decode_header, make_header
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import format_datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.mail import _text
from connectors.rfc5322 import _stdlib_date, decode_words, parse_date, split_fields

DATA = Path(__file__).resolve().parent.parent / "data"


def stdlib_fields(raw: bytes) -> dict[str, list[str]]:
    """What the compat32 parser reads, line endings made uniform (both unfold them later)."""
    fields: dict[str, list[str]] = {}
    for name, value in BytesHeaderParser(policy=compat32).parsebytes(raw).items():
        text = _text(value).replace("\r\n", "\n").replace("\r", "\n")
        fields.setdefault(name.lower(), []).append(text)
    return fields


def stdlib_words(text: str) -> str:
    try:
        return str(make_header(decode_header(text)))
    except Exception:
        return text


def unfolded(text: str) -> str:
    """Every caller unfolds a decoded value; the stdlib also drops the line breaks and leading
    white space of each line of a folded value, which unfolding makes moot."""
    return " ".join(text.split())


def same_words(value: str) -> bool:
    return unfolded(decode_words(value)) == unfolded(stdlib_words(value))


def real_header_blocks() -> Iterator[tuple[str, bytes]]:
    """The header block of every message of the MIME corpus and the Enron mailbox."""
    for path in sorted((DATA / "mime").rglob("*")):
        if path.is_file() and path.suffix != ".md":
            raw = path.read_bytes().replace(b"\r\n", b"\n")
            yield path.name, raw.partition(b"\n\n")[0] + b"\n\n"
    for path in sorted((DATA / "enron").rglob("*.mbox")):
        for number, message in enumerate(mailbox.mbox(path)):
            raw = message.as_bytes().replace(b"\r\n", b"\n")
            yield f"{path.name}#{number}", raw.partition(b"\n\n")[0] + b"\n\n"


REAL = list(real_header_blocks())


def test_the_real_corpora_are_there() -> None:
    assert len(REAL) > 100


@pytest.mark.parametrize(("name", "raw"), REAL, ids=[name for name, _ in REAL])
def test_split_fields_reads_real_headers_as_the_stdlib(name: str, raw: bytes) -> None:
    assert split_fields(raw) == stdlib_fields(raw)


def test_fast_paths_agree_on_every_real_value() -> None:
    dates = 0
    for _name, raw in REAL:
        fields = split_fields(raw)
        for value in fields.get("date", []):
            assert parse_date(value) == _stdlib_date(value), value
            dates += 1
        for values in fields.values():
            for value in values:
                assert same_words(value), value
    assert dates > 100  # the corpora hold no encoded words: the generated tests below do


@pytest.mark.parametrize(
    "raw",
    [
        b"From someone@example.com Mon Jan  1 00:00:00 2026\nSubject: hi\n\nbody",
        b" leading continuation\nSubject: hi\n\n",
        b"Subject: one\nnot a header line\nTo: b@example.com\n\n",
        b"Subject: folded\n\tover\n  three lines\nTo: a@example.com\n\n",
        b"Subject: caf\xe9 latin-1\nTo: =?utf-8?q?J=C3=BCrgen?= <j@example.com>\n\n",
        b"Subject: caf\xc3\xa9 utf-8 \xff broken\n\n",
        b"Subject:no space\r\nTo:  two spaces\r\n\r\n",
        b"Subject: mac line ends\rTo: a@example.com\r\r",
        b"X-Empty:\nSubject: \n\n",
        b":\nSubject: after an empty name\n\n",
        b"Subject: one\nSubject: two\n\n",
        b"Subject: no blank line at the end",
        b"",
    ],
)
def test_split_fields_edge_cases_match_the_stdlib(raw: bytes) -> None:
    assert split_fields(raw) == stdlib_fields(raw)


header_text = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n\x0b\x0c\x1c\x1d\x1e"),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["Subject", "To", "X-A"]), header_text), max_size=5))
def test_split_fields_matches_the_stdlib_on_generated_blocks(
    headers: list[tuple[str, str]],
) -> None:
    raw = b"".join(f"{name}: {value}\n".encode() for name, value in headers) + b"\n"
    assert split_fields(raw) == stdlib_fields(raw)


def encoded_word(text: str, charset: str, encoding: str) -> str:
    """One encoded word as the stdlib's own encoders write it."""
    data = text.encode(charset)
    if encoding in "bB":
        return f"=?{charset}?{encoding}?{base64.b64encode(data).decode()}?="
    word = quoprimime.header_encode(data, charset)
    return word.replace("?q?", f"?{encoding}?", 1) if word else f"=?{charset}?{encoding}??="


@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=12),
            st.sampled_from(["utf-8", "iso-8859-1", "UTF-8"]),
            st.sampled_from(["b", "q", "B", "Q"]),
            st.sampled_from(["", " ", "  ", " plain ", "\n "]),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_decode_words_matches_the_stdlib(words: list[tuple[str, str, str, str]]) -> None:
    parts = []
    for text, charset, encoding, between in words:
        try:
            parts.append(encoded_word(text, charset, encoding))
        except UnicodeEncodeError:
            parts.append(encoded_word(text, "utf-8", encoding))
        parts.append(between)
    value = "".join(parts)
    assert same_words(value)


@pytest.mark.parametrize(
    "value",
    [
        "=?utf-8?b?SsO8cmdlbg==?=",
        "=?utf-8?b?SsO8cmdlbg?=",  # padding left out
        "=?UTF-8?B?w6k=?= =?UTF-8?B?w6k=?=",
        "=?utf-8?b?w6k?==?utf-8?b?w6k?=",
        "=?utf-8?q?caf=C3?= =?utf-8?q?=A9?=",  # one character split across two words
        "=?utf-8?q?bad=FFbyte?=",
        "=?koi8-r?b?8tXT08vJyg==?=",
        "=?x-unknown?q?abc?=",
        "=?utf-8?b?not base64!?=",
        "=?utf-8?q?lower=c3=a9hex?=",
        "Re: =?iso-8859-1?q?R=E9union?= demain",
        "=?utf-8?q??=",
        "no words at all =? ?=",
    ],
)
def test_decode_words_edge_cases_match_the_stdlib(value: str) -> None:
    assert same_words(value)


def test_decode_words_reads_an_rfc2231_language_the_stdlib_cannot() -> None:
    value = "=?utf-8*en?q?with_language?="
    assert stdlib_words(value) == value
    assert decode_words(value) == "with language"


@settings(max_examples=400, deadline=None)
@given(
    st.datetimes(
        min_value=datetime(1971, 1, 1), max_value=datetime(2099, 12, 31), timezones=st.none()
    ),
    st.integers(min_value=-14 * 60, max_value=14 * 60),
    st.booleans(),
)
def test_parse_date_matches_the_stdlib(moment: datetime, minutes: int, weekday: bool) -> None:
    zone = timezone(timedelta(minutes=minutes))
    value = format_datetime(moment.replace(microsecond=0, tzinfo=zone))
    if not weekday:
        value = value.split(", ", 1)[1]
    assert parse_date(value) == _stdlib_date(value)
    assert parse_date(value) == moment.replace(microsecond=0, tzinfo=zone).astimezone(UTC)


@pytest.mark.parametrize(
    "value",
    [
        "Tue, 6 Jan 2026 10:00:00 +0100 (CET)",
        "6 Jan 2026 10:00 -0500",
        "Tue, 06 Jan 2026 10:00:00 -0000",
        "Tue, 06 Jan 2026 10:00:00 GMT",
        "Tue, 06 Jan 26 10:00:00 +0000",
        "Tue, 30 Feb 2026 10:00:00 +0000",
        "Tue, 06 Jan 2026 24:00:00 +0000",
        "Tue, 06 Jan 2026 10:00:60 +0000",
        "Tue, 06 Foo 2026 10:00:00 +0000",
        "Tue, 06 Jan 2026 10:00:00 +9959",
        "  Tue,  6 Jan 2026 10:00:00 +0100  ",
        "yesterday",
        "",
    ],
)
def test_parse_date_edge_cases_match_the_stdlib(value: str) -> None:
    assert parse_date(value) == _stdlib_date(value)
