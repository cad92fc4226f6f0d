"""calendarView delta entries -> CalendarObjects: single events, and series whose plain
occurrences Graph sends as stubs.

Exchange answers calendarView/delta with the series master (every property) and each plain
occurrence as `id`, `seriesMasterId`, `type`, `start` and `end` only
(microsoftgraph/microsoft-graph-docs#1716, #7632, #22197); an exception (a moved or changed
occurrence) carries its own full properties. So an occurrence is its master's event (subject,
organizer, attendees, the owner's answer, online meeting, creation time) at its own time, and
an exception is its own. Every instance of a series is keyed by the master's `iCalUId` (the
UID every attendee's copy shares; an occurrence stub has none of its own) and its original
start (an exception's `originalStart`; a plain occurrence is at its original start).

A series is one CalendarObject: resource = the master's id, an event per instance
(source_id = master id + "/" + instance id). A change anywhere in a series sends the whole
series again, master included, on one page (#6353; #4501: "Series won't be split on multiple
delta pages"), and a deleted occurrence is only missing from it ("No indication is given for a
deleted occurrence", #4501): so when the series is whole on the page, the object carries the
delta window and an occurrence stored before and missing now is deleted. Whole means: its
master is on the page, and it cannot go on from the page before or after (it does not start
the page unless the page starts the round, nor end it unless the page ends the round), since
Graph only documents a page size. Instances whose master is not on the page still get its
properties: from a master seen earlier in this pull, else `GET /me/events/{id}`; an object
that is not whole carries an empty window and says nothing of the series' other occurrences.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from connectors.base import (
    Address,
    Attendee,
    AttendeeKind,
    CalendarObject,
    Failure,
    RemoteEvent,
    Response,
    iso_moment,
)
from connectors.microsoft.mail import graph_address, graph_text

# what an occurrence takes from its master (`GET /me/events/{id}`)
MASTER_SELECT = (
    "id,iCalUId,type,subject,bodyPreview,isAllDay,isCancelled,location,organizer,attendees,"
    "responseStatus,isOnlineMeeting,onlineMeeting,onlineMeetingUrl,createdDateTime,changeKey,"
    "start,end"
)
_RESPONSES: dict[str, Response] = {
    "accepted": "accepted",
    "organizer": "accepted",
    "declined": "declined",
    "tentativelyaccepted": "tentative",
    "none": "needs-action",
    "notresponded": "needs-action",
}
_INSTANCES = ("occurrence", "exception")
_OWN = ("@odata.type", "@odata.etag", "recurrence")  # not an occurrence's
Window = tuple[datetime, datetime]
Fetch = Callable[[str], dict[str, Any] | None]


def _time(value: object) -> datetime:
    """A Graph dateTimeTimeZone -> UTC; ValueError when missing or unreadable."""
    if not isinstance(value, dict) or not value.get("dateTime"):
        raise ValueError("no date")
    text = str(value["dateTime"])
    moment = datetime.fromisoformat(text[:26] if "." in text else text)
    if moment.tzinfo is None:
        zone = str(value.get("timeZone") or "UTC")
        try:
            moment = moment.replace(tzinfo=UTC if zone.upper() == "UTC" else ZoneInfo(zone))
        except (ZoneInfoNotFoundError, ValueError):
            moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _conference(item: Mapping[str, Any]) -> tuple[str, ...]:
    found: dict[str, None] = {}
    meeting = item.get("onlineMeeting")
    if isinstance(meeting, dict):
        if meeting.get("joinUrl"):
            found[str(meeting["joinUrl"])] = None
        numbers = [meeting.get("tollNumber"), *(meeting.get("tollFreeNumbers") or [])]
        numbers += [p.get("number") for p in meeting.get("phones") or [] if isinstance(p, dict)]
        for number in numbers:
            if number:
                found["tel:" + str(number).replace(" ", "")] = None
    if item.get("onlineMeetingUrl"):
        found[str(item["onlineMeetingUrl"])] = None
    return tuple(found)


def to_event(item: Mapping[str, Any], account: str | None) -> RemoteEvent:
    """One event with every property (a single event, an exception, or an occurrence merged
    with its master) -> RemoteEvent; ValueError when unreadable."""
    source_id = item.get("id")
    if not isinstance(source_id, str) or not source_id:
        raise ValueError("no id")
    start, end = _time(item.get("start")), _time(item.get("end"))
    recurrence_id = None
    if item.get("type") in _INSTANCES:
        recurrence_id = iso_moment(item.get("originalStart")) or start
    organizer_entry = graph_address(item.get("organizer"))
    attendees: list[Attendee] = []
    for entry in item.get("attendees") or []:
        person = graph_address(entry)
        if person is None:
            continue
        status = entry.get("status") if isinstance(entry.get("status"), dict) else {}
        response = _RESPONSES.get(str(status.get("response", "none")).lower(), "needs-action")
        kind_of: AttendeeKind = "resource" if entry.get("type") == "resource" else "individual"
        attendees.append(Attendee(person.email, person.name, response, kind_of))
    own = item.get("responseStatus")
    own_response = str(own.get("response", "none")).lower() if isinstance(own, dict) else "none"
    if account and own_response not in ("none", "organizer", "notresponded"):
        mine = _RESPONSES.get(own_response, "needs-action")
        if any(a.email == account for a in attendees):  # the owner's own answer wins
            attendees = [
                Attendee(a.email, a.name, mine, a.kind) if a.email == account else a
                for a in attendees
            ]
        elif not organizer_entry or organizer_entry.email != account:
            attendees.append(Attendee(account, None, mine, "individual"))
    location = item.get("location")
    return RemoteEvent(
        source_id=source_id,
        uid=graph_text(item.get("iCalUId")) or source_id,
        recurrence_id=recurrence_id,
        start=start,
        end=max(end, start),
        all_day=bool(item.get("isAllDay")),
        status="cancelled" if item.get("isCancelled") else "confirmed",
        summary=graph_text(item.get("subject")),
        location=graph_text(location.get("displayName")) if isinstance(location, dict) else "",
        description=graph_text(item.get("bodyPreview")),
        conference=_conference(item),
        organizer=Address(organizer_entry.email, organizer_entry.name) if organizer_entry else None,
        attendees=tuple(attendees),
        created=iso_moment(item.get("createdDateTime")),
        version=graph_text(item.get("changeKey") or item.get("lastModifiedDateTime")),
    )


def instance_event(
    master: Mapping[str, Any], instance: Mapping[str, Any], account: str | None
) -> RemoteEvent:
    """One instance of a series: a plain occurrence is its master's event at its own time,
    an exception its own; both keyed by the master's UID."""
    if instance.get("type") == "occurrence":
        merged = {k: v for k, v in master.items() if k not in _OWN}
        merged.update(instance)
        event = to_event(merged, account)
        own_version = str((instance.get("start") or {}).get("dateTime", ""))
    else:
        event = to_event(instance, account)
        own_version = event.version
    master_id = str(master.get("id") or instance.get("seriesMasterId"))
    return replace(
        event,
        source_id=f"{master_id}/{event.source_id}",
        uid=graph_text(master.get("iCalUId")) or event.uid,
        version=f"{graph_text(master.get('changeKey'))}/{own_version}"[:256],
    )


class SeriesReader:
    """Reads the pages of calendarView delta rounds into CalendarObjects, remembering the
    series masters it saw during one pull; `fetch` gets a master it did not see (None: gone)."""

    def __init__(self, account: str | None, fetch: Fetch) -> None:
        self.account = account
        self.fetch = fetch
        self.masters: dict[str, dict[str, Any]] = {}

    def read(
        self, items: list[Any], window: Window, *, first: bool = True, last: bool = True
    ) -> tuple[tuple[CalendarObject, ...], tuple[Failure, ...]]:
        """One page; `first`/`last`: whether it starts / ends its delta round."""
        objects: list[CalendarObject] = []
        failures: list[Failure] = []
        series: dict[str, list[dict[str, Any]]] = {}
        whole: set[str] = set()  # series whose master is on this page
        edges = {_series_of(items[0]) if items and not first else None}
        edges.add(_series_of(items[-1]) if items and not last else None)
        for item in items:
            if not isinstance(item, dict) or not item.get("id"):
                continue
            resource = str(item["id"])
            kind = item.get("type")
            if "@removed" in item:
                self.masters.pop(resource, None)
                objects.append(CalendarObject(resource, deleted=True))
            elif kind == "seriesMaster":
                self.masters[resource] = item
                whole.add(resource)
                series.setdefault(resource, [])
            elif kind in _INSTANCES and item.get("seriesMasterId"):
                series.setdefault(str(item["seriesMasterId"]), []).append(item)
            else:
                try:
                    event = to_event(item, self.account)
                except (ValueError, TypeError) as error:
                    failures.append(Failure(resource, f"unreadable Graph event: {error}"))
                    continue
                objects.append(CalendarObject(resource, (event,), window))
        for master_id, instances in series.items():
            master = self._master(master_id)
            if master is None:  # the series is gone: its delta will say so too
                objects.append(CalendarObject(master_id, deleted=True))
                continue
            events: list[RemoteEvent] = []
            for instance in instances:
                try:
                    events.append(instance_event(master, instance, self.account))
                except (ValueError, TypeError) as error:
                    reason = f"unreadable Graph event {instance.get('id')}: {error}"
                    failures.append(Failure(master_id, reason))
            complete = (
                master_id in whole and master_id not in edges and len(events) == len(instances)
            )
            span = window if complete else (window[0], window[0])
            objects.append(CalendarObject(master_id, tuple(events), span))
        return tuple(objects), tuple(failures)

    def _master(self, master_id: str) -> dict[str, Any] | None:
        """The master's properties (None: the series is gone)."""
        if master_id not in self.masters:
            found = self.fetch(master_id)
            if found is None:
                return None
            self.masters[master_id] = found
        return self.masters[master_id]


def _series_of(item: object) -> str | None:
    """The series a page entry belongs to (a master's own id), None for other entries."""
    if not isinstance(item, dict):
        return None
    if item.get("type") == "seriesMaster":
        return str(item.get("id"))
    if item.get("type") in _INSTANCES and item.get("seriesMasterId"):
        return str(item["seriesMasterId"])
    return None
