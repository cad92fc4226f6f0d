"""Calendar copies become meetings and calls, and follow the event when it moves or goes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from app.activities.models import Activity, EventCopy
from app.contacts.models import ActivityContact, Contact
from app.db import Database, session_scope
from connectors.base import CalendarObject, RemoteEvent
from tests.factories import attendee, event
from tests.world import World, make_world

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
AFTER = START + timedelta(days=1)  # the meeting has ended
BEFORE = START - timedelta(days=1)  # it has not
JOE = "Joe Smith <joe@northwind.example>"


def rows(world: World) -> list[tuple[str, str, str, str]]:
    """(user, type, occurred_at, linked contacts) for every calendar activity."""
    names = {uid: local for local, uid in world.users.items()}
    with session_scope() as session:
        found = session.execute(
            select(Activity.id, Activity.user_id, Activity.type, Activity.occurred_at).where(
                Activity.type.in_(["meeting_scheduled", "meeting_held", "call"])
            )
        ).all()
        out = []
        for pk, user_id, kind, when in found:
            emails = session.scalars(
                select(Contact.email)
                .join(ActivityContact, ActivityContact.contact_id == Contact.id)
                .where(ActivityContact.activity_id == pk)
            )
            out.append((names[user_id], kind, when.isoformat()[:16], ",".join(sorted(emails))))
    return sorted(out)


def obj(*events: RemoteEvent, resource: str = "cal/evt-1.ics") -> CalendarObject:
    return CalendarObject(resource, events)


def demo(**changes: object) -> RemoteEvent:
    fields: dict[str, object] = {
        "start": START,
        "attendees": (attendee(JOE), attendee("bob@acme.example")),
    }
    fields.update(changes)
    return event(**fields)  # type: ignore[arg-type]


def test_a_meeting_is_scheduled_for_its_organizer_and_held_by_everyone_after_it_ends(
    database: Database,
) -> None:
    world = make_world()
    assert world.calendar("ana", obj(demo()), now=AFTER) == 3
    joe = "joe@northwind.example"
    assert rows(world) == [
        ("ana", "meeting_held", "2026-03-02T09:00", joe),
        ("ana", "meeting_scheduled", "2026-02-20T12:00", joe),
        ("bob", "meeting_held", "2026-03-02T09:00", joe),
    ]


def test_the_same_event_in_two_calendars_counts_once(database: Database) -> None:
    world = make_world()
    world.calendar("ana", obj(demo()), now=AFTER)
    before = rows(world)
    assert world.calendar("bob", obj(demo(), resource="bob/x.ics"), now=AFTER) == 0
    assert world.calendar("ana", obj(demo()), now=AFTER) == 0  # a replay
    assert rows(world) == before


def test_held_only_once_the_event_has_ended(database: Database) -> None:
    world = make_world()
    world.calendar("ana", obj(demo()), now=BEFORE)
    assert [r[:2] for r in rows(world)] == [("ana", "meeting_scheduled")]
    assert world.settle(now=START + timedelta(minutes=30)) == 0  # still going on
    assert world.settle(now=AFTER) == 2
    assert world.settle(now=AFTER) == 0
    assert [r[:2] for r in rows(world)] == [
        ("ana", "meeting_held"),
        ("ana", "meeting_scheduled"),
        ("bob", "meeting_held"),
    ]


def test_a_moved_event_moves_its_activities(database: Database) -> None:
    world = make_world()
    world.calendar("ana", obj(demo()), now=AFTER)
    later = START + timedelta(hours=3)
    world.calendar("ana", obj(demo(start=later, version="2")), now=AFTER)
    held = [r[2] for r in rows(world) if r[1] == "meeting_held"]
    assert held == ["2026-03-02T12:00", "2026-03-02T12:00"]


def test_a_cancelled_or_deleted_event_takes_its_activities_away(database: Database) -> None:
    world = make_world()
    world.calendar("ana", obj(demo()), now=AFTER)
    world.calendar("ana", obj(demo(status="cancelled", version="2")), now=AFTER)
    assert rows(world) == []
    world.calendar("ana", obj(demo(version="3")), now=AFTER)
    assert len(rows(world)) == 3
    world.calendar("ana", CalendarObject("cal/evt-1.ics", deleted=True), now=AFTER)
    assert rows(world) == []
    with session_scope() as session:
        assert session.scalars(select(EventCopy)).all() == []


def test_a_user_declining_in_their_own_calendar_drops_only_their_meeting(
    database: Database,
) -> None:
    world = make_world()
    world.calendar("ana", obj(demo()), now=AFTER)
    declined = demo(attendees=(attendee(JOE), attendee("bob@acme.example", "declined")))
    world.calendar("bob", obj(declined, resource="bob/x.ics"), now=AFTER)
    assert [r[:2] for r in rows(world)] == [("ana", "meeting_held"), ("ana", "meeting_scheduled")]


def test_an_occurrence_gone_from_its_series_goes_and_the_rest_stay(database: Database) -> None:
    world = make_world()
    week = timedelta(days=7)
    series = [
        demo(uid="weekly", start=START + n * week, recurrence_id=START + n * week) for n in range(3)
    ]
    window = (START - week, START + 10 * week)
    world.calendar("ana", CalendarObject("cal/w.ics", tuple(series), window), now=AFTER + 3 * week)
    assert len([r for r in rows(world) if r[1] == "meeting_held" and r[0] == "ana"]) == 3
    kept = (series[0], series[2])
    world.calendar("ana", CalendarObject("cal/w.ics", kept, window), now=AFTER + 3 * week)
    held = sorted(r[2] for r in rows(world) if r[1] == "meeting_held" and r[0] == "ana")
    assert held == ["2026-03-02T09:00", "2026-03-16T09:00"]
    # a later window that no longer reaches the first occurrence keeps what it counted
    late = (START + week, START + 10 * week)
    world.calendar("ana", CalendarObject("cal/w.ics", (series[2],), late), now=AFTER + 3 * week)
    held = sorted(r[2] for r in rows(world) if r[1] == "meeting_held" and r[0] == "ana")
    assert held == ["2026-03-02T09:00", "2026-03-16T09:00"]


def test_a_calendar_call_is_a_call_not_a_meeting(database: Database) -> None:
    world = make_world()
    call = demo(summary="Call with Joe", attendees=(attendee(JOE),))
    world.calendar("ana", obj(call), now=AFTER)
    assert rows(world) == [("ana", "call", "2026-03-02T09:00", "joe@northwind.example")]


def test_internal_only_events_count_nothing(database: Database) -> None:
    world = make_world()
    internal = demo(attendees=(attendee("bob@acme.example"),))
    assert world.calendar("ana", obj(internal), now=AFTER) == 0
    assert rows(world) == []


def test_two_calendar_calls_with_the_same_person_minutes_apart_in_one_page_are_one_call(
    database: Database,
) -> None:
    world = make_world()

    def call(uid: str, minutes: int) -> CalendarObject:
        resource = f"cal/{uid}.ics"
        at = START + timedelta(minutes=minutes)
        summary = f"Call Joe ({uid})"
        return obj(
            demo(uid=uid, resource=resource, start=at, summary=summary, attendees=(attendee(JOE),)),
            resource=resource,
        )

    objects = (call("evt-1", 0), call("evt-2", 3), call("evt-3", 30))
    world.calendar("ana", *objects, now=AFTER)
    joe = "joe@northwind.example"
    assert rows(world) == [
        ("ana", "call", "2026-03-02T09:00", joe),
        ("ana", "call", "2026-03-02T09:30", joe),
    ]


def test_a_page_that_holds_a_resource_twice_keeps_its_later_version(database: Database) -> None:
    world = make_world()
    moved = demo(start=START + timedelta(hours=2), version="2")
    world.calendar("ana", obj(demo()), obj(moved), now=AFTER)
    with session_scope() as session:
        copies = session.execute(select(EventCopy.version, EventCopy.starts_at)).all()
    assert [(v, s.isoformat()[:16]) for v, s in copies] == [("2", "2026-03-02T11:00")]
    held = [r for r in rows(world) if r[1] == "meeting_held"]
    assert {r[2] for r in held} == {"2026-03-02T11:00"}
