"""GoogleCalendarConnector: the real google-api-python-client against the local emulator."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from connectors.base import AuthExpired, CalendarObject, CursorExpired, Page
from connectors.google import App, CalendarWatch, Endpoints, GoogleCalendarConnector, Quota
from connectors.google.pacing import CALENDAR_COSTS, Pacer
from tests.connectors.pulling import pull_pages
from tests.emulators.google import GoogleEmulator

NOW = datetime.now(UTC).replace(microsecond=0)
SINCE = NOW - timedelta(days=365)
ANA = "ana@acme.example"
FAST = Quota(units_per_window=100_000, costs=dict(CALENDAR_COSTS), max_wait_seconds=5.0)


@pytest.fixture
def google() -> Iterator[GoogleEmulator]:
    with GoogleEmulator() as emulator:
        yield emulator


def connector(google: GoogleEmulator, token: str, **kwargs: object) -> GoogleCalendarConnector:
    return GoogleCalendarConnector(
        account=ANA,
        refresh_token=token,
        app=App(google.client_id, google.client_secret),
        endpoints=Endpoints(api_url=google.url, token_uri=google.url + "token"),
        quota=FAST,
        pacer=Pacer(FAST),
        **kwargs,  # type: ignore[arg-type]
    )


def pull(
    calendar: GoogleCalendarConnector, cursor: str | None = None
) -> tuple[list[Page], str | None]:
    return pull_pages(calendar, cursor, since=SINCE)


def objects(pages: list[Page]) -> list[CalendarObject]:
    return [o for page in pages for o in page.calendar]


def at(days: float, hour: int = 10) -> dict[str, str]:
    moment = (NOW + timedelta(days=days)).replace(hour=hour, minute=0, second=0)
    return {"dateTime": moment.isoformat().replace("+00:00", "Z")}


def meeting(summary: str, days: float, **extra: object) -> dict[str, object]:
    return {
        "summary": summary,
        "start": at(days),
        "end": at(days, 11),
        "attendees": [
            {"email": ANA, "responseStatus": "accepted", "self": True},
            {"email": "joe@northwind.example", "displayName": "Joe", "responseStatus": "tentative"},
        ],
        **extra,
    }


def test_a_full_sync_reads_every_field_the_rules_need(google: GoogleEmulator) -> None:
    token = google.grant(ANA)
    google.put_event(
        ANA,
        meeting(
            "Demo",
            -3,
            id="demo1",
            location="Room 4",
            organizer={"email": "Joe@Northwind.example", "displayName": "Joe"},
            attendees=[
                {"email": ANA, "responseStatus": "declined", "self": True},
                {"email": "joe@northwind.example", "responseStatus": "accepted", "organizer": True},
                {"email": "kim@globex.example", "responseStatus": "needsAction"},
                {"email": "room@resource.calendar.google.com", "resource": True},
            ],
            conferenceData={
                "entryPoints": [
                    {"entryPointType": "video", "uri": "https://meet.google.com/abc-defg-hij"},
                    {"entryPointType": "phone", "uri": "tel:+1-555-0100", "pin": "1234"},
                    {"entryPointType": "more", "uri": "https://tel.meet/abc"},
                ]
            },
            hangoutLink="https://meet.google.com/abc-defg-hij",
            created="2026-01-02T03:04:05.000Z",
        ),
    )
    google.put_event(
        ANA,
        {
            "summary": "Holiday",
            "start": {"date": "2026-01-05"},
            "end": {"date": "2026-01-06"},
            "id": "allday",
        },
    )
    google.put_event(ANA, {**meeting("OOO", -2), "eventType": "outOfOffice", "id": "ooo"})
    google.put_event(ANA, {**meeting("Far", 400), "id": "far"})  # beyond the window
    pages, cursor = pull(connector(google, token))
    found = {o.resource: o for o in objects(pages)}
    demo = found["primary/demo1"].events[0]
    assert demo.uid == "demo1@google.com" and demo.recurrence_id is None
    assert demo.summary == "Demo" and demo.location == "Room 4"
    assert demo.organizer is not None and demo.organizer.email == "joe@northwind.example"
    assert [(a.email, a.response, a.kind) for a in demo.attendees] == [
        (ANA, "declined", "individual"),
        ("joe@northwind.example", "accepted", "individual"),
        ("kim@globex.example", "needs-action", "individual"),
        ("room@resource.calendar.google.com", "needs-action", "resource"),
    ]
    assert demo.conference == ("https://meet.google.com/abc-defg-hij", "tel:+1-555-0100")
    assert demo.created == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert demo.end - demo.start == timedelta(hours=1) and demo.version
    if "primary/allday" in found:
        holiday = found["primary/allday"].events
        assert not holiday or holiday[0].all_day
    assert found["primary/ooo"].events == ()  # not a meeting
    assert "primary/far" not in found  # outside the window of the full sync
    state = json.loads(cursor or "")
    assert state["token"] and state["page"] is None


def test_recurring_series_come_as_occurrences_and_a_cancelled_one_is_deleted(
    google: GoogleEmulator,
) -> None:
    token = google.grant(ANA)
    first = (NOW - timedelta(days=21)).replace(hour=9, minute=0, second=0)
    instances = google.put_series(
        ANA, {**meeting("Weekly", 0), "id": "weekly"}, first=first, count=6, every=timedelta(days=7)
    )
    calendar = connector(google, token)
    pages, cursor = pull(calendar)
    weekly = [o for o in objects(pages) if o.resource.startswith("primary/weekly_")]
    assert len(weekly) == 6
    events = [o.events[0] for o in weekly]
    assert {e.uid for e in events} == {"weekly@google.com"}
    assert sorted(e.recurrence_id for e in events) == [
        first + timedelta(days=7 * n) for n in range(6)
    ]  # type: ignore[type-var]
    google.cancel_event(ANA, instances[2]["id"])
    moved = {**instances[3], "start": at(2, 15), "end": at(2, 16)}
    google.put_event(ANA, moved)
    pages, cursor = pull(calendar, cursor)
    changed = {o.resource: o for o in objects(pages)}
    assert set(changed) == {f"primary/{instances[2]['id']}", f"primary/{instances[3]['id']}"}
    assert changed[f"primary/{instances[2]['id']}"].deleted
    occurrence = changed[f"primary/{instances[3]['id']}"].events[0]
    assert occurrence.recurrence_id == first + timedelta(days=21)  # still its original slot
    assert occurrence.start.hour == 15
    pages, cursor = pull(calendar, cursor)  # nothing new
    assert objects(pages) == []


def test_paging_keeps_the_old_token_until_the_last_page(google: GoogleEmulator) -> None:
    token = google.grant(ANA)
    for number in range(25):
        google.put_event(ANA, meeting(f"m{number}", -number / 2))
    calendar = connector(google, token, page_size=10)
    stream = calendar.pull(None, since=SINCE)
    first = next(stream)
    state = json.loads(first.cursor or "")
    assert state["page"] and not state.get("token")
    resumed, cursor = pull(connector(google, token, page_size=10), first.cursor)
    assert len(objects(resumed)) == 15 and json.loads(cursor or "")["token"]


def test_an_expired_sync_token_asks_for_a_full_sync(google: GoogleEmulator) -> None:
    token = google.grant(ANA)
    google.put_event(ANA, meeting("Demo", -1))
    calendar = connector(google, token)
    _, cursor = pull(calendar)
    gone = google.put_event(ANA, meeting("Deleted during the gap", -2))
    google.cancel_event(ANA, gone["id"])
    google.expire_sync_tokens(ANA)
    with pytest.raises(CursorExpired):
        pull(calendar, cursor)
    pages, cursor = pull(calendar, None)  # what the runner does: drop the cursor, start again
    found = {o.resource: o for o in objects(pages)}
    assert found[f"primary/{gone['id']}"].deleted  # showDeleted: the gap's deletions are seen
    assert sum(1 for o in found.values() if o.events) == 1


def test_a_revoked_grant_is_auth_expired(google: GoogleEmulator) -> None:
    token = google.grant(ANA)
    google.revoke(ANA)
    with pytest.raises(AuthExpired, match="reconnect"):
        pull(connector(google, token))


def test_the_watch_channel_is_opened_and_renewed_before_it_expires(google: GoogleEmulator) -> None:
    token = google.grant(ANA)
    watch = CalendarWatch("http://127.0.0.1:9/api/v1/push/google/calendar", "7.abc", "tally-7-")
    calendar = connector(google, token, watch=watch)
    _, cursor = pull(calendar)
    channels = google.account(ANA).channels
    assert len(channels) == 1 and channels[0]["token"] == "7.abc"
    assert channels[0]["id"].startswith("tally-7-")
    _, cursor = pull(calendar, cursor)
    assert len(channels) == 1
    state = json.loads(cursor or "")
    state["watch"]["expiration"] = int(datetime.now(UTC).timestamp() * 1000) + 3600_000
    pull(calendar, json.dumps(state))
    assert len(channels) == 2 and channels[0].get("stopped")  # the old one is closed


def test_a_rotated_push_secret_or_a_new_address_opens_a_channel_on_the_new_terms(
    google: GoogleEmulator,
) -> None:
    token = google.grant(ANA)
    address = "http://127.0.0.1:9/api/v1/push/google/calendar"
    _, cursor = pull(connector(google, token, watch=CalendarWatch(address, "7.old", "tally-7-")))
    rotated = connector(google, token, watch=CalendarWatch(address, "7.new", "tally-7-"))
    _, cursor = pull(rotated, cursor)
    channels = google.account(ANA).channels
    assert [(c["token"], bool(c.get("stopped"))) for c in channels] == [
        ("7.old", True),  # a channel keeps its token: the old one is closed
        ("7.new", False),
    ]
    _, cursor = pull(rotated, cursor)
    assert len(channels) == 2  # the new terms are remembered: no churn
    moved = CalendarWatch("https://tally.example/api/v1/push/google/calendar", "7.new", "tally-7-")
    pull(connector(google, token, watch=moved), cursor)
    assert len(channels) == 3 and channels[-1]["address"] == moved.address
