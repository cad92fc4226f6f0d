"""CalDavConnector against a real Radicale: backfill, incremental changes, errors, resumption."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from connectors.base import AuthExpired, CalendarObject, ConnectorError, CursorExpired, Page
from connectors.calendar.caldav import CalDavConnector
from tests.fixtures.radicale import RadicaleServer

SINCE = datetime(2000, 1, 1, tzinfo=UTC)


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _event(uid: str, start: datetime, *, extra: str = "", summary: str = "Demo") -> str:
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//tally//test//EN\r\nBEGIN:VEVENT\r\n"
        f"UID:{uid}\r\nDTSTAMP:20240101T000000Z\r\nDTSTART:{_stamp(start)}\r\n"
        f"DTEND:{_stamp(start + timedelta(hours=1))}\r\nSUMMARY:{summary}\r\n"
        "ORGANIZER;CN=Ann:mailto:ann@example.com\r\n"
        "ATTENDEE;PARTSTAT=ACCEPTED:mailto:bob@example.com\r\n"
        f"{extra}END:VEVENT\r\nEND:VCALENDAR\r\n"
    )


def _soon(days: int, hour: int = 10) -> datetime:
    base = datetime.now(UTC).replace(hour=hour, minute=0, second=0, microsecond=0)
    return base + timedelta(days=days)


def _pull(connector: CalDavConnector, cursor: str | None) -> list[Page]:
    return list(connector.pull(cursor, since=SINCE))


def _objects(pages: list[Page]) -> dict[str, CalendarObject]:
    return {o.resource: o for p in pages for o in p.calendar}


@pytest.fixture
def server(radicale: RadicaleServer) -> RadicaleServer:
    for user in ("ann", "bob"):
        radicale.add_user(user, f"{user}-secret")
        radicale.make_calendar(user, "sales", "Sales")
    return radicale


def _connector(server: RadicaleServer, user: str, **kwargs: object) -> CalDavConnector:
    return CalDavConnector(server.url, user, server.passwords[user], **kwargs)  # type: ignore[arg-type]


def test_backfill_of_several_users_and_shared_meeting(server: RadicaleServer) -> None:
    start = _soon(3)
    for user in ("ann", "bob"):
        server.put(user, f"/{user}/sales/", "shared.ics", _event("shared-1", start))
    server.put("ann", "/ann/sales/", "own.ics", _event("own-1", _soon(-10)))
    server.make_calendar("ann", "todo", "Tasks", comp="VTODO")
    server.put(
        "ann",
        "/ann/todo/",
        "t.ics",
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\n"
        "BEGIN:VTODO\r\nUID:t\r\nDTSTAMP:20240101T000000Z\r\nEND:VTODO\r\nEND:VCALENDAR\r\n",
    )
    ann = _objects(_pull(_connector(server, "ann"), None))
    bob = _objects(_pull(_connector(server, "bob"), None))
    assert set(ann) == {"/ann/sales/shared.ics", "/ann/sales/own.ics"}
    assert set(bob) == {"/bob/sales/shared.ics"}
    (a,) = ann["/ann/sales/shared.ics"].events
    (b,) = bob["/bob/sales/shared.ics"].events
    assert a.uid == b.uid == "shared-1" and a.recurrence_id is None is b.recurrence_id
    assert a.start == start and a.end == start + timedelta(hours=1)
    assert a.organizer is not None and a.organizer.email == "ann@example.com"
    assert a.source_id != b.source_id


@pytest.mark.parametrize(
    ("sync_tokens", "kind"),
    [(True, '"token"'), (False, '"ctag"')],
    ids=["sync-token", "ctag-etags"],  # servers without RFC 6578 get the second path
)
def test_incremental_add_move_cancel_delete(
    server: RadicaleServer, sync_tokens: bool, kind: str
) -> None:
    cal = "/ann/sales/"
    server.put("ann", cal, "move.ics", _event("move", _soon(1)))
    server.put("ann", cal, "cancel.ics", _event("cancel", _soon(2)))
    server.put("ann", cal, "delete.ics", _event("delete", _soon(3)))
    server.put("ann", cal, "same.ics", _event("same", _soon(4)))
    connector = _connector(server, "ann", sync_tokens=sync_tokens)
    pages = _pull(connector, None)
    assert len(_objects(pages)) == 4
    cursor = pages[-1].cursor
    assert cursor is not None and kind in cursor
    assert _objects(_pull(connector, cursor)) == {}  # nothing changed: nothing read
    moved = _soon(5, hour=15)
    server.put("ann", cal, "add.ics", _event("add", _soon(6)))
    server.put("ann", cal, "move.ics", _event("move", moved, extra="SEQUENCE:1\r\n"))
    server.put("ann", cal, "cancel.ics", _event("cancel", _soon(2), extra="STATUS:CANCELLED\r\n"))
    server.delete("ann", cal + "delete.ics")
    changes = _objects(_pull(connector, cursor))
    assert set(changes) == {cal + n for n in ("add.ics", "move.ics", "cancel.ics", "delete.ics")}
    assert changes[cal + "delete.ics"].deleted and not changes[cal + "delete.ics"].events
    assert changes[cal + "move.ics"].events[0].start == moved
    assert changes[cal + "cancel.ics"].events[0].status == "cancelled"
    assert changes[cal + "add.ics"].events[0].uid == "add"


def test_recurring_series_with_override_and_exdate(server: RadicaleServer) -> None:
    first = _soon(1)
    moved_from, moved_to = first + timedelta(days=2), first + timedelta(days=2, hours=3)
    ics = (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:x\r\nBEGIN:VEVENT\r\nUID:series\r\n"
        f"DTSTAMP:20240101T000000Z\r\nDTSTART:{_stamp(first)}\r\nDURATION:PT30M\r\n"
        f"RRULE:FREQ=DAILY;COUNT=5\r\nEXDATE:{_stamp(first + timedelta(days=1))}\r\n"
        "SUMMARY:Standup\r\nEND:VEVENT\r\nBEGIN:VEVENT\r\nUID:series\r\n"
        f"DTSTAMP:20240101T000000Z\r\nRECURRENCE-ID:{_stamp(moved_from)}\r\n"
        f"DTSTART:{_stamp(moved_to)}\r\nDURATION:PT30M\r\nSUMMARY:Moved\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    )
    for user in ("ann", "bob"):
        server.put(user, f"/{user}/sales/", "series.ics", ics)
    (ann,) = _objects(_pull(_connector(server, "ann"), None)).values()
    (bob,) = _objects(_pull(_connector(server, "bob"), None)).values()
    rids = [e.recurrence_id for e in ann.events]
    assert rids == [first + timedelta(days=d) for d in (0, 2, 3, 4)]
    assert rids == [e.recurrence_id for e in bob.events]
    assert ann.events[1].start == moved_to and ann.events[1].summary == "Moved"
    assert all(e.end - e.start == timedelta(minutes=30) for e in ann.events)


def test_calendar_filter_and_check(server: RadicaleServer) -> None:
    server.make_calendar("ann", "private", "Private")
    server.put("ann", "/ann/private/", "p.ics", _event("p", _soon(1)))
    server.put("ann", "/ann/sales/", "w.ics", _event("w", _soon(1)))
    connector = _connector(server, "ann", calendars=["Private"])
    connector.check()
    assert set(_objects(_pull(connector, None))) == {"/ann/private/p.ics"}


def test_wrong_password_is_auth_expired(server: RadicaleServer) -> None:
    connector = CalDavConnector(server.url, "ann", "wrong-password")
    with pytest.raises(AuthExpired) as caught:
        connector.check()
    assert "wrong-password" not in str(caught.value)
    with pytest.raises(AuthExpired):
        _pull(connector, None)


def test_garbage_sync_token_is_cursor_expired(server: RadicaleServer) -> None:
    server.put("ann", "/ann/sales/", "a.ics", _event("a", _soon(1)))
    connector = _connector(server, "ann")
    cursor = _pull(connector, None)[-1].cursor
    assert cursor is not None
    import json

    state = json.loads(cursor)
    state["calendars"]["/ann/sales/"]["token"] = "http://radicale.org/ns/sync/garbage"
    with pytest.raises(CursorExpired):
        _pull(connector, json.dumps(state))
    with pytest.raises(CursorExpired):
        _pull(connector, "not json")


def test_server_stopped_mid_sync_then_resume_loses_nothing(server: RadicaleServer) -> None:
    server.make_calendar("ann", "second", "Second")
    for i in range(5):
        server.put("ann", "/ann/sales/", f"w{i}.ics", _event(f"w{i}", _soon(i + 1)))
        server.put("ann", "/ann/second/", f"s{i}.ics", _event(f"s{i}", _soon(i + 1)))
    connector = _connector(server, "ann", page_size=2)
    seen: dict[str, CalendarObject] = {}
    last_cursor: str | None = None
    pages = connector.pull(None, since=SINCE)
    with pytest.raises(ConnectorError) as caught:
        for number, page in enumerate(pages):
            seen.update({o.resource: o for o in page.calendar})
            last_cursor = page.cursor
            if number == 1:
                server.stop()
    assert "secret" not in str(caught.value)
    assert last_cursor is not None
    server.start()
    seen.update(_objects(_pull(connector, last_cursor)))
    expected = {f"/ann/sales/w{i}.ics" for i in range(5)} | {
        f"/ann/second/s{i}.ics" for i in range(5)
    }
    assert set(seen) == expected
    final = _pull(connector, None)[-1].cursor
    assert _objects(_pull(connector, final)) == {}


def test_only_the_window_is_read(server: RadicaleServer) -> None:
    cal = "/ann/sales/"
    server.put("ann", cal, "old.ics", _event("old", _soon(-400)))  # 13 months back
    server.put("ann", cal, "recent.ics", _event("recent", _soon(-300)))
    server.put("ann", cal, "soon.ics", _event("soon", _soon(80)))
    server.put("ann", cal, "far.ics", _event("far", _soon(100)))  # beyond 3 months ahead
    connector = _connector(server, "ann", window_past_days=365, window_future_days=90)
    found = {
        o.resource.rsplit("/", 1)[-1]: [e.uid for e in o.events]
        for o in _objects(_pull(connector, None)).values()
    }
    assert {name: uids for name, uids in found.items() if uids} == {
        "recent.ics": ["recent"],
        "soon.ics": ["soon"],
    }
