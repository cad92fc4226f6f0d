"""End to end against a real Radicale: a rep connects a CalDAV calendar through the API, the
worker syncs it, and the metrics and quota attainment a manager reads are the values this test
derives, independently, from the events it put on the server (semantics §5 restated below for
exactly these events). Then the server changes between syncs, goes away mid-sync, and holds
every real calendar of tests/data/ics beside a broken one."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.activities import events
from app.activities.ingest import load_directory
from app.activities.models import EventCopy, Observation
from app.config import settings
from app.db import session_scope
from app.models import Connection
from app.sync import registry, runner
from connectors.base import Address, Attendee, CalendarObject, RemoteEvent
from connectors.calendar.ics import UnreadableCalendar, read_calendar_parts
from tests.api import Org, make_org
from tests.fakes import interrupt_syncs
from tests.fixtures.radicale import RadicaleServer

CORPUS = Path(__file__).resolve().parent.parent / "data" / "ics"
ZONE = ZoneInfo("Europe/Brussels")  # make_org's default time zone
NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
ANA, BOB = "ana@acme.example", "bob@acme.example"
USERS = (ANA, BOB)
METRICS = ("meetings_scheduled", "meetings_held", "calls", "contacts_engaged")
Kind = Literal["meeting", "call"] | None


def day(offset: int, hour: int = 10) -> datetime:
    """`offset` days from now at `hour`:00 UTC."""
    return (NOW + timedelta(days=offset)).replace(hour=hour)


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _text(value: str) -> str:
    return value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")


@dataclass(frozen=True)
class Ev:
    """One event as a calendar client writes it, and what it is for §5 (`kind`: set by hand,
    None when §5 skips it: cancelled, all-day, internal only)."""

    uid: str
    start: datetime
    summary: str
    kind: Kind
    organizer: str = ANA
    attendees: tuple[tuple[str, str], ...] = (("joe@northwind.example", "ACCEPTED"),)
    minutes: int = 60
    location: str = ""
    description: str = ""
    status: str = "CONFIRMED"
    all_day: bool = False
    created: datetime = field(default_factory=lambda: day(-60, 8))
    sequence: int = 0
    weekly: int = 0  # COUNT of a weekly series; 0: a single event
    exdates: tuple[int, ...] = ()  # occurrence numbers removed with EXDATE
    moved: tuple[tuple[int, timedelta], ...] = ()  # occurrence number -> shift (an override)
    cancelled: tuple[int, ...] = ()  # occurrence numbers cancelled by an override

    def people(self, status: str = "") -> list[str]:
        lines = [f"ORGANIZER;CN={self.organizer.split('@')[0].title()}:mailto:{self.organizer}"]
        lines += [
            f"ATTENDEE;PARTSTAT={p};CN={e.split('@')[0]}:mailto:{e}" for e, p in self.attendees
        ]
        return lines

    def _component(self, start: datetime, extra: list[str], status: str) -> list[str]:
        lines = [
            "BEGIN:VEVENT",
            f"UID:{self.uid}",
            f"DTSTAMP:{_stamp(self.created)}",
            f"CREATED:{_stamp(self.created)}",
            f"SEQUENCE:{self.sequence}",
            f"SUMMARY:{_text(self.summary)}",
            f"STATUS:{status}",
        ]
        if self.all_day:
            lines += [f"DTSTART;VALUE=DATE:{start:%Y%m%d}"]
        else:
            end = start + timedelta(minutes=self.minutes)
            lines += [f"DTSTART:{_stamp(start)}", f"DTEND:{_stamp(end)}"]
        lines += [f"LOCATION:{_text(self.location)}"] * bool(self.location)
        lines += [f"DESCRIPTION:{_text(self.description)}"] * bool(self.description)
        return lines + self.people() + extra + ["END:VEVENT"]

    def ics(self) -> str:
        extra: list[str] = []
        if self.weekly:
            extra.append(f"RRULE:FREQ=WEEKLY;COUNT={self.weekly}")
            extra += [f"EXDATE:{_stamp(self.original(n))}" for n in self.exdates]
        parts = self._component(self.start, extra, self.status)
        overrides = {n: (shift, "CONFIRMED") for n, shift in self.moved}
        overrides |= {n: (timedelta(0), "CANCELLED") for n in self.cancelled}
        for number, (shift, status) in sorted(overrides.items()):
            rid = [f"RECURRENCE-ID:{_stamp(self.original(number))}"]
            parts += self._component(self.original(number) + shift, rid, status)
        body = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//tally//caldav sync test//EN"]
        return "\r\n".join([*body, *parts, "END:VCALENDAR"]) + "\r\n"

    def original(self, number: int) -> datetime:
        return self.start + timedelta(weeks=number)

    def occurrences(self) -> list[tuple[datetime, datetime]]:
        """(start, end) of every live occurrence, moved ones at their new time."""
        shifts = dict(self.moved)
        numbers = range(self.weekly) if self.weekly else range(1)
        starts = [
            self.original(n) + shifts.get(n, timedelta(0))
            for n in numbers
            if n not in self.exdates and n not in self.cancelled
        ]
        return [(s, s + timedelta(minutes=self.minutes)) for s in starts]


def external(email: str) -> bool:
    return not email.endswith("@acme.example")


def week(moment: datetime) -> date:
    local = moment.astimezone(ZONE).date()
    return local - timedelta(days=local.weekday())


Expected = dict[tuple[str, str], Counter[date]]  # (metric, user) -> value per week


def derive(calendars: dict[str, list[Ev]], now: datetime) -> Expected:
    """§5 and §6 for these events: one event however many calendars hold it; the organizer
    schedules a meeting (at CREATED); everyone who organized or did not decline holds it or
    had the call, at its start, once it has ended; the external people are its contacts."""
    expected: Expected = {(m, u): Counter() for m in METRICS for u in USERS}
    engaged: dict[tuple[str, date], set[str]] = {}
    events = {e.uid: e for evs in calendars.values() for e in evs}
    holders = {uid: {u for u, evs in calendars.items() if any(e.uid == uid for e in evs)}
               for uid in events}  # fmt: skip
    for uid, ev in events.items():
        if ev.kind is None:
            continue
        contacts = {e for e, _ in ev.attendees if external(e)} | (
            {ev.organizer} if external(ev.organizer) else set()
        )
        going = {e for e, p in ev.attendees if e in USERS and p != "DECLINED"}
        declined = {e for e, p in ev.attendees if e in USERS and p == "DECLINED"}
        participants = (going | holders[uid] | ({ev.organizer} & set(USERS))) - declined
        if ev.organizer in USERS:
            participants.add(ev.organizer)
        for start, end in ev.occurrences():
            done: list[tuple[str, str, datetime]] = []
            if ev.kind == "meeting" and ev.organizer in USERS:
                done.append(("meetings_scheduled", ev.organizer, ev.created))
            if end <= now:
                metric = "calls" if ev.kind == "call" else "meetings_held"
                done += [(metric, user, start) for user in participants]
            for metric, user, when in done:
                expected[(metric, user)][week(when)] += 1
                engaged.setdefault((user, week(when)), set()).update(contacts)
    for (user, monday), people in engaged.items():
        expected[("contacts_engaged", user)][monday] = len(people)
    return {key: +counter for key, counter in expected.items()}  # drop zero weeks


def month_to_date(calendars: dict[str, list[Ev]], user: str, on: date, now: datetime) -> int:
    """meeting_held of `user` from the first of `on`'s month to the end of `on` (local)."""
    held = derive(calendars, now)[("meetings_held", user)]
    first = on.replace(day=1)
    total = 0
    for ev in {e.uid: e for evs in calendars.values() for e in evs}.values():
        if ev.kind != "meeting":
            continue
        for start, end in ev.occurrences():
            local = start.astimezone(ZONE).date()
            takes_part = user == ev.organizer or any(
                e == user and p != "DECLINED" for e, p in ev.attendees
            )
            if end <= now and first <= local <= on and takes_part:
                total += 1
    assert total <= sum(held.values())
    return total


class Calendars:
    """Tally users with Radicale calendars: writes events, runs the sync worker, reads the API."""

    def __init__(self, org: Org, radicale: RadicaleServer) -> None:
        self.org, self.radicale = org, radicale
        self.connections: dict[str, int] = {}
        self.events: dict[str, list[Ev]] = {u: [] for u in USERS}

    @staticmethod
    def login(email: str) -> str:
        return email.split("@")[0]

    def connect(self, email: str, *, slugs: tuple[str, ...] = ("sales",)) -> int:
        login = self.login(email)
        self.radicale.add_user(login, f"{login}-secret")
        for slug in slugs:
            self.radicale.make_calendar(login, slug, slug.title())
        response = self.org.client.post(
            "/api/v1/connections",
            headers=self.org.as_admin(),
            json={
                "user_id": self.org.users[email]["id"],
                "provider": "caldav",
                "config": {
                    "url": self.radicale.url,
                    "username": login,
                    "password": f"{login}-secret",
                },
            },
        )
        assert response.status_code == 201, response.text
        self.connections[email] = response.json()["id"]
        return self.connections[email]

    def put(self, email: str, ev: Ev, slug: str = "sales") -> None:
        login = self.login(email)
        self.radicale.put(login, f"/{login}/{slug}/", f"{ev.uid}.ics", ev.ics())
        self.events[email] = [e for e in self.events[email] if e.uid != ev.uid] + [ev]

    def delete(self, email: str, uid: str, slug: str = "sales") -> None:
        login = self.login(email)
        self.radicale.delete(login, f"/{login}/{slug}/{uid}.ics")
        self.events[email] = [e for e in self.events[email] if e.uid != uid]

    def sync(self, *emails: str) -> None:
        self.org.sync(*(self.connections[email] for email in emails))

    def connection(self, email: str) -> dict[str, Any]:
        return self.org.connection(self.connections[email])

    def metric(self, metric: str, email: str) -> Counter[date]:
        response = self.org.client.get(
            "/api/v1/metrics",
            params={
                "metric": metric,
                "period": "week",
                "start": (NOW - timedelta(days=150)).date().isoformat(),
                "end": (NOW + timedelta(days=60)).date().isoformat(),
                "user_id": self.org.users[email]["id"],
            },
            headers=self.org.as_admin(),
        )
        assert response.status_code == 200, response.text
        return Counter(
            {
                date.fromisoformat(row["period_start"]): row["value"]
                for row in response.json()["series"]
                if row["value"]
            }
        )

    def observed(self) -> Expected:
        return {(m, u): self.metric(m, u) for m in METRICS for u in USERS}

    def expected(self) -> Expected:
        return derive(self.events, datetime.now(UTC))

    def attainment(self, email: str, on: date) -> dict[str, Any]:
        response = self.org.client.get(
            "/api/v1/quotas/attainment",
            params={"date": on.isoformat(), "user_id": self.org.users[email]["id"]},
            headers=self.org.as_admin(),
        )
        assert response.status_code == 200, response.text
        (item,) = response.json()["items"]
        assert item["metric"] == "meetings_held"
        body: dict[str, Any] = item
        return body


@pytest.fixture
def cals(client: TestClient, radicale: RadicaleServer) -> Calendars:
    org = make_org(client)
    org.user(ANA, name="Ana Silva")
    org.user(BOB, name="Bob Stone")
    return Calendars(org, radicale)


SERIES = Ev(  # weekly, one occurrence removed by EXDATE, one moved a day and two hours later
    "series-globex",
    day(-56, 14),
    "Weekly sync with Globex",
    "meeting",
    attendees=(("kim@globex.example", "ACCEPTED"),),
    minutes=30,
    weekly=6,
    exdates=(2,),
    moved=((3, timedelta(days=1, hours=2)),),
)
SHARED = Ev(  # in Ana's and Bob's calendars: one meeting
    "demo-northwind",
    day(-20),
    "Demo for Northwind",
    "meeting",
    attendees=(("joe@northwind.example", "ACCEPTED"), (BOB, "ACCEPTED")),
    created=day(-30, 8),
)
BACKFILL: tuple[Ev, ...] = (
    SERIES,
    Ev("intro-call", day(-5), "Intro with Initech", "call",
       attendees=(("pat@initech.example", "ACCEPTED"),), location="tel:+14155550100"),
    Ev("phone-screen", day(-9), "Phone screen", "call",
       attendees=(("lee@hooli.example", "NEEDS-ACTION"),)),
    Ev("pricing", day(-15), "Pricing review", "meeting",
       attendees=(("joe@northwind.example", "ACCEPTED"), ("amy@northwind.example", "TENTATIVE"))),
    Ev("video-call", day(-3), "Quick call", "meeting",
       description="Join: https://us02web.zoom.us/j/851234?pwd=x"),
    Ev("next-week", day(10), "Proposal walkthrough", "meeting", created=day(-2, 8)),
    Ev("internal", day(-4), "Pipeline review", None, attendees=((BOB, "ACCEPTED"),)),
    Ev("invited-declined", day(-6), "Hooli roadmap", "meeting", organizer="lee@hooli.example",
       attendees=((ANA, "DECLINED"),)),
    Ev("cancelled", day(-7), "Lunch with Umbrella", None, status="CANCELLED",
       attendees=(("ian@umbrella.example", "ACCEPTED"),)),
    Ev("offsite", day(-8), "Trade fair", None, all_day=True),
)  # fmt: skip


def check(cals: Calendars) -> None:
    expected, observed = cals.expected(), cals.observed()
    assert sum(sum(c.values()) for c in expected.values()) > 10  # a real test
    for key in expected:
        assert observed[key] == expected[key], key


def test_a_reps_calendar_fills_the_metrics_and_follows_changes(cals: Calendars) -> None:
    cals.connect(ANA)
    cals.connect(BOB)
    for ev in BACKFILL:
        cals.put(ANA, ev)
    cals.put(ANA, SHARED)
    cals.put(BOB, SHARED)
    # Ana's own copy of a meeting Lee invited her to, where she accepted: Bob declined his
    hooli = Ev("hooli-sync", day(-12), "Hooli sync", "meeting", organizer="lee@hooli.example",
               attendees=((ANA, "ACCEPTED"), (BOB, "DECLINED")))  # fmt: skip
    cals.put(ANA, hooli)
    cals.sync(ANA, BOB)
    for user in USERS:
        connection = cals.connection(user)
        assert connection["status"] == "idle", connection["last_error"]
        assert connection["last_error"] is None and connection["stats"]["events_seen"] > 0
    check(cals)
    # spot checks a manager would make, on top of the derivation
    assert sum(cals.metric("calls", ANA).values()) == 2
    assert sum(cals.metric("meetings_held", BOB).values()) == 1  # the shared demo, once
    assert sum(cals.metric("meetings_held", ANA).values()) == 5 + 1 + 1 + 1 + 1

    on = (NOW - timedelta(days=1)).astimezone(ZONE).date()
    quota = cals.org.client.post(
        "/api/v1/quotas",
        json={
            "metric": "meetings_held",
            "period": "month",
            "target": 4,
            "user_id": cals.org.users[ANA]["id"],
            "effective_from": (NOW - timedelta(days=400)).date().isoformat(),
        },
        headers=cals.org.as_admin(),
    )
    assert quota.status_code == 201, quota.text
    before = cals.attainment(ANA, on)
    assert before["actual"] == month_to_date(cals.events, ANA, on, datetime.now(UTC))
    assert before["target"] == 4

    # between syncs: added, moved into this month's last days, cancelled, deleted, and an
    # occurrence of the series cancelled by an exception
    cals.put(ANA, Ev("added", day(-2), "Kickoff with Soylent", "meeting",
                     attendees=(("rob@soylent.example", "ACCEPTED"),)))  # fmt: skip
    pricing = next(e for e in BACKFILL if e.uid == "pricing")
    cals.put(ANA, replace(pricing, start=day(-1, 15), sequence=1))
    intro = next(e for e in BACKFILL if e.uid == "intro-call")
    cals.put(ANA, replace(intro, status="CANCELLED", kind=None, sequence=1))
    cals.delete(ANA, "phone-screen")
    cals.put(ANA, replace(SERIES, cancelled=(4,), sequence=1))
    cals.sync(ANA)
    assert cals.connection(ANA)["status"] == "idle"
    check(cals)
    assert sum(cals.metric("calls", ANA).values()) == 0
    after = cals.attainment(ANA, on)
    assert after["actual"] == month_to_date(cals.events, ANA, on, datetime.now(UTC))

    cals.sync(ANA, BOB)  # nothing changed: nothing changes
    check(cals)


def test_a_server_stopped_mid_sync_loses_nothing_and_doubles_nothing(
    cals: Calendars, radicale: RadicaleServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    cals.connect(ANA, slugs=("accounts", "sales"))  # one page per calendar, "accounts" first
    for ev in BACKFILL[:5]:
        cals.put(ANA, ev, slug="accounts")
    for ev in BACKFILL[5:]:
        cals.put(ANA, ev, slug="sales")
    cals.put(ANA, SHARED, slug="sales")
    restore = interrupt_syncs(monkeypatch, after_pages=1, then=radicale.stop)
    try:
        cals.sync(ANA)
    finally:
        radicale.start()
    connection = cals.connection(ANA)
    assert connection["status"] == "error"
    assert f"cannot reach 127.0.0.1:{radicale.port}" in connection["last_error"]
    assert "secret" not in str(connection)
    kept = sum(cals.metric("meetings_held", ANA).values())
    assert kept == 5 + 1 + 1  # the "accounts" page was stored: series, pricing, video call
    restore()
    cals.sync(ANA)  # retried later (here: on demand)
    connection = cals.connection(ANA)
    assert connection["status"] == "idle" and connection["last_error"] is None
    check(cals)
    cals.sync(ANA)
    check(cals)


def test_a_listing_started_afresh_forgets_what_was_deleted_unseen_and_keeps_history(
    cals: Calendars, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cursor is lost (a server without RFC 6578 here: ctag + ETags; Radicale itself
    would report the deletion even to a sync from nothing) and an event is deleted meanwhile:
    no delta will ever say so. The listing that starts afresh does not name it, so its
    activities go; an old meeting from before the sync window, which no listing can name any
    more, stays."""
    real_build = registry.build_connectors

    def without_sync_tokens(connection: Any, secret: Any) -> list[Any]:
        built = real_build(connection, secret)
        for connector in built:
            connector.sync_tokens = False  # type: ignore[attr-defined]
        return built

    monkeypatch.setattr(runner, "build_connectors", without_sync_tokens)
    connection_id = cals.connect(ANA)
    for ev in BACKFILL:
        cals.put(ANA, ev)
    cals.sync(ANA)
    check(cals)
    ancient_start = NOW - timedelta(days=800)
    ancient = RemoteEvent(
        source_id="/ana/sales/ancient.ics#",
        uid="ancient",
        recurrence_id=None,
        start=ancient_start,
        end=ancient_start + timedelta(hours=1),
        all_day=False,
        status="confirmed",
        summary="Kickoff with Initech, two years ago",
        location="",
        description="",
        conference=(),
        organizer=Address(ANA),
        attendees=(Attendee(ANA, response="accepted"), Attendee("pat@initech.example")),
        created=ancient_start - timedelta(days=7),
        version="1",
    )
    with session_scope() as session:  # stored back when it was inside the window
        connection = session.get_one(Connection, connection_id)
        directory = load_directory(session, connection.org_id)
        item = CalendarObject("/ana/sales/ancient.ics", (ancient,))
        events.ingest_calendar(session, connection, [item], directory, now=datetime.now(UTC))
        assert '"ctag"' in connection.cursors["caldav"]
        connection.cursors = {**connection.cursors, "caldav": "forgotten"}
    cals.delete(ANA, "pricing")
    cals.sync(ANA)
    assert cals.connection(ANA)["status"] == "idle", cals.connection(ANA)["last_error"]
    check(cals)  # pricing is gone from the metrics
    with session_scope() as session:
        resources = set(
            session.scalars(
                select(EventCopy.resource).where(EventCopy.connection_id == connection_id)
            )
        )
    assert "/ana/sales/pricing.ics" not in resources
    assert "/ana/sales/ancient.ics" in resources
    held = cals.org.client.get(
        "/api/v1/activities",
        params={"type": "meeting_held", "end": (NOW - timedelta(days=700)).date().isoformat()},
        headers=cals.org.as_admin(),
    )
    assert [a["subject"] for a in held.json()["items"]] == [ancient.summary]


def test_a_broken_calendar_object_is_recorded_and_the_rest_of_the_calendar_counts(
    cals: Calendars, radicale: RadicaleServer
) -> None:
    cals.connect(ANA)
    for ev in BACKFILL[:3]:
        cals.put(ANA, ev)
    # Radicale stores it; the series cannot be expanded (SEQUENCE must be an integer)
    broken = Ev("broken", day(-3), "Broken", "meeting").ics().replace("SEQUENCE:0", "SEQUENCE:x")
    radicale.put("ana", "/ana/sales/", "broken.ics", broken)
    cals.sync(ANA)
    connection = cals.connection(ANA)
    assert connection["status"] == "idle", connection["last_error"]
    assert connection["stats"]["messages_failed"] == 1
    with session_scope() as session:
        failed = session.execute(
            select(Observation.source_id, Observation.reason).where(
                Observation.connection_id == cals.connections[ANA],
                Observation.status == "failed",
            )
        ).all()
    assert [(s, ("'broken'" in (r or ""))) for s, r in failed] == [("/ana/sales/broken.ics", True)]
    check(cals)  # the three other events count as if the broken one were not there
    cals.sync(ANA)
    assert cals.connection(ANA)["stats"]["messages_failed"] == 1  # recorded once
    check(cals)


@pytest.mark.slow
def test_every_real_calendar_syncs_without_stopping(
    cals: Calendars, radicale: RadicaleServer
) -> None:
    files = sorted(CORPUS.glob("*/*.ics"))
    if not files:
        pytest.skip(f"no calendar corpus at {CORPUS}")
    cals.connect(ANA, slugs=("corpus",))
    stored: list[str] = []  # resource paths the server holds
    refused: list[str] = []  # files Radicale itself rejects (invalid for its parser)
    for number, path in enumerate(files):
        data = path.read_bytes()
        try:
            stored.append(radicale.put("ana", "/ana/corpus/", f"f{number}.ics", data))
            continue
        except RuntimeError:
            pass
        try:  # several UIDs in one file: imported as a calendar of its own, one item per UID
            slug = radicale.put_calendar("ana", f"c{number}", data)
        except RuntimeError:
            refused.append(path.name)
            continue
        stored += radicale.resources("ana", slug)
    assert len(stored) > 150 and len(refused) < len(files) / 2, refused
    broken = Ev("broken", day(-3), "Broken", "meeting").ics().replace("SEQUENCE:0", "SEQUENCE:x")
    stored.append(radicale.put("ana", "/ana/corpus/", "broken.ics", broken))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(settings, "calendar_future_days", 365)
        cals.sync(ANA)
        window_end = datetime.now(UTC) + timedelta(days=365)
    connection = cals.connection(ANA)
    assert connection["status"] == "idle", connection["last_error"]
    # what the connector should have found, read here from what the server serves
    window = (datetime.now(UTC) - timedelta(days=365), window_end)
    with_events, unreadable = set(), set()
    for resource in stored:
        try:
            found, reasons = read_calendar_parts(
                radicale.get("ana", resource), resource=resource, window=window, version="v"
            )
        except UnreadableCalendar:
            unreadable.add(resource)
            continue
        if reasons:
            unreadable.add(resource)
        if found.events:
            with_events.add(resource)
    with session_scope() as session:
        copies = set(
            session.scalars(
                select(EventCopy.resource).where(EventCopy.connection_id == cals.connections[ANA])
            )
        )
        failed = dict(
            session.execute(
                select(Observation.source_id, Observation.reason).where(
                    Observation.connection_id == cals.connections[ANA]
                )
            ).all()
        )
    assert with_events and copies == with_events
    assert "/ana/corpus/broken.ics" in unreadable
    assert set(failed) == unreadable and all(failed.values())
    assert connection["stats"]["messages_failed"] == len(unreadable)
    assert connection["stats"]["events_seen"] > 500
