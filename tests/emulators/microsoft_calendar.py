"""The calendar side of the Microsoft emulator: events, recurring series, and how
`calendarView/delta` and `GET /me/events/{id}` show them, as Exchange Online does.

A weekly series is a master (type `seriesMaster`: every property and the recurrence, its
start and end those of the first occurrence) and its instances. Quirks of Exchange this side
reproduces, each where it happens below:

- a plain occurrence comes out of calendarView/delta as a stub: `id`, `seriesMasterId`,
  `type`, `start`, `end` only, no subject, organizer, attendees or iCalUId
  (microsoftgraph/microsoft-graph-docs#1716, #7632, #22197; "`/calendarView` and
  `/events/{id}` return full events" in #22197), while the master comes with every property;
- an exception (a moved or otherwise changed occurrence) carries its own full properties
  and `originalStart`;
- a change anywhere in a series (the master, one occurrence changed into an exception, one
  occurrence deleted) sends the whole series again, master and every instance in the window
  (mattlaabs in microsoftgraph/microsoft-graph-docs#6353: "every modified recurring event
  would be expanded to all occurrences"), on one page ("Series won't be split on multiple
  delta pages", microsoftgraph/microsoft-graph-docs#4501, found by experiment);
- a deleted occurrence gets no `@removed` entry: it is simply missing from the series sent
  again ("No indication is given for a deleted occurrence", same #4501); a deleted series
  gives `@removed` for its master and instances.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.emulators.microsoft_common import (
    Answer,
    Item,
    User,
    copy,
    email_address,
    graph_error,
    graph_time,
    iso,
    parse_iso,
    parse_time,
)

EVENT = "#microsoft.graph.event"
# what a plain occurrence keeps of itself; everything else is its master's (#7632, #22197)
_OCCURRENCE_OWN = ("id", "type", "seriesMasterId", "originalStart", "start", "end", "iCalUId")
_STUB = ("id", "seriesMasterId", "type", "start", "end")
_MASTER_ONLY = ("id", "type", "recurrence", "start", "end", "iCalUId", "changeKey")


class CalendarSide:
    lock: threading.RLock

    def user(self, email: str) -> User:
        raise NotImplementedError

    # --- the test's side ------------------------------------------------------------------

    def add_event(
        self,
        email: str,
        *,
        subject: str,
        start: datetime,
        minutes: int = 30,
        organizer: str | None = None,
        attendees: Iterable[tuple[str, str] | tuple[str, str, str]] = (),
        weekly: int = 0,
        online: bool = False,
        toll_number: str | None = None,
        location: str = "",
        all_day: bool = False,
        created: datetime | None = None,
        ical_uid: str | None = None,
    ) -> list[str]:
        """A single event (weekly=0) or a weekly series of `weekly` occurrences; returns the
        instance ids (the series master's id: `master_of`). Attendees are
        (address, response[, type]) with Graph's response values."""
        with self.lock:
            user = self.user(email)
            master = "AAMkEvt" + secrets.token_hex(8)
            uid = ical_uid or "040000008200E00074C5B7101A82E008" + secrets.token_hex(16)
            organizer = organizer or user.email
            common = _properties(
                user, subject, organizer, attendees, online, toll_number, location, all_day
            )
            common["createdDateTime"] = iso(created or start - timedelta(days=7))
            common["lastModifiedDateTime"] = common["createdDateTime"]

            def span(begin: datetime) -> dict[str, Any]:
                if all_day:
                    day = begin.replace(hour=0, minute=0, second=0, microsecond=0)
                    return {"start": graph_time(day), "end": graph_time(day + timedelta(days=1))}
                end = begin + timedelta(minutes=minutes)
                return {"start": graph_time(begin), "end": graph_time(end)}

            if not weekly:
                data = {**common, "id": master, "iCalUId": uid, "type": "singleInstance"}
                data.update(span(start), seriesMasterId=None, changeKey=secrets.token_hex(4))
                user.items[master] = Item(master, "calendar", data, user.bump())
                return [master]
            pattern = {"type": "weekly", "interval": 1, "daysOfWeek": [f"{start:%A}".lower()]}
            recurrence = {
                "pattern": pattern,
                "range": {
                    "type": "numbered",
                    "startDate": f"{start:%Y-%m-%d}",
                    "numberOfOccurrences": weekly,
                },
            }
            head = {**common, "id": master, "iCalUId": uid, "type": "seriesMaster"}
            head.update(span(start), recurrence=recurrence, seriesMasterId=None)
            head["changeKey"] = secrets.token_hex(4)
            user.items[master] = Item(master, "calendar", head, user.bump(), series=master)
            ids = []
            for number in range(weekly):
                begin = start + timedelta(weeks=number)
                instance_id = f"{master}_{begin:%Y%m%d}"
                own = {
                    "id": instance_id,
                    "type": "occurrence",
                    "seriesMasterId": master,
                    "originalStart": iso(begin),
                    "iCalUId": f"{uid}{begin:%Y%m%d}",  # Exchange: one per occurrence
                    **span(begin),
                }
                user.items[instance_id] = Item(
                    instance_id, "calendar", own, user.bump(), series=master
                )
                ids.append(instance_id)
            return ids

    def master_of(self, email: str, instance_id: str) -> str | None:
        with self.lock:
            return self.user(email).items[instance_id].series

    def move_occurrence(self, email: str, instance_id: str, start: datetime) -> None:
        """Move an occurrence (it becomes an exception: same id, type exception)."""
        with self.lock:
            item = self.user(email).items[instance_id]
            length = parse_time(item.data["end"]) - parse_time(item.data["start"])
        self.update_event(
            email, instance_id, start=graph_time(start), end=graph_time(start + length)
        )

    def respond(self, email: str, instance_id: str, attendee: str, response: str) -> None:
        """An attendee's answer; on an occurrence it makes an exception, as in Outlook."""
        with self.lock:
            user = self.user(email)
            people = copy(self.full_event(user, user.items[instance_id])["attendees"])
        for person in people:
            if person["emailAddress"]["address"].lower() == attendee.lower():
                person["status"]["response"] = response
        changes: dict[str, Any] = {"attendees": people}
        if attendee.lower() == email.lower():  # the owner's own answer
            changes["responseStatus"] = {"response": response, "time": iso(datetime.now(UTC))}
        self.update_event(email, instance_id, **changes)

    def update_event(self, email: str, item_id: str, **changes: Any) -> None:
        """Change an event; a changed occurrence becomes an exception with its own full
        properties, and its master changes with it (Exchange keeps exceptions in the master)."""
        with self.lock:
            user = self.user(email)
            item = user.items[item_id]
            if item.series is not None and item.series != item.id:
                data = self.full_event(user, item)
                data.update(changes)
                data["type"] = "exception"
                item.data = data
                self._touch_master(user, item.series)
            else:
                item.data.update(changes)
            item.data["changeKey"] = secrets.token_hex(4)
            item.seq = user.bump()

    def delete_event(self, user: User, item: Item) -> None:
        """Delete an event: a master takes its series along (each gets `@removed`); a deleted
        occurrence leaves no trace but its master's change (#4501)."""
        if item.series is None:
            del user.items[item.id]
            user.departures.append((user.bump(), "calendar", item.id))
        elif item.series == item.id:
            for other in [i for i in user.items.values() if i.series == item.id]:
                del user.items[other.id]
                user.departures.append((user.bump(), "calendar", other.id))
        else:
            del user.items[item.id]
            self._touch_master(user, item.series)

    def _touch_master(self, user: User, master_id: str) -> None:
        master = user.items[master_id]
        master.data["changeKey"] = secrets.token_hex(4)
        master.seq = user.bump()

    # --- the server's side ----------------------------------------------------------------

    def full_event(self, user: User, item: Item) -> dict[str, Any]:
        """An event with every property, as `GET /me/events/{id}` gives it."""
        if item.data.get("type") != "occurrence":
            return copy(item.data)
        master = user.items[item.series or ""].data
        common = {k: v for k, v in master.items() if k not in _MASTER_ONLY}
        return copy({**common, **{k: item.data[k] for k in _OCCURRENCE_OWN if k in item.data}})

    def render_event(self, user: User, item: Item, immutable: bool) -> dict[str, Any]:
        """An event as calendarView/delta shows it: a plain occurrence as a stub (#7632)."""
        if item.data.get("type") == "occurrence":
            data = {k: copy(item.data[k]) for k in _STUB}
        else:
            data = copy(item.data)
        data["@odata.type"] = EVENT
        data["@odata.etag"] = f'W/"{item.seq}"'
        if not immutable:  # a mutable id changes when the item moves
            data["id"] = f"calendar-{item.id}"
            if data.get("seriesMasterId"):
                data["seriesMasterId"] = f"calendar-{data['seriesMasterId']}"
        return data

    def calendar_units(
        self, user: User, options: dict[str, Any], since: int, immutable: bool
    ) -> list[list[dict[str, Any]]]:
        """The delta round's entries over the window, changed since `since` (-1: all), in
        units a page never splits: a single event, or a series with its instances."""
        start = parse_iso(options["startDateTime"])
        end = parse_iso(options["endDateTime"])
        events = [i for i in user.items.values() if i.container == "calendar"]

        def inside(item: Item) -> bool:
            return parse_time(item.data["start"]) < end and parse_time(item.data["end"]) > start

        found: list[tuple[datetime, list[dict[str, Any]]]] = []
        gone: dict[str, None] = {}
        for item in events:
            if item.series is not None or item.seq <= since:
                continue
            if inside(item):
                entry = self.render_event(user, item, immutable)
                found.append((parse_time(item.data["start"]), [entry]))
            elif since >= 0:  # an event that changed and left the window is reported removed
                gone[item.id] = None
        for master_id in {i.series for i in events if i.series and i.seq > since}:
            instances = sorted(
                (i for i in events if i.series == master_id and i.id != master_id and inside(i)),
                key=lambda i: parse_time(i.data["start"]),
            )
            master = user.items[master_id]
            if not instances and since < 0:
                continue
            when = parse_time((instances[0] if instances else master).data["start"])
            unit = [self.render_event(user, i, immutable) for i in (master, *instances)]
            found.append((when, unit))
        found.sort(key=lambda pair: pair[0])
        units = [unit for _, unit in found]
        for seq, left, item_id in user.departures:
            if seq > since and left == "calendar" and item_id not in user.items:
                gone[item_id] = None
        for item_id in gone:
            shown = item_id if immutable else f"calendar-{item_id}"
            reason = "changed" if item_id in user.items else "deleted"
            units.append([{"@odata.type": EVENT, "id": shown, "@removed": {"reason": reason}}])
        return units

    def get_event(self, user: User, event_id: str, query: dict[str, str]) -> Answer:
        item = user.items.get(event_id.removeprefix("calendar-"))
        if item is None or item.container != "calendar":
            return 404, {}, graph_error("ErrorItemNotFound", "The specified object was not found.")
        data = self.full_event(user, item)
        data["@odata.etag"] = f'W/"{item.seq}"'
        wanted = [s.strip() for s in query.get("$select", "").split(",") if s.strip()]
        if wanted:
            keep = {*wanted, "id", "@odata.etag"}
            data = {k: v for k, v in data.items() if k in keep}
        return 200, {}, data


def _properties(
    user: User,
    subject: str,
    organizer: str,
    attendees: Iterable[tuple[str, str] | tuple[str, str, str]],
    online: bool,
    toll_number: str | None,
    location: str,
    all_day: bool,
) -> dict[str, Any]:
    people = []
    for attendee in attendees:
        address, response, *kind = attendee
        people.append(
            {
                "type": kind[0] if kind else "required",
                "status": {"response": response, "time": "0001-01-01T00:00:00Z"},
                **email_address(address),
            }
        )
    mine = organizer.lower() == user.email
    meeting = None
    if online or toll_number:
        join = f"https://teams.microsoft.com/l/meetup-join/{secrets.token_hex(6)}"
        meeting = {
            "joinUrl": join if online else None,
            "tollNumber": toll_number,
            "conferenceId": "123456789" if toll_number else None,
        }
    return {
        "subject": subject,
        "bodyPreview": "",
        "isAllDay": all_day,
        "isCancelled": False,
        "location": {"displayName": location},
        "organizer": email_address(organizer),
        "attendees": people,
        "isOrganizer": mine,
        "responseStatus": {"response": "organizer" if mine else "accepted"},
        "isOnlineMeeting": online or toll_number is not None,
        "onlineMeetingProvider": "teamsForBusiness" if online else "unknown",
        "onlineMeeting": meeting,
    }


def refused_calendar_options(options: dict[str, Any]) -> str | None:
    """What calendarView delta refuses in a first request (event-delta: the window is
    required; `$select` is not supported, https://learn.microsoft.com/graph/delta-query-events)."""
    if not ("startDateTime" in options and "endDateTime" in options):
        return "startDateTime and endDateTime are required."
    if "$select" in options:
        return "$select is not supported on event delta."
    return None
