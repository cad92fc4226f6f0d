"""GraphCalendarConnector against the local emulator: calendarView delta, series (stub
occurrences filled from their master, exceptions, deleted occurrences), responses, online
meetings, the window, lost sync states."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from connectors.base import CalendarObject, CursorExpired, RemoteEvent
from connectors.microsoft import connect
from connectors.microsoft.calendar import GraphCalendarConnector
from connectors.microsoft.events import SeriesReader, to_event
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


def events_of(objects: list[CalendarObject]) -> list[RemoteEvent]:
    return sorted((e for o in objects for e in o.events), key=lambda e: e.start)


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
    master = ms.master_of(ANA, ids[0])
    calendar = calendar_of(ms)
    objects, cursor = drain(calendar)
    assert [o.resource for o in objects] == [master]  # one series, one resource
    events = events_of(objects)
    assert [e.source_id for e in events] == [f"{master}/{i}" for i in ids]
    assert [e.start for e in events] == [start + timedelta(weeks=n) for n in range(4)]
    assert all(e.recurrence_id == e.start for e in events)
    assert len({e.uid for e in events}) == 1  # the master's UID, shared by every attendee
    first = events[0]
    assert first.summary == "Weekly sync"
    assert first.organizer is not None and first.organizer.email == "joe@northwind.example"
    kinds = {a.email: a.kind for a in first.attendees}
    assert kinds["room.1@acme.example"] == "resource" and kinds[ANA] == "individual"
    assert any(c.startswith("https://teams.microsoft.com/") for c in first.conference)
    assert "tel:+3225550123" in first.conference
    assert first.created == start - timedelta(days=7)
    assert first.status == "confirmed" and not first.all_day

    moved = start + timedelta(weeks=1, hours=3)
    ms.move_occurrence(ANA, ids[1], moved)  # an exception: same id, new time
    ms.delete(ANA, ids[2])  # one occurrence cancelled: Exchange sends no @removed for it
    ms.respond(ANA, ids[3], ANA, "declined")
    changed, cursor = drain(calendar, cursor)
    [series] = changed  # the whole series again, with the window: ids[2] is gone from it
    assert series.resource == master and series.window is not None and not series.deleted
    by_id = {e.source_id.split("/")[1]: e for e in series.events}
    assert set(by_id) == {ids[0], ids[1], ids[3]}
    exception = by_id[ids[1]]
    assert exception.start == moved and exception.recurrence_id == start + timedelta(weeks=1)
    assert exception.summary == "Weekly sync" and exception.uid == first.uid
    declined = {a.email: a.response for a in by_id[ids[3]].attendees}
    assert declined[ANA] == "declined"
    assert ms.calls["event"] == 0  # every master came with its series

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
    reader = SeriesReader(ANA, fetch=lambda master_id: None)
    window = (NOW - timedelta(days=1), NOW)
    objects, failures = reader.read(
        [item, {"id": "bad", "start": {}}, {"id": "x", "@removed": {}}], window
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
    objects, cursor = drain(calendar)
    inside = [e for o in objects for e in o.events]
    assert len(inside) == len({e.source_id for e in inside}) >= 1900
    assert all(e.summary.startswith("Call ") and e.attendees for e in inside)
    # pages only: a series comes whole with its master (no GET /me/events), 100 entries a page
    masters = sum(1 for o in objects if o.events)
    assert ms.calls["event"] == 0
    assert ms.calls["calendar-delta"] <= -(-(len(inside) + masters) // 90)
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


def test_every_occurrence_of_a_series_has_its_masters_subject_organizer_and_attendees(
    ms: MicrosoftEmulator,
) -> None:
    start = (NOW - timedelta(days=35)).replace(hour=10, minute=0)
    ids = ms.add_event(
        ANA,
        subject="Customer check-in",
        start=start,
        weekly=7,
        attendees=[("kim@globex.example", "accepted")],
        online=True,
    )
    calendar = calendar_of(ms)
    window = {
        "startDateTime": (NOW - timedelta(days=60)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "endDateTime": (NOW + timedelta(days=60)).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    raw = calendar.client.get("me/calendarView/delta", params=window, headers=calendar.prefer)
    occurrence = next(e for e in raw["value"] if e["id"] == ids[3])
    # as Exchange answers (microsoft-graph-docs#7632): a stub, everything else on the master
    assert set(occurrence) - {"@odata.type", "@odata.etag"} == {
        "id",
        "seriesMasterId",
        "type",
        "start",
        "end",
    }
    objects, _ = drain(calendar)
    events = events_of(objects)
    assert len(events) == 7
    for event in events:
        assert event.summary == "Customer check-in"
        assert event.organizer is not None and event.organizer.email == ANA
        assert [a.email for a in event.attendees] == ["kim@globex.example"]
        assert any("teams.microsoft.com" in c for c in event.conference)
        assert event.created == start - timedelta(days=7)
    assert len({(e.uid, e.recurrence_id) for e in events}) == 7


def test_a_series_cut_over_two_pulls_reads_its_master_once(ms: MicrosoftEmulator) -> None:
    ms.split_series = True  # pages cut at the page size, even inside a series
    start = (NOW - timedelta(days=10)).replace(hour=8, minute=0)
    first = ms.add_event(
        ANA, subject="Alpha", start=start, weekly=4, attendees=[("a@x.example", "accepted")]
    )
    ms.add_event(
        ANA,
        subject="Beta",
        start=start + timedelta(hours=2),
        weekly=4,
        attendees=[("b@y.example", "accepted")],
    )
    calendar = calendar_of(ms)
    calendar.page_size = 3
    pages = calendar.pull(None, since=SINCE)
    head = next(pages)  # the first master and two of its occurrences, then the run stops
    pages.close()
    assert [e.summary for o in head.calendar for e in o.events] == ["Alpha", "Alpha"]
    assert all(o.window is not None and o.window[0] == o.window[1] for o in head.calendar)

    resumed = calendar_of(ms)  # a new run: it never saw the first master
    resumed.page_size = 3
    objects, _ = drain(resumed, head.cursor)
    events = events_of(objects)
    assert sorted(e.summary for e in events) == ["Alpha"] * 2 + ["Beta"] * 4
    assert all(e.attendees for e in events)
    assert ms.calls["event"] == 1  # Alpha's master, read once for its two remaining occurrences
    assert {e.source_id.split("/")[1] for e in events} >= set(first[2:])


def test_a_calendar_cursor_of_the_stub_blind_version_is_expired(ms: MicrosoftEmulator) -> None:
    calendar = calendar_of(ms)
    old = json.dumps({"v": 1, "window": None, "link": None})
    with pytest.raises(CursorExpired):
        drain(calendar, old)
