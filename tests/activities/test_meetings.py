"""Every rule of semantics §5, one row each: what a calendar event means for the organization."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from app.activities.eventtext import (
    DEFAULT_CALL_PATTERN,
    call_pattern_error,
    phone_field,
    title_is_call,
    video_links,
)
from app.activities.inference import Directory
from app.activities.meetings import classify, event_activities
from connectors.base import Attendee, RemoteEvent
from tests.factories import attendee, event

ANA, BOB, CAT = 1, 2, 3
DIRECTORY = Directory(
    internal_domains=frozenset({"acme.example"}),
    user_by_address={
        "ana@acme.example": ANA,
        "a.silva@acme.example": ANA,
        "bob@acme.example": BOB,
        "cat@acme.example": CAT,
    },
)
JOE = attendee("Joe Doe <joe@northwind.example>")
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CREATED = datetime(2026, 2, 20, 12, 0, tzinfo=UTC)
AFTER = START + timedelta(hours=2)
BEFORE = START + timedelta(minutes=30)  # started, not ended
DE = r"\b(anruf|telefonat)\b"
FR = r"appel|téléphone"


def ev(**fields: Any) -> RemoteEvent:
    fields.setdefault("attendees", (attendee("bob@acme.example"), JOE))
    return event(**fields)


def kind_of(call_pattern: str | None = None, region: str | None = None, **fields: Any) -> str:
    found = classify(ev(**fields), DIRECTORY, call_pattern, region=region)
    return found.kind or f"skip:{found.reason}"


@pytest.mark.parametrize(
    ("fields", "pattern", "expected"),
    [
        ({"status": "cancelled"}, None, "skip:cancelled"),
        ({"status": "CANCELLED"}, None, "skip:cancelled"),
        ({"all_day": True}, None, "skip:all_day"),
        ({"attendees": (attendee("bob@acme.example"),)}, None, "skip:internal_only"),
        ({"attendees": (attendee("bob@eu.acme.example"),)}, None, "skip:internal_only"),
        ({"attendees": (attendee("a.silva@acme.example"),)}, None, "skip:internal_only"),
        (
            {"attendees": (attendee("board@northwind.example", kind="room"),)},
            None,
            "skip:internal_only",
        ),
        (
            {"attendees": (attendee("beamer@northwind.example", kind="resource"),)},
            None,
            "skip:internal_only",
        ),
        (
            {"attendees": (attendee("all@northwind.example", kind="group"),)},
            None,
            "skip:internal_only",
        ),
        (
            {"attendees": (attendee("c_123@resource.calendar.google.com"),)},
            None,
            "skip:internal_only",
        ),
        ({"organizer": "joe@northwind.example", "attendees": ()}, None, "meeting"),
        ({"attendees": (attendee("x@northwind.example", kind="unknown"),)}, None, "meeting"),
        (
            {"attendees": (JOE, *(attendee(f"p{i}@acme.example") for i in range(49)))},
            None,
            "meeting",
        ),
        (
            {"attendees": (JOE, *(attendee(f"p{i}@acme.example") for i in range(50)))},
            None,
            "skip:oversized",
        ),
        ({}, None, "meeting"),
        ({"location": "tel:+14155550100"}, None, "call"),
        ({"location": "+1 415-555-0100,,123456#"}, None, "call"),
        ({"conference": ("tel:+1-415-555-0100;pin=123456",)}, None, "call"),
        ({"conference": ("+44 20 7946 0958",)}, None, "call"),
        ({"summary": "Intro call with Northwind"}, None, "call"),
        ({"summary": "PHONE screen"}, None, "call"),
        ({"summary": "Dial in: pricing"}, None, "call"),
        ({"summary": "Callback about pricing"}, None, "meeting"),
        ({"summary": "Recall the demo"}, None, "meeting"),
        ({"summary": "Telefonat mit Northwind"}, DE, "call"),
        ({"summary": "Kurzer Anruf"}, DE, "call"),
        ({"summary": "Intro call"}, DE, "meeting"),
        ({"summary": "Appel découverte"}, FR, "call"),
        ({"summary": "Rendez-vous téléphone"}, FR, "call"),
        ({"summary": "Appelation contrôlée"}, FR, "meeting"),
        ({"summary": "Call", "location": "https://meet.google.com/abc-defg-hij"}, None, "meeting"),
        ({"summary": "Call", "description": "Join: https://us02web.zoom.us/j/85"}, None, "meeting"),
        (
            {
                "location": "tel:+14155550100",
                "conference": ("https://teams.microsoft.com/l/meetup-join/19%3a",),
            },
            None,
            "meeting",
        ),
        (
            {"conference": ("https://acme.webex.com/meet/ana", "tel:+14155550100")},
            None,
            "meeting",
        ),
        (
            {"location": "+1 415 555 0100", "description": "or join at acme.zoom.us/j/1"},
            None,
            "meeting",
        ),
        ({"summary": "Call", "location": "Room 4.12"}, None, "call"),
        ({"location": "Room 4.12"}, None, "meeting"),
        ({"location": "1600 Amphitheatre Parkway, Mountain View, CA 94043"}, None, "meeting"),
        ({"location": "Northwind HQ, 500 Market St — +1 415 555 0100 reception"}, None, "meeting"),
    ],
    ids=lambda v: None,
)
def test_classify(fields: dict[str, Any], pattern: str | None, expected: str) -> None:
    assert kind_of(pattern, **fields) == expected


def test_phone_reason_and_numbers() -> None:
    found = classify(ev(location="tel:+1-415-555-0100"), DIRECTORY, None)
    assert (found.kind, found.reason, found.phones) == ("call", "phone", ("+14155550100",))
    found = classify(ev(location="(415) 555-0100"), DIRECTORY, None, region="US")
    assert (found.kind, found.phones) == ("call", ("+14155550100",))
    assert classify(ev(summary="Call"), DIRECTORY, None).reason == "title"


@pytest.mark.parametrize(
    ("text", "region", "expected"),
    [
        ("+1 415 555 0100", None, ("+14155550100",)),
        ("(415) 555-0100", "US", ("+14155550100",)),
        ("(415) 555-0100", None, ()),  # national format needs a region
        ("+44 20 7946 0958", None, ("+442079460958",)),
        ("030 1234567", "DE", ("+49301234567",)),
        ("+33 1 23 45 67 89", None, ("+33123456789",)),
        ("+81 3-1234-5678", None, ("+81312345678",)),
        ("+1 415-555-0100,,123456#", None, ("+14155550100",)),
        ("Dial-in: +49 30 1234567, PIN: 1234#", "DE", ("+49301234567",)),
        ("Einwahl 030 1234567 Konferenz-ID 998877", "DE", ("+49301234567",)),
        ("tel:+14155550100", None, ("+14155550100",)),
        ("TEL:+44-20-7946-0958;ext=12", None, ("+442079460958",)),
        ("1600 Amphitheatre Parkway, Mountain View, CA 94043", "US", ()),
        ("10115 Berlin, Friedrichstr. 123", "DE", ()),
        ("Room 4.12", "US", ()),
        ("Building 4, Floor 12, Room 1203", "US", ()),
        ("Konferenzraum 3.1.15", "DE", ()),
        ("2026-05-06", "US", ()),
        ("12/05/2026 10:30", "DE", ()),
        ("$1,299.00", "US", ()),
        ("EUR 4.500.000", "DE", ()),
        ("Meeting ID: 123 456 7890", "US", ()),
        ("", "US", ()),
    ],
    ids=lambda v: None,
)
def test_phone_field(text: str, region: str | None, expected: tuple[str, ...]) -> None:
    is_phone, numbers = phone_field(text, region)
    assert (is_phone, numbers) == (bool(expected), expected)


def test_tel_uri_counts_even_when_not_a_valid_number() -> None:
    assert phone_field("tel:1234", None)[0] is True


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("https://meet.google.com/abc-defg-hij", True),
        ("zoom.us/j/123456", True),
        ("https://us02web.zoom.us/j/8512?pwd=x", True),
        ("https://teams.microsoft.com/l/meetup-join/19%3ameeting", True),
        ("https://teams.live.com/meet/9381", True),
        ("https://acme.webex.com/acme/j.php?MTID=m1", True),
        ("https://global.gotomeeting.com/join/123", True),
        ("https://meet.goto.com/123", True),
        ("https://whereby.com/acme", True),
        ("https://meet.jit.si/AcmeDemo", True),
        ("https://bluejeans.com/123", True),
        ("https://chime.aws/1234567890", True),
        ("https://join.skype.com/abcdef", True),
        (
            "https://nam02.safelinks.protection.outlook.com/?url=https%3A%2F%2Fteams.microsoft.com"
            "%2Fl%2Fmeetup-join",
            True,
        ),
        ("mail me at ana@zoom.us", False),
        ("https://zoom.us.evil.example/j/1", False),
        ("https://google.com/maps", False),
        ("Room Zoom 3", False),
    ],
    ids=lambda v: None,
)
def test_video_links(text: str, found: bool) -> None:
    assert bool(video_links([text])) is found


@pytest.mark.parametrize(
    ("pattern", "ok"),
    [
        (DEFAULT_CALL_PATTERN, True),
        (DE, True),
        (FR, True),
        (r"llamada|chiamata", True),
        ("", False),
        ("   ", False),
        ("(call", False),
        ("x" * 201, False),
        (r"(a+)+", False),
        (r"(\w*\s?)*x", False),
        (r"(?:x{2,})*", False),
        (r"((ab)*c)+", False),
        (r"a*", False),  # matches every title
        (r"call|", False),
        (r"[(]call+", True),
        (r"(call)+", True),
        (r"(call|phone)?s", True),
    ],
    ids=lambda v: None,
)
def test_call_pattern_error(pattern: str, ok: bool) -> None:
    assert (call_pattern_error(pattern) is None) is ok


def test_call_pattern_matching() -> None:
    assert title_is_call("Quick CALL", None)
    assert not title_is_call("Callisto sync", None)
    assert title_is_call("Rückruf: Anruf", DE)
    assert title_is_call("call", "(((")  # unusable stored pattern: the default
    assert title_is_call("Call?", r"call\?")  # boundaries hold after a non-word character


# -- event_activities ---------------------------------------------------------------------------


def due(outcome: Any) -> list[tuple[int, str, datetime]]:
    return [(a.user_id, a.type, a.occurred_at) for a in outcome.activities]


@pytest.mark.parametrize(
    ("copies", "now", "expected"),
    [
        # meeting organized by Ana: scheduled at CREATED, held for both once ended
        (
            [(ANA, ev())],
            AFTER,
            [(ANA, "meeting_scheduled", CREATED), (ANA, "meeting_held", START),
             (BOB, "meeting_held", START)],
        ),
        ([(ANA, ev())], BEFORE, [(ANA, "meeting_scheduled", CREATED)]),
        # exactly at the end counts
        ([(ANA, ev())], START + timedelta(hours=1), [
            (ANA, "meeting_scheduled", CREATED), (ANA, "meeting_held", START),
            (BOB, "meeting_held", START)]),
        # a call: no meeting_scheduled, one call per user
        ([(ANA, ev(summary="Call"))], AFTER, [(ANA, "call", START), (BOB, "call", START)]),
        ([(ANA, ev(summary="Call"))], BEFORE, []),
        # external organizer: no meeting_scheduled
        (
            [(BOB, ev(organizer="joe@northwind.example",
                      attendees=(attendee("bob@acme.example"),)))],
            AFTER,
            [(BOB, "meeting_held", START)],
        ),
        # Bob declined: Ana still counts
        (
            [(ANA, ev(attendees=(attendee("bob@acme.example", "declined"), JOE)))],
            AFTER,
            [(ANA, "meeting_scheduled", CREATED), (ANA, "meeting_held", START)],
        ),
        # the organizer counts even when their attendee row says declined
        (
            [(ANA, ev(attendees=(attendee("ana@acme.example", "declined"), JOE)))],
            AFTER,
            [(ANA, "meeting_scheduled", CREATED), (ANA, "meeting_held", START)],
        ),
        # tentative and needs-action count
        (
            [(ANA, ev(attendees=(attendee("bob@acme.example", "tentative"),
                                 attendee("cat@acme.example", "needs-action"), JOE)))],
            AFTER,
            [(ANA, "meeting_scheduled", CREATED), (ANA, "meeting_held", START),
             (BOB, "meeting_held", START), (CAT, "meeting_held", START)],
        ),
        # the same event in two calendars: one set of activities
        (
            [(ANA, ev()), (BOB, ev(version="1", resource="bob/evt-1.ics"))],
            AFTER,
            [(ANA, "meeting_scheduled", CREATED), (ANA, "meeting_held", START),
             (BOB, "meeting_held", START)],
        ),
        # Bob declined in his own copy, the organizer's copy still says accepted: own wins
        (
            [(ANA, ev()), (BOB, ev(attendees=(attendee("bob@acme.example", "declined"), JOE)))],
            AFTER,
            [(ANA, "meeting_scheduled", CREATED), (ANA, "meeting_held", START)],
        ),
        # a calendar owner not on the attendee list (a group invitation) counts
        (
            [(CAT, ev(organizer="joe@northwind.example",
                      attendees=(attendee("team@northwind.example"),)))],
            AFTER,
            [(CAT, "meeting_held", START)],
        ),
        # Cat's own copy is cancelled (she was removed) while the event goes on
        (
            [(ANA, ev()), (CAT, ev(status="cancelled"))],
            AFTER,
            [(ANA, "meeting_scheduled", CREATED), (ANA, "meeting_held", START),
             (BOB, "meeting_held", START)],
        ),
        # a user attendee by an alias
        (
            [(BOB, ev(organizer="joe@northwind.example",
                      attendees=(attendee("a.silva@acme.example"), attendee("bob@acme.example"))))],
            AFTER,
            [(ANA, "meeting_held", START), (BOB, "meeting_held", START)],
        ),
    ],
    ids=[
        "meeting ended", "meeting not ended", "at the end", "call", "call not ended",
        "external organizer", "attendee declined", "organizer declined row",
        "tentative counts", "two copies", "own copy declines", "owner not listed",
        "own copy cancelled", "alias",
    ],
)  # fmt: skip
def test_event_activities(
    copies: list[tuple[int, RemoteEvent]], now: datetime, expected: list[tuple[int, str, datetime]]
) -> None:
    assert due(event_activities(copies, DIRECTORY, None, now)) == expected


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"status": "cancelled"}, "cancelled"),
        ({"all_day": True}, "all_day"),
        ({"attendees": (attendee("bob@acme.example"),)}, "internal_only"),
        ({"attendees": tuple(attendee(f"p{i}@northwind.example") for i in range(51))}, "oversized"),
    ],
    ids=lambda v: None,
)
def test_skipped_events_make_nothing(fields: dict[str, Any], reason: str) -> None:
    outcome = event_activities([(ANA, ev(**fields))], DIRECTORY, None, AFTER)
    assert (outcome.kind, outcome.reason, outcome.activities, outcome.contacts) == (
        None,
        reason,
        (),
        (),
    )


def test_copy_order_does_not_matter_and_organizer_copy_wins() -> None:
    organizer = ev(summary="Demo v2", version="1")
    stale = ev(summary="Demo", version="7", resource="bob/evt-1.ics")
    one = event_activities([(ANA, organizer), (BOB, stale)], DIRECTORY, None, AFTER)
    two = event_activities([(BOB, stale), (ANA, organizer)], DIRECTORY, None, AFTER)
    assert one == two
    assert {a.subject for a in one.activities} == {"Demo v2"}


def test_without_the_organizer_copy_the_highest_sequence_wins() -> None:
    old = ev(organizer="joe@northwind.example", summary="Old", version="2")
    new = ev(organizer="joe@northwind.example", summary="New", version="10")
    outcome = event_activities([(ANA, old), (BOB, new)], DIRECTORY, None, AFTER)
    assert {a.subject for a in outcome.activities} == {"New"}


def test_classification_from_the_chosen_copy() -> None:
    call = ev(summary="Call")
    moved_to_zoom = ev(summary="Call", location="https://zoom.us/j/1", resource="bob/x.ics")
    outcome = event_activities([(BOB, call), (ANA, moved_to_zoom)], DIRECTORY, None, AFTER)
    assert (outcome.kind, outcome.reason) == ("meeting", "video")


def test_moved_occurrence_is_held_at_its_new_start() -> None:
    original = START
    moved = original + timedelta(days=1, hours=3)
    occurrence = ev(start=moved, recurrence_id=original)
    outcome = event_activities([(ANA, occurrence)], DIRECTORY, None, moved + timedelta(hours=2))
    assert due(outcome) == [
        (ANA, "meeting_scheduled", CREATED),
        (ANA, "meeting_held", moved),
        (BOB, "meeting_held", moved),
    ]
    early = event_activities([(ANA, occurrence)], DIRECTORY, None, original + timedelta(hours=2))
    assert due(early) == [(ANA, "meeting_scheduled", CREATED)]


def test_contacts_are_external_people_with_the_best_name() -> None:
    room = attendee("board@northwind.example", kind="room")
    plain = Attendee("joe@northwind.example")
    organizer_copy = ev(attendees=(plain, attendee("amy@globex.example", "declined"), room))
    bob_copy = ev(attendees=(JOE, attendee("bob@acme.example")), resource="bob/e.ics")
    outcome = event_activities([(ANA, organizer_copy), (BOB, bob_copy)], DIRECTORY, None, AFTER)
    assert [(c.email, c.name) for c in outcome.contacts] == [
        ("amy@globex.example", None),
        ("joe@northwind.example", "Joe Doe"),
    ]


def test_external_organizer_is_a_contact_and_no_contacts_without_activities() -> None:
    copy = ev(organizer="Jo Smith <jo@globex.example>", attendees=(attendee("bob@acme.example"),))
    outcome = event_activities([(BOB, copy)], DIRECTORY, None, AFTER)
    assert [(c.email, c.name) for c in outcome.contacts] == [("jo@globex.example", "Jo Smith")]
    pending = event_activities([(BOB, copy)], DIRECTORY, None, BEFORE)
    assert (pending.kind, pending.activities, pending.contacts) == ("meeting", (), ())


def test_scheduled_uses_the_organizer_copy_created_else_the_earliest() -> None:
    later = CREATED + timedelta(days=1)
    copies = [(BOB, ev(created=CREATED)), (CAT, ev(created=later, resource="c.ics"))]
    outcome = event_activities(copies, DIRECTORY, None, BEFORE)
    assert due(outcome) == [(ANA, "meeting_scheduled", CREATED)]
    no_created = event_activities([(ANA, ev(created=None))], DIRECTORY, None, BEFORE)
    assert due(no_created) == []


def test_custom_pattern_and_region_reach_event_activities() -> None:
    copy = ev(summary="Telefonat", location="030 1234567")
    outcome = event_activities([(ANA, copy)], DIRECTORY, DE, AFTER, region="DE")
    assert (outcome.kind, outcome.reason, outcome.phones) == ("call", "phone", ("+49301234567",))
    outcome = event_activities([(ANA, replace(copy, location=""))], DIRECTORY, DE, AFTER)
    assert (outcome.kind, outcome.reason) == ("call", "title")


def test_no_copies() -> None:
    assert event_activities([], DIRECTORY, None, AFTER).reason == "no_copies"
