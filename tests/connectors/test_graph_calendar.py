"""GraphCalendarConnector against the local emulator: calendarView delta, occurrences and
exceptions, responses, online meetings, the window, lost sync states."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from connectors.base import CalendarObject
from connectors.microsoft import connect
from connectors.microsoft.calendar import GraphCalendarConnector, read_page, to_event
from tests.connectors.pulling import pull_pages
from tests.connectors.test_graph_mail import app_of, consent
from tests.emulators.microsoft import MicrosoftEmulator

NOW = datetime.now(UTC).replace(microsecond=0, second=0)
SINCE = NOW - timedelta(days=365)
ANA = "ana@acme.example"


@pytest.fixture
def ms() -> Iterator[MicrosoftEmulator]:
    emulator = MicrosoftEmulator().start()
    emulator.add_user(ANA)
    yield emulator
    emulator.stop()


def calendar_of(ms: MicrosoftEmulator, **options: Any) -> GraphCalendarConnector:
    _, calendar = connect(app_of(ms), consent(ms, ANA), account=ANA, **options)
    calendar.client._sleep = lambda seconds: None
    return calendar


def drain(
    connector: GraphCalendarConnector, cursor: str | None = None
) -> tuple[list[CalendarObject], str | None]:
    pages, cursor = pull_pages(connector, cursor, since=SINCE)
    return [o for p in pages for o in p.calendar], cursor


def test_a_recurring_series_with_an_exception_and_a_cancelled_occurrence(
    ms: MicrosoftEmulator,
) -> None:
    start = (NOW - timedelta(days=14)).replace(hour=9, minute=0)
    ids = ms.add_event(
        ANA,
        subject="Weekly sync",
        start=start,
        weekly=4,
        organizer="joe@northwind.example",
        attendees=[
            (ANA, "accepted"),
            ("joe@northwind.example", "organizer"),
            ("room.1@acme.example", "accepted", "resource"),
        ],
        online=True,
        toll_number="+32 2 555 01 23",
    )
    calendar = calendar_of(ms)
    objects, cursor = drain(calendar)
    assert sorted(o.resource for o in objects) == sorted(ids)
    events = sorted((e for o in objects for e in o.events), key=lambda e: e.start)
    assert [e.start for e in events] == [start + timedelta(weeks=n) for n in range(4)]
    assert all(e.recurrence_id == e.start for e in events)
    assert len({e.uid for e in events}) == 4  # Exchange: one iCalUId per occurrence
    first = events[0]
    assert first.organizer is not None and first.organizer.email == "joe@northwind.example"
    kinds = {a.email: a.kind for a in first.attendees}
    assert kinds["room.1@acme.example"] == "resource" and kinds[ANA] == "individual"
    assert any(c.startswith("https://teams.microsoft.com/") for c in first.conference)
    assert "tel:+3225550123" in first.conference
    assert first.created == start - timedelta(days=7)
    assert first.status == "confirmed" and not first.all_day

    moved = start + timedelta(weeks=1, hours=3)
    ms.move_occurrence(ANA, ids[1], moved)  # an exception: same id, new time
    ms.delete(ANA, ids[2])  # one occurrence cancelled
    ms.respond(ANA, ids[3], ANA, "declined")
    changed, cursor = drain(calendar, cursor)
    by_id = {o.resource: o for o in changed}
    assert set(by_id) == {ids[1], ids[2], ids[3]}
    assert by_id[ids[2]].deleted
    exception = by_id[ids[1]].events[0]
    assert exception.start == moved and exception.recurrence_id == start + timedelta(weeks=1)
    declined = {a.email: a.response for a in by_id[ids[3]].events[0].attendees}
    assert declined[ANA] == "declined"

    nothing, _ = drain(calendar, cursor)
    assert nothing == []


def test_the_owners_own_response_wins() -> None:
    item = {
        "id": "e1",
        "iCalUId": "uid-1",
        "type": "singleInstance",
        "subject": "Demo",
        "start": {"dateTime": "2026-03-02T09:00:00.0000000", "timeZone": "UTC"},
        "end": {"dateTime": "2026-03-02T10:00:00.0000000", "timeZone": "UTC"},
        "organizer": {"emailAddress": {"address": "joe@northwind.example"}},
        "attendees": [],  # invited through a group: not listed
        "responseStatus": {"response": "declined"},
        "isCancelled": False,
        "createdDateTime": "2026-02-20T08:00:00Z",
        "changeKey": "k1",
    }
    event = to_event(item, ANA)
    assert [(a.email, a.response) for a in event.attendees] == [(ANA, "declined")]
    assert event.start == datetime(2026, 3, 2, 9, tzinfo=UTC)
    assert event.version == "k1" and event.recurrence_id is None
    other_zone = {
        **item,
        "start": {"dateTime": "2026-03-02T09:00:00", "timeZone": "Europe/Brussels"},
    }
    assert to_event(other_zone, ANA).start == datetime(2026, 3, 2, 8, tzinfo=UTC)
    cancelled = to_event({**item, "isCancelled": True}, ANA)
    assert cancelled.status == "cancelled"
    objects, failures = read_page(
        [item, {"id": "bad", "start": {}}, {"id": "x", "@removed": {}}], ANA
    )
    assert [o.resource for o in objects] == ["e1", "x"] and objects[1].deleted
    assert [f.source_id for f in failures] == ["bad"]


def test_backfill_of_thousands_of_events_in_pages(ms: MicrosoftEmulator) -> None:
    for i in range(400):
        ms.add_event(
            ANA,
            subject=f"Call {i}",
            start=NOW - timedelta(days=300) + timedelta(hours=17 * i),
            weekly=5,
            attendees=[(f"c{i}@northwind.example", "accepted")],
        )
    calendar = calendar_of(ms)
    before = ms.graph_requests
    objects, cursor = drain(calendar)
    inside = [e for o in objects for e in o.events]
    assert len(inside) == len({e.source_id for e in inside}) >= 1900
    assert ms.graph_requests - before == -(-len(inside) // 100)  # pages only
    assert cursor is not None and json.loads(cursor)["link"]


def test_an_all_day_event_and_events_outside_the_window(ms: MicrosoftEmulator) -> None:
    ms.add_event(ANA, subject="Offsite", start=NOW + timedelta(days=3), all_day=True)
    ms.add_event(ANA, subject="Far future", start=NOW + timedelta(days=400))
    ms.add_event(ANA, subject="Long ago", start=NOW - timedelta(days=800))
    objects, _ = drain(calendar_of(ms))
    events = [e for o in objects for e in o.events]
    assert [e.summary for e in events] == ["Offsite"]
    assert events[0].all_day and events[0].end - events[0].start == timedelta(days=1)


def test_an_event_moved_out_of_the_window_is_deleted(ms: MicrosoftEmulator) -> None:
    [event] = ms.add_event(ANA, subject="Demo", start=NOW + timedelta(days=2))
    calendar = calendar_of(ms)
    _, cursor = drain(calendar)
    ms.update(
        ANA,
        event,
        start={
            "dateTime": (NOW + timedelta(days=500)).strftime("%Y-%m-%dT%H:%M:%S"),
            "timeZone": "UTC",
        },
        end={
            "dateTime": (NOW + timedelta(days=501)).strftime("%Y-%m-%dT%H:%M:%S"),
            "timeZone": "UTC",
        },
    )
    objects, _ = drain(calendar, cursor)
    assert [(o.resource, o.deleted) for o in objects] == [(event, True)]


def test_a_lost_sync_state_restarts_the_round(ms: MicrosoftEmulator) -> None:
    ms.add_event(ANA, subject="One", start=NOW + timedelta(days=1))
    calendar = calendar_of(ms)
    _, cursor = drain(calendar)
    ms.expire_sync_states(ANA)
    ms.add_event(ANA, subject="Two", start=NOW + timedelta(days=2))
    objects, cursor = drain(calendar, cursor)
    assert sorted(e.summary for o in objects for e in o.events) == ["One", "Two"]


def test_a_window_that_moved_on_drains_the_old_round_then_starts_a_new_one(
    ms: MicrosoftEmulator,
) -> None:
    [gone] = ms.add_event(ANA, subject="Soon", start=NOW + timedelta(days=1))
    calendar = calendar_of(ms)
    _, cursor = drain(calendar)
    assert cursor is not None
    state = json.loads(cursor)
    old_start, old_end = (datetime.fromisoformat(w) for w in state["window"])
    state["window"] = [
        (old_start - timedelta(days=30)).isoformat(),
        (old_end - timedelta(days=30)).isoformat(),
    ]  # as if stored 30 days ago
    ms.delete(ANA, gone)
    ms.add_event(ANA, subject="Later", start=NOW + timedelta(days=80))
    objects, cursor = drain(calendar, json.dumps(state))
    assert (gone, True) in [(o.resource, o.deleted) for o in objects]  # from the old round
    assert "Later" in [e.summary for o in objects for e in o.events]
    assert cursor is not None
    _, new_end = (datetime.fromisoformat(w) for w in json.loads(cursor)["window"])
    assert new_end - old_end < timedelta(minutes=5)
