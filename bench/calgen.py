"""Deterministic synthetic calendars: 50 users of one org over two years, as CalDAV holds them.

`Calendars(seed, users)` builds every user's calendar as iCalendar resources (bytes, one per
event or series, as a CalDAV server stores them). Everything is a pure function of the seed.

Per user, in the user's own time zone (six zones, both hemispheres, so DST moves both ways):
- a daily internal stand-up on weekdays (RRULE DAILY;BYDAY=MO-FR, six months at a time);
- weekly series with customers (RRULE WEEKLY with COUNT or UNTIL), some with EXDATEs, a
  moved occurrence and a cancelled one (RECURRENCE-ID overrides);
- single meetings with external people about twice a week: video links (Meet, Zoom, Teams,
  Webex), phone numbers and tel: URIs (calls), call titles, rooms, declined invitations,
  cancelled and all-day events;
- shared meetings: one user organizes, colleagues are invited, and the same UID sits in each
  invitee's calendar too.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from random import Random
from zoneinfo import ZoneInfo

ORG_DOMAIN = "acme.example"
START = datetime(2025, 1, 6, 0, 0, tzinfo=UTC)
SPAN = timedelta(days=730)
NOW = START + SPAN - timedelta(days=90)  # the pipeline's clock: the last months are future
ZONES = (
    "America/New_York",
    "Europe/Berlin",
    "Asia/Tokyo",
    "America/Los_Angeles",
    "Europe/London",
    "Australia/Sydney",
)
COMPANIES = tuple(f"customer{i}.example" for i in range(400))
VIDEO = (
    "https://meet.google.com/abc-defg-{n}",
    "https://us02web.zoom.us/j/85{n}?pwd=x",
    "https://teams.microsoft.com/l/meetup-join/19%3ameeting_{n}",
    "https://acme.webex.com/acme/j.php?MTID=m{n}",
)
PHONES = (
    "tel:+1-415-555-{n:04d}",
    "+44 20 7946 {n:04d}",
    "+49 30 1234{n:03d}",
    "+81 3-1234-{n:04d}",
)
TITLES = ("Demo", "Discovery", "Pricing review", "QBR", "Kickoff", "Negotiation", "Workshop")
CALL_TITLES = ("Intro call", "Phone screen", "Follow-up call", "Dial-in: renewal")


def user_email(index: int) -> str:
    return f"rep{index:02d}@{ORG_DOMAIN}"


@dataclass
class Resource:
    owner: int  # user index
    href: str
    data: bytes


@dataclass
class _Event:
    uid: str
    start: datetime  # local, aware
    minutes: int
    summary: str
    organizer: str
    attendees: list[tuple[str, str, str]]  # email, PARTSTAT, CUTYPE
    created: datetime
    location: str = ""
    description: str = ""
    status: str = "CONFIRMED"
    all_day: bool = False
    rrule: str = ""
    exdates: list[datetime] = field(default_factory=list)
    overrides: list[tuple[datetime, timedelta, str]] = field(default_factory=list)


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def _local(moment: datetime) -> str:
    return f"TZID={moment.tzinfo}:{moment.strftime('%Y%m%dT%H%M%S')}"


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace(",", "\\,").replace(";", "\\;")


def _component(ev: _Event, start: datetime, extra: list[str], status: str) -> list[str]:
    lines = [
        "BEGIN:VEVENT",
        f"UID:{ev.uid}",
        f"DTSTAMP:{_utc(ev.created)}",
        f"CREATED:{_utc(ev.created)}",
        f"SUMMARY:{_escape(ev.summary)}",
        f"STATUS:{status}",
    ]
    if ev.all_day:
        lines += [
            f"DTSTART;VALUE=DATE:{start:%Y%m%d}",
            f"DTEND;VALUE=DATE:{start + timedelta(days=1):%Y%m%d}",
        ]
    else:
        lines += [
            f"DTSTART;{_local(start)}",
            f"DTEND;{_local(start + timedelta(minutes=ev.minutes))}",
        ]
    if ev.location:
        lines.append(f"LOCATION:{_escape(ev.location)}")
    if ev.description:
        lines.append(f"DESCRIPTION:{_escape(ev.description)}")
    lines.append(f"ORGANIZER;CN={ev.organizer.split('@')[0]}:mailto:{ev.organizer}")
    for email, partstat, kind in ev.attendees:
        lines.append(f"ATTENDEE;CUTYPE={kind};PARTSTAT={partstat}:mailto:{email}")
    return lines + extra + ["END:VEVENT"]


def render(ev: _Event) -> bytes:
    extra = [f"RRULE:{ev.rrule}"] if ev.rrule else []
    extra += [f"EXDATE;{_local(x)}" for x in ev.exdates]
    lines = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//tally//bench calgen//EN"]
    lines += _component(ev, ev.start, extra, ev.status)
    for original, shift, status in ev.overrides:
        rid = [f"RECURRENCE-ID;{_local(original)}"]
        lines += _component(ev, original + shift, rid, status)
    return ("\r\n".join([*lines, "END:VCALENDAR"]) + "\r\n").encode()


class Calendars:
    """Every user's resources; `resources()` yields them user by user, in a fixed order."""

    def __init__(self, seed: int, users: int = 50) -> None:
        self.seed, self.users = seed, users
        self.people = [
            (f"{first}.{i}@{COMPANIES[(i * 7) % len(COMPANIES)]}")
            for i, first in enumerate(
                ["joe", "kim", "li", "ana", "omar", "sofia", "yuki", "pierre"] * 250
            )
        ]

    def zone(self, user: int) -> ZoneInfo:
        return ZoneInfo(ZONES[user % len(ZONES)])

    def _externals(self, rng: Random, count: int) -> list[tuple[str, str, str]]:
        return [
            (
                rng.choice(self.people),
                rng.choice(("ACCEPTED", "ACCEPTED", "TENTATIVE")),
                "INDIVIDUAL",
            )
            for _ in range(count)
        ]

    def events(self, user: int) -> Iterator[_Event]:
        """The events this user organizes (shared ones are copied to invitees by resources())."""
        rng = Random(self.seed * 1000 + user)
        zone, me = self.zone(user), user_email(user)
        first_day = START.astimezone(zone).replace(hour=9, minute=0, second=0, microsecond=0)
        for half in range(4):  # the daily stand-up, internal only, six months at a time
            start = first_day + timedelta(days=half * 182 + 1)
            colleagues = [(user_email((user + k) % self.users), "ACCEPTED", "INDIVIDUAL")
                          for k in (1, 2)]  # fmt: skip
            rule = "FREQ=DAILY;BYDAY=MO,TU,WE,TH,FR;COUNT=126"
            created = start - timedelta(days=7)
            yield _Event(f"standup-{user}-{half}", start, 15, "Stand-up", me, colleagues,
                         created, rrule=rule)  # fmt: skip
        for series in range(6):  # weekly customer series
            offset = timedelta(days=rng.randrange(0, 600), hours=rng.randrange(0, 8))
            start = first_day + offset
            count = rng.randrange(8, 40)
            ev = _Event(
                f"weekly-{user}-{series}",
                start,
                rng.choice((30, 45, 60)),
                f"Weekly sync with {rng.choice(COMPANIES).split('.')[0]}",
                me,
                self._externals(rng, rng.randrange(1, 3)),
                start - timedelta(days=rng.randrange(1, 20)),
                location=rng.choice(VIDEO).format(n=rng.randrange(10**6)),
            )
            if series % 2:
                ev.rrule = f"FREQ=WEEKLY;COUNT={count}"
            else:
                until = (start + timedelta(weeks=count)).astimezone(UTC)
                ev.rrule = f"FREQ=WEEKLY;UNTIL={until:%Y%m%dT%H%M%SZ}"
            if series % 3 == 0:
                ev.exdates = [start + timedelta(weeks=w) for w in (2, 5)]
                ev.overrides = [
                    (start + timedelta(weeks=3), timedelta(days=1, hours=2), "CONFIRMED"),
                    (start + timedelta(weeks=4), timedelta(0), "CANCELLED"),
                ]
            yield ev
        for number in range(200):  # single events, about two a week
            start = first_day + timedelta(
                days=rng.randrange(0, SPAN.days),
                hours=rng.randrange(0, 9),
                minutes=30 * rng.randrange(2),
            )
            created = start - timedelta(days=rng.randrange(0, 30), hours=rng.randrange(0, 24))
            roll = rng.random()
            ev = _Event(f"single-{user}-{number}", start, rng.choice((30, 60)), rng.choice(TITLES),
                        me, self._externals(rng, rng.randrange(1, 4)), created)  # fmt: skip
            if roll < 0.30:
                ev.description = "Join: " + rng.choice(VIDEO).format(n=number)
            elif roll < 0.45:
                ev.location = rng.choice(PHONES).format(n=rng.randrange(10**3))
            elif roll < 0.55:
                ev.summary = rng.choice(CALL_TITLES)
            elif roll < 0.62:
                ev.attendees.append((f"room{number % 9}@{ORG_DOMAIN}", "ACCEPTED", "ROOM"))
                ev.location = "Room 4.12"
            elif roll < 0.67:
                ev.status = "CANCELLED"
            elif roll < 0.70:
                ev.all_day = True
            elif roll < 0.78:  # invited by a customer; sometimes declined
                ev.attendees = [(me, rng.choice(("ACCEPTED", "DECLINED")), "INDIVIDUAL")]
                ev.organizer = rng.choice(self.people)
            if roll > 0.85:  # a colleague is invited too: the event is in their calendar as well
                other = (user + 1 + rng.randrange(self.users - 1)) % self.users
                answer = rng.choice(("ACCEPTED", "DECLINED"))
                ev.attendees.append((user_email(other), answer, "INDIVIDUAL"))
            yield ev

    def resources(self) -> dict[int, list[Resource]]:
        """Every user's calendar: their own events, then the invitations colleagues sent them
        (the same bytes, so the same UID, in both calendars)."""
        calendars: dict[int, list[Resource]] = {user: [] for user in range(self.users)}
        invited: dict[int, list[Resource]] = {user: [] for user in range(self.users)}
        for user in range(self.users):
            for ev in self.events(user):
                data = render(ev)
                calendars[user].append(Resource(user, f"/{user}/calendar/{ev.uid}.ics", data))
                if ev.uid.startswith("standup"):
                    continue
                for email, _, _ in ev.attendees:
                    if email.startswith("rep") and email.endswith("@" + ORG_DOMAIN):
                        other = int(email[3:5])
                        if other != user:
                            href = f"/{other}/calendar/{ev.uid}.ics"
                            invited[other].append(Resource(other, href, data))
        return {user: calendars[user] + invited[user] for user in calendars}
