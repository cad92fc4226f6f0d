"""The Outlook calendar through `/me/calendarView/delta` over the sync window.

calendarView gives instances, never series masters: single events, occurrences of a series
and exceptions (moved or changed occurrences), each with its own id. Each instance is one
`CalendarObject` (resource = the instance id, its one event); an `@removed` entry deletes it.
An occurrence's `recurrence_id` is its `originalStart`, its `uid` Graph's `iCalUId` (which
Exchange makes distinct per occurrence and identical in every attendee's calendar).

The cursor is JSON: {"v": 1, "window": [start, end], "link": nextLink or deltaLink, "push":
subscription}. Graph fixes the window in the delta token, so when the window has moved on by
more than `refresh_days` the old round is first drained (its removals still count), then a
new round starts over the new window. A 410 restarts the round over the current window.
Times are asked in UTC (`Prefer: outlook.timezone="UTC"`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from connectors.base import (
    Address,
    Attendee,
    AttendeeKind,
    CalendarObject,
    CursorExpired,
    Failure,
    Page,
    RemoteEvent,
    Response,
    dump_cursor,
    iso_moment,
    sync_window,
)
from connectors.microsoft import push
from connectors.microsoft.http import GraphClient, GraphConnector, SyncStateGone, delta_pages
from connectors.microsoft.mail import graph_address, graph_text

_RESPONSES: dict[str, Response] = {
    "accepted": "accepted",
    "organizer": "accepted",
    "declined": "declined",
    "tentativelyaccepted": "tentative",
    "none": "needs-action",
    "notresponded": "needs-action",
}
Window = tuple[datetime, datetime]


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


def _conference(item: dict[str, Any]) -> tuple[str, ...]:
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


def to_event(item: dict[str, Any], account: str | None) -> RemoteEvent:
    """One calendarView instance -> RemoteEvent; ValueError when unreadable."""
    source_id = item.get("id")
    if not isinstance(source_id, str) or not source_id:
        raise ValueError("no id")
    start, end = _time(item.get("start")), _time(item.get("end"))
    kind = item.get("type")
    recurrence_id = None
    if kind in ("occurrence", "exception"):
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


def read_page(
    items: list[Any], account: str | None
) -> tuple[tuple[CalendarObject, ...], tuple[Failure, ...]]:
    objects: list[CalendarObject] = []
    failures: list[Failure] = []
    for item in items:
        if not isinstance(item, dict) or not item.get("id"):
            continue
        resource = str(item["id"])
        if "@removed" in item:
            objects.append(CalendarObject(resource, deleted=True))
            continue
        if item.get("type") == "seriesMaster":
            continue  # calendarView gives the instances themselves
        try:
            objects.append(CalendarObject(resource, (to_event(item, account),)))
        except (ValueError, TypeError) as error:
            failures.append(Failure(resource, f"unreadable Graph event: {error}"))
    return tuple(objects), tuple(failures)


def _load(cursor: str | None) -> dict[str, Any]:
    if cursor is None:
        return {"v": 1}
    try:
        data = json.loads(cursor)
        if data.get("v") != 1:
            raise ValueError("unknown cursor version")
        if data.get("window"):
            [datetime.fromisoformat(w) for w in data["window"]]
    except (ValueError, AttributeError, TypeError) as error:
        raise CursorExpired(f"unreadable Graph calendar cursor: {type(error).__name__}") from error
    return dict(data)


class GraphCalendarConnector(GraphConnector):
    name: ClassVar[str] = "microsoft_calendar"

    def __init__(
        self,
        client: GraphClient,
        *,
        account: str | None = None,
        window_past_days: int = 365,
        window_future_days: int = 90,
        page_size: int = 100,
        refresh_days: int = 7,
        push_target: push.PushTarget | None = None,
    ) -> None:
        self.client = client
        self.account = account.lower() if account else None
        self.window_past = timedelta(days=window_past_days)
        self.window_future = timedelta(days=window_future_days)
        self.page_size = page_size
        self.refresh = timedelta(days=refresh_days)
        self.push_target = push_target

    def __repr__(self) -> str:
        return f"GraphCalendarConnector({self.account!r})"

    @property
    def prefer(self) -> dict[str, str]:
        return {
            "Prefer": f'outlook.timezone="UTC", IdType="ImmutableId", '
            f"odata.maxpagesize={self.page_size}"
        }

    def _pull(self, cursor: str | None, since: datetime) -> Iterator[Page]:
        state = _load(cursor)
        window = sync_window(since, self.window_past, self.window_future)
        old = state.get("window")
        link = state.get("link")
        if old is not None and link:
            old_window = (datetime.fromisoformat(old[0]), datetime.fromisoformat(old[1]))
            if window[1] - old_window[1] <= self.refresh:
                window = old_window  # keep the delta round of the stored window
            else:
                try:  # drain the old round first: its removals still count
                    for items, after in self._round(old_window, link):
                        objects, failures = read_page(items, self.account)
                        state["link"] = after
                        yield Page(calendar=objects, failures=failures, cursor=dump_cursor(state))
                except SyncStateGone:
                    pass
                link = None
        else:
            link = None
        for attempt in range(2):
            try:
                for items, after in self._round(window, link):
                    objects, failures = read_page(items, self.account)
                    state["window"] = [w.isoformat() for w in window]
                    state["link"] = after
                    yield Page(calendar=objects, failures=failures, cursor=dump_cursor(state))
                break
            except SyncStateGone:
                if attempt:
                    raise
                link = None
        subscription = push.ensure(
            self.client, self.push_target, "me/events", state.get("push"), now=datetime.now(UTC)
        )
        if subscription != state.get("push"):
            if subscription is None:
                state.pop("push", None)
            else:
                state["push"] = subscription
            yield Page(cursor=dump_cursor(state))

    def _round(self, window: Window, link: str | None) -> Iterator[tuple[list[Any], str]]:
        if link is not None:
            return delta_pages(self.client, link, self.prefer)
        params = {
            "startDateTime": window[0].strftime("%Y-%m-%dT%H:%M:%SZ"),
            "endDateTime": window[1].strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        return delta_pages(self.client, ("me/calendarView/delta", params), self.prefer)
