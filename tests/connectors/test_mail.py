"""Header parsing survives real mail: encodings, broken headers, the stdlib's known crashes."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connectors.base import Address
from connectors.mail import (
    UnreadableMessage,
    parse_addresses,
    parse_full,
    parse_headers,
    text_body,
)

DATA = Path(__file__).resolve().parent.parent / "data"


def headers(text: str) -> bytes:
    return text.replace("\n", "\r\n").encode("utf-8") + b"\r\n"


def parse(text: str) -> object:
    return parse_headers(headers(text), source_id="s", folder_role="inbox")


@pytest.mark.parametrize(
    ("from_header", "expected"),
    [
        (
            "=?utf-8?q?J=C3=BCrgen_M=C3=BCller?= <JM@Example.COM>",
            Address("jm@example.com", "Jürgen Müller"),
        ),
        (
            "=?iso-8859-1?b?Sm/rbCBEdXBvbnQ=?= <joel@x.example>",
            Address("joel@x.example", "Joël Dupont"),
        ),
        (
            '"Silva, Ana" <Ana.Silva@Northwind.CO.UK>',
            Address("ana.silva@northwind.co.uk", "Silva, Ana"),
        ),
        ("ana@northwind.example (Ana Silva)", Address("ana@northwind.example", "Ana Silva")),
        ("<ana@northwind.example>", Address("ana@northwind.example", None)),
        ("ana@northwind.example <ana@northwind.example>", Address("ana@northwind.example", None)),
    ],
)
def test_display_names_are_decoded_and_addresses_lower_cased(
    from_header: str, expected: Address
) -> None:
    assert parse(f"From: {from_header}\nTo: x@acme.example").sender == expected  # type: ignore[attr-defined]


def test_raw_utf8_header_bytes_are_read() -> None:
    raw = "From: Zoë Ådahl <zoe@x.example>\r\nTo: a@acme.example\r\n\r\n".encode()
    parsed = parse_headers(raw, source_id="s", folder_role="inbox")
    assert parsed.sender == Address("zoe@x.example", "Zoë Ådahl")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (" <ABC.123@mail.example> ", "ABC.123@mail.example"),
        ("abc@mail.example", "abc@mail.example"),
        ("<a@b> <c@d>", "a@b"),
        ("", None),
    ],
)
def test_message_id_is_trimmed_without_brackets(value: str, expected: str | None) -> None:
    assert parse(f"From: a@x.example\nMessage-ID: {value}").message_id == expected  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Mon, 14 May 2001 16:39:00 -0700 (PDT)", datetime(2001, 5, 14, 23, 39, tzinfo=UTC)),
        ("Tue, 2 Jan 2001 08:00:00 +0100", datetime(2001, 1, 2, 7, 0, tzinfo=UTC)),
        ("2 Jan 2001 08:00 -0000", datetime(2001, 1, 2, 8, 0, tzinfo=UTC)),
        ("yesterday", None),
        ("Mon, 99 Foo 2001 99:99:99 +9999", None),
    ],
)
def test_dates_become_utc_or_none(value: str, expected: datetime | None) -> None:
    assert parse(f"From: a@x.example\nDate: {value}").date == expected  # type: ignore[attr-defined]


def test_missing_date_leaves_the_provider_date_to_the_caller() -> None:
    provider = datetime(2026, 1, 1, tzinfo=UTC)
    parsed = parse_headers(
        headers("From: a@x.example"), source_id="s", folder_role="inbox", provider_date=provider
    )
    assert (parsed.date, parsed.date_header, parsed.provider_date) == (None, "", provider)


@pytest.mark.parametrize(
    ("to_header", "expected"),
    [
        ('"', []),  # IndexError under policy.default (cpython#148518)
        ("<", []),
        ("unlisted-recipients:; (no To-header on input)", []),  # cpython#83281
        ("Team: a@x.example, B@Y.example;", ["a@x.example", "b@y.example"]),
        ("a@x.example,, ,A@X.example", ["a@x.example"]),
        ("undisclosed-recipients:;", []),
        ("a@x.example,\n b@y.example", ["a@x.example", "b@y.example"]),
    ],
)
def test_recipient_lists_that_crash_the_modern_parser(to_header: str, expected: list[str]) -> None:
    parsed = parse(f"From: a@x.example\nTo: {to_header}")
    assert [a.email for a in parsed.to] == expected  # type: ignore[attr-defined]


def test_classifying_headers_and_calendar_parts_are_kept() -> None:
    raw = (
        b"From: joe@northwind.example\r\nTo: ana@acme.example\r\nList-Id: <x.lists>\r\n"
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n"
        b"hi\r\n--b\r\nContent-Type: text/calendar; method=REQUEST; charset=utf-8\r\n\r\n"
        b"BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nEND:VCALENDAR\r\n--b--\r\n"
    )
    parsed = parse_full(raw, source_id="s", folder_role="inbox")
    assert parsed.headers["list-id"] == "<x.lists>"
    assert parsed.calendar_method == "REQUEST"
    assert parsed.content_type == "multipart/mixed"
    assert text_body(parsed).strip() == "hi"


def test_calendar_method_is_read_from_the_part_when_the_header_lacks_it() -> None:
    raw = (
        b"From: joe@northwind.example\r\nContent-Type: text/calendar\r\n\r\n"
        b"BEGIN:VCALENDAR\r\nMETHOD:CANCEL\r\nEND:VCALENDAR\r\n"
    )
    assert parse_full(raw, source_id="s", folder_role="inbox").calendar_method == "CANCEL"


def test_text_body_decodes_quoted_printable() -> None:
    raw = (
        b"From: joe@northwind.example\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"Content-Transfer-Encoding: quoted-printable\r\n\r\nGr=C3=BC=C3=9Fe\r\n"
    )
    assert text_body(parse_full(raw, source_id="s", folder_role="inbox")).strip() == "Grüße"


def test_bytes_that_are_not_a_message_are_unreadable() -> None:
    with pytest.raises(UnreadableMessage):
        parse_full(b"just some text\nwithout headers\n", source_id="s", folder_role="inbox")
    with pytest.raises(UnreadableMessage):
        parse_full(b"", source_id="s", folder_role="inbox")


CORPUS = sorted(p for p in (DATA / "mime").rglob("*") if p.is_file() and p.name != "LICENSE")


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: str(p.relative_to(DATA)))
def test_every_corpus_file_parses_or_is_reported_unreadable(path: Path) -> None:
    try:
        parsed = parse_full(path.read_bytes(), source_id=path.name, folder_role="inbox")
    except UnreadableMessage as error:
        assert str(error)  # a reason a person can read
        return
    everyone = [parsed.sender] if parsed.sender else []
    everyone += [*parsed.to, *parsed.cc, *parsed.bcc]
    assert all(a.email == a.email.lower() and "@" in a.email for a in everyone)
    text_body(parsed)  # never raises


_FRAGMENTS = st.sampled_from(
    [
        '"',
        "<",
        ">",
        ",",
        ";",
        ":",
        "@",
        "(",
        ")",
        "\\",
        "=?utf-8?q?J=C3=BC?=",
        "=?x?b?###?=",
        '"Doe, John"',
        "<a@b.example>",
        "\r\n ",
        "\x00",
        "\udcff",
        "é",
        "group:",
        " ",
    ]
)
_VALUE = st.lists(st.one_of(_FRAGMENTS, st.text(max_size=8)), max_size=12).map("".join)


@settings(max_examples=400, deadline=None)
@given(
    names=st.lists(
        st.sampled_from(
            [
                "From",
                "To",
                "Cc",
                "Bcc",
                "Date",
                "Subject",
                "Message-ID",
                "List-Id",
                "Content-Type",
                "Sender",
            ]
        ),
        min_size=1,
        max_size=8,
    ),
    values=st.lists(_VALUE, min_size=8, max_size=8),
)
def test_any_header_block_parses_or_is_unreadable(names: list[str], values: list[str]) -> None:
    block = "".join(f"{n}: {v}\r\n" for n, v in zip(names, values, strict=False))
    raw = block.encode("utf-8", "surrogateescape") + b"\r\n"
    try:
        parsed = parse_headers(raw, source_id="s", folder_role="inbox")
    except UnreadableMessage:
        return
    everyone = [parsed.sender] if parsed.sender else []
    for address in [*everyone, *parsed.to, *parsed.cc, *parsed.bcc]:
        assert address.email == address.email.lower().strip()
        assert "@" in address.email and " " not in address.email
    assert parsed.date is None or parsed.date.tzinfo is UTC


_NAME = st.one_of(
    st.just(""),
    st.text(alphabet="abcdefghij XYZ.éü-'", min_size=1, max_size=12),
    st.sampled_from(['"Doe, John"', "=?utf-8?q?J=C3=BCrgen?=", '"O\'Neil"', "Ana (sales)"]),
)
_ADDRESS = st.from_regex(
    r"[a-zA-Z0-9._+-]{1,8}@[a-z0-9-]{1,8}\.(example|co\.uk|com)", fullmatch=True
)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.tuples(_NAME, _ADDRESS, st.booleans()), min_size=1, max_size=5))
def test_the_fast_address_path_agrees_with_the_stdlib_parser(
    people: list[tuple[str, str, bool]],
) -> None:
    value = ", ".join(
        f"{name} <{address}>" if name or angle else address for name, address, angle in people
    )
    assert parse_addresses([value]) == parse_addresses([value], fast=False)


def test_the_fast_address_path_agrees_on_every_corpus_header() -> None:
    from email.parser import BytesHeaderParser
    from email.policy import compat32

    checked = 0
    for path in CORPUS + sorted((DATA / "enron").rglob("*.mbox")):
        text = path.read_bytes()
        for chunk in text.split(b"\nFrom ") if path.suffix == ".mbox" else [text]:
            msg = BytesHeaderParser(policy=compat32).parsebytes(chunk)
            for name in ("From", "To", "Cc", "Bcc"):
                values = [str(v) for v in msg.get_all(name, [])]
                assert parse_addresses(values) == parse_addresses(values, fast=False), values
                checked += 1
    assert checked > 2000


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("multipart/report; report-type=delivery-status", "multipart/report"),
        ("Multipart/Mixed;\r\n boundary=x", "multipart/mixed"),
        ("text", "text/plain"),
        ("", "text/plain"),
        ("bogus/ type/x", "text/plain"),
    ],
)
def test_the_top_level_content_type(value: str, expected: str) -> None:
    raw = headers(f"From: a@x.example\nContent-Type: {value}" if value else "From: a@x.example")
    assert parse_headers(raw, source_id="s", folder_role="inbox").content_type == expected
