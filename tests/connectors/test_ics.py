"""read_calendar's mapping, table-driven, and every real calendar in tests/data/ics."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from connectors.calendar.ics import UnreadableCalendar, read_calendar, read_calendar_parts
from connectors.files import IcsFileConnector

DATA = Path(__file__).resolve().parents[1] / "data" / "ics"  # copied from ../shared/data/ics
WINDOW = (datetime(1970, 1, 1, tzinfo=UTC), datetime(2040, 1, 1, tzinfo=UTC))
NY = (
    "BEGIN:VTIMEZONE\r\nTZID:America/New_York\r\nBEGIN:STANDARD\r\nDTSTART:20071104T020000\r\n"
    "RRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=1SU\r\nTZOFFSETFROM:-0400\r\nTZOFFSETTO:-0500\r\n"
    "END:STANDARD\r\nBEGIN:DAYLIGHT\r\nDTSTART:20070311T020000\r\n"
    "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=2SU\r\nTZOFFSETFROM:-0500\r\nTZOFFSETTO:-0400\r\n"
    "END:DAYLIGHT\r\nEND:VTIMEZONE\r\n"
)


def _cal(body: str, tz: str = "") -> bytes:
    lines = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\n" + tz
    return (
        lines + "BEGIN:VEVENT\r\nUID:u1\r\n" + body + "END:VEVENT\r\nEND:VCALENDAR\r\n"
    ).encode()


def _one(body: str, tz: str = "") -> object:
    (event,) = read_calendar(_cal(body, tz), resource="r", window=WINDOW, version="v").events
    return event


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


CASES = [
    (
        "utc",
        "DTSTART:20240105T100000Z\r\nDTEND:20240105T110000Z\r\n",
        "",
        {"start": utc(2024, 1, 5, 10), "end": utc(2024, 1, 5, 11), "all_day": False},
    ),
    (
        "tz winter",
        "DTSTART;TZID=America/New_York:20240105T100000\r\n",
        NY,
        {"start": utc(2024, 1, 5, 15), "end": utc(2024, 1, 5, 15)},
    ),
    (
        "tz summer (DST)",
        "DTSTART;TZID=America/New_York:20240705T100000\r\nDURATION:PT45M\r\n",
        NY,
        {"start": utc(2024, 7, 5, 14), "end": utc(2024, 7, 5, 14, 45)},
    ),
    (
        "all-day no end",
        "DTSTART;VALUE=DATE:20240105\r\n",
        "",
        {"start": utc(2024, 1, 5), "end": utc(2024, 1, 6), "all_day": True},
    ),
    (
        "all-day two days",
        "DTSTART;VALUE=DATE:20240105\r\nDTEND;VALUE=DATE:20240107\r\n",
        "",
        {"end": utc(2024, 1, 7), "all_day": True},
    ),
    ("floating is utc", "DTSTART:20240105T100000\r\n", "", {"start": utc(2024, 1, 5, 10)}),
    (
        "defaults",
        "DTSTART:20240105T100000Z\r\n",
        "",
        {
            "status": "confirmed",
            "summary": "",
            "organizer": None,
            "attendees": (),
            "recurrence_id": None,
            "created": None,
            "source_id": "r#u1#",
        },
    ),
    (
        "status and text",
        "DTSTART:20240105T100000Z\r\nSTATUS:TENTATIVE\r\n"
        "SUMMARY:Q1 review\r\nLOCATION:Room 1\r\nDESCRIPTION:a\\nb\r\n",
        "",
        {
            "status": "tentative",
            "summary": "Q1 review",
            "location": "Room 1",
            "description": "a\nb",
        },
    ),
    (
        "created wins",
        "DTSTART:20240105T100000Z\r\nCREATED:20231201T080000Z\r\nDTSTAMP:20231215T080000Z\r\n",
        "",
        {"created": utc(2023, 12, 1, 8)},
    ),
    (
        "dtstamp fallback",
        "DTSTART:20240105T100000Z\r\nDTSTAMP:20231215T080000Z\r\n",
        "",
        {"created": utc(2023, 12, 15, 8)},
    ),
]


@pytest.mark.parametrize(
    ("body", "tz", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_mapping(body: str, tz: str, expected: dict[str, object]) -> None:
    event = _one(body, tz)
    for name, value in expected.items():
        assert getattr(event, name) == value, name


def test_people_and_conference() -> None:
    event = _one(
        'DTSTART:20240105T100000Z\r\nORGANIZER;CN="Ann A":MAILTO:Ann@Example.COM\r\n'
        "ATTENDEE;PARTSTAT=ACCEPTED;CN=Bob:mailto:bob@example.com\r\n"
        "ATTENDEE;PARTSTAT=X-WEIRD;CUTYPE=ROOM:mailto:room1@example.com\r\n"
        "ATTENDEE;CUTYPE=X-ROBOT;PARTSTAT=DECLINED:mailto:bot@example.com\r\n"
        "ATTENDEE:mailto:carl@example.com\r\n"
        "CONFERENCE;VALUE=URI;FEATURE=VIDEO:https://meet.example.com/abc\r\n"
        "CONFERENCE;VALUE=URI;FEATURE=PHONE:tel:+1-555-0100,,123#\r\n"
        "X-GOOGLE-CONFERENCE:https://meet.google.com/xyz-abcd-efg\r\n"
        "X-MICROSOFT-SKYPETEAMSMEETINGURL:https://teams.microsoft.com/l/meetup-join/1\r\n"
        "X-MICROSOFT-ONLINEMEETINGCONFLINK:conf:sip:ann@example.com\r\n"
    )
    assert event.organizer is not None  # type: ignore[attr-defined]
    assert (event.organizer.email, event.organizer.name) == ("ann@example.com", "Ann A")  # type: ignore[attr-defined]
    people = {a.email: (a.name, a.response, a.kind) for a in event.attendees}  # type: ignore[attr-defined]
    assert people == {
        "bob@example.com": ("Bob", "accepted", "individual"),
        "room1@example.com": (None, "needs-action", "room"),
        "bot@example.com": (None, "declined", "unknown"),
        "carl@example.com": (None, "needs-action", "individual"),
    }
    assert event.conference == (  # type: ignore[attr-defined]
        "https://meet.example.com/abc",
        "tel:+1-555-0100,,123#",
        "https://meet.google.com/xyz-abcd-efg",
        "https://teams.microsoft.com/l/meetup-join/1",
        "conf:sip:ann@example.com",
    )


def test_version_changes_with_sequence_and_nul_is_removed() -> None:
    a = _one("DTSTART:20240105T100000Z\r\nSEQUENCE:1\r\nSUMMARY:a\x00b\r\n")
    b = _one("DTSTART:20240105T100000Z\r\nSEQUENCE:2\r\n")
    assert a.version != b.version  # type: ignore[attr-defined]
    assert a.summary == "ab"  # type: ignore[attr-defined]


def test_broken_series_does_not_hide_good_ones() -> None:
    data = (
        b"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\n"
        b"BEGIN:VEVENT\r\nUID:good\r\nDTSTART:20240105T100000Z\r\nEND:VEVENT\r\n"
        b"BEGIN:VEVENT\r\nUID:bad\r\nDTSTART:20240105T100000Z\r\nRRULE:FREQ=WEEKLY;UNTL=2019\r\n"
        b"END:VEVENT\r\nBEGIN:VTODO\r\nUID:todo\r\nEND:VTODO\r\nEND:VCALENDAR\r\n"
    )
    calendar, reasons = read_calendar_parts(data, resource="r", window=WINDOW, version="v")
    assert [e.uid for e in calendar.events] == ["good"]
    assert len(reasons) == 1 and "'bad'" in reasons[0]
    with pytest.raises(UnreadableCalendar):
        read_calendar(data, resource="r", window=WINDOW, version="v")
    with pytest.raises(UnreadableCalendar):
        read_calendar(b"not a calendar", resource="r", window=WINDOW, version="v")


def _corpus() -> list[Path]:
    if not DATA.is_dir():
        pytest.skip(f"no calendar corpus at {DATA}")
    return sorted(DATA.glob("*/*.ics"))


@pytest.mark.slow
def test_every_real_calendar_reads_or_fails_with_a_reason() -> None:
    good, failed = 0, {}
    for path in _corpus():
        try:
            calendar = read_calendar(
                path.read_bytes(), resource=path.name, window=WINDOW, version="v"
            )
        except UnreadableCalendar as error:
            assert str(error), path
            failed[path.name] = str(error)
            continue
        good += 1
        for event in calendar.events:
            assert event.start.tzinfo is UTC and event.end >= event.start, path
            assert event.uid and event.source_id.startswith(path.name + "#"), path
        assert len({e.source_id for e in calendar.events}) == len(calendar.events), path
    assert good >= 170, failed
    assert "issue_165_missing_event.ics" in failed  # broken UNTIL: documented negative case
    assert "broken_ical.ics" in failed


def test_recurring_corpus_moved_and_cancelled() -> None:
    path = DATA / "recurring-ical-events" / "issue_18_cancel_status.ics"
    if not path.exists():
        pytest.skip(f"missing {path}")
    events = read_calendar(path.read_bytes(), resource="r", window=WINDOW, version="v").events
    assert [e.status for e in events].count("cancelled") == 1
    assert all(e.recurrence_id is not None for e in events)


@pytest.mark.slow
def test_ics_file_connector_is_idempotent() -> None:
    _corpus()
    connector = IcsFileConnector([DATA], window=WINDOW, page_size=40)
    connector.check()
    first = list(connector.pull(None, since=WINDOW[0]))
    second = list(connector.pull(None, since=WINDOW[0]))
    assert first == second
    objects = [o for p in first for o in p.calendar]
    failures = [f for p in first for f in p.failures]
    assert all(len(p.calendar) + len(p.failures) <= 40 and p.cursor is None for p in first)
    assert len(objects) >= 170 and failures and all(f.reason for f in failures)
    assert all(o.resource.startswith("ics:") for o in objects)
    assert len(objects) + len(
        {f.source_id for f in failures} - {o.resource for o in objects}
    ) == len(connector.files())
