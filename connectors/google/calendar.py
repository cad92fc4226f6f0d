"""Google Calendar (the primary calendar) as a Connector: events.list with a sync token.

`singleEvents=true` throughout: Google expands each series into occurrences, each with its
own id, `recurringEventId` and `originalStartTime`, so every occurrence is one resource
(`CalendarObject(resource=<event id>, events=(occurrence,))`) and a cancelled one is
`deleted`. The event's iCalUID plus the occurrence's original start is the cross-calendar
identity (app/activities/events.py).

The cursor is JSON:

    {"v": 1, "window": [start, end], "token": "<nextSyncToken>" | null,
     "page": "<pageToken of an unfinished full sync>" | null, "watch": {...} | null}

- Full sync (no cursor, a 410, or the window has moved on by more than `refresh_days`):
  `timeMin`/`timeMax` = the window, `showDeleted=true` (so events deleted while a sync token
  was dead are still seen cancelled), paged; each page stores its next page token, the last
  one Google's `nextSyncToken`. Ingest compares versions (ETags), so a re-sync changes only
  what changed.
- Incremental: the same request with `syncToken` (no window: Google tracks the one of the
  full sync), every change including deletions; the token moves with the last page.
- Widened (WidensHistory: `history_from` before the stored window's start): the sync token
  tracks the window of the full sync that issued it (a date range goes with the full sync
  only: https://developers.google.com/calendar/api/guides/sync), so a full sync over the wider
  window starts, its timeMin the new start. It lists every event of the window again (one
  events.list page per `page_size` events); ingest compares ETags, so only the older events
  are new rows.
- 410 Gone -> CursorExpired: the runner drops the cursor and the next pull is a full sync.
- Occurrences starting after the window's end are sent as empty objects (removed if stored);
  out-of-office, focus-time and working-location blocks are not meetings and are left out
  the same way.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, ClassVar

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
    push_terms,
    sync_window,
)
from connectors.google.api import App, Caller, Endpoints, build, credentials
from connectors.google.errors import GoogleError
from connectors.google.pacing import CALENDAR_QUOTA, Pacer, Quota, pacer_for

DAY_MS = 86_400_000
NOT_MEETINGS = frozenset({"outOfOffice", "focusTime", "workingLocation", "birthday"})
_RESPONSES: Mapping[str, Response] = {
    "accepted": "accepted",
    "declined": "declined",
    "tentative": "tentative",
    "needsAction": "needs-action",
}

State = dict[str, Any]


@dataclass(frozen=True, slots=True)
class CalendarWatch:
    """events.watch channels (web hooks): a notification only marks the connection due."""

    address: str  # https URL of POST /api/v1/push/google/calendar
    token: str  # X-Goog-Channel-Token, checked by the endpoint
    channel_prefix: str  # channel ids are <prefix><random>; the endpoint reads who from it
    ttl_seconds: int = 7 * 86400
    renew_before_ms: int = DAY_MS


def _moment(value: Mapping[str, Any] | None) -> tuple[datetime, bool] | None:
    """(UTC moment, all-day) of a Google start/end/originalStartTime."""
    if not value:
        return None
    if value.get("dateTime"):
        moment = datetime.fromisoformat(str(value["dateTime"]).replace("Z", "+00:00"))
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC), False
    if value.get("date"):
        day = date.fromisoformat(str(value["date"]))
        return datetime(day.year, day.month, day.day, tzinfo=UTC), True
    return None


def _conference(item: Mapping[str, Any]) -> tuple[str, ...]:
    found: list[str] = []
    data = item.get("conferenceData") or {}
    for entry in data.get("entryPoints") or ():
        uri = str(entry.get("uri") or "").strip()
        if entry.get("entryPointType") in ("video", "phone", "sip") and uri and uri not in found:
            found.append(uri)
    hangout = str(item.get("hangoutLink") or "").strip()
    if hangout and hangout not in found:
        found.append(hangout)
    return tuple(found)


def _attendees(item: Mapping[str, Any]) -> tuple[Attendee, ...]:
    result: list[Attendee] = []
    for person in item.get("attendees") or ():
        address = str(person.get("email") or "").strip().lower()
        if not address:
            continue
        kind: AttendeeKind = "resource" if person.get("resource") else "individual"
        result.append(
            Attendee(
                email=address,
                name=(str(person.get("displayName") or "").strip() or None),
                response=_RESPONSES.get(str(person.get("responseStatus")), "needs-action"),
                kind=kind,
            )
        )
    return tuple(result)


def to_event(item: Mapping[str, Any], calendar: str) -> RemoteEvent | None:
    """One Google event occurrence as a RemoteEvent; None when it has no readable start."""
    start = _moment(item.get("start"))
    if start is None:
        return None
    end = _moment(item.get("end"))
    start_at, all_day = start
    end_at = end[0] if end else start_at + (timedelta(days=1) if all_day else timedelta())
    original = _moment(item.get("originalStartTime")) if item.get("recurringEventId") else None
    organizer = item.get("organizer") or {}
    organizer_email = str(organizer.get("email") or "").strip().lower()

    def text(name: str) -> str:
        return str(item.get(name) or "").replace("\x00", "")

    return RemoteEvent(
        source_id=f"{calendar}/{item['id']}",
        uid=str(item.get("iCalUID") or item["id"]),
        recurrence_id=original[0] if original else None,
        start=start_at,
        end=end_at,
        all_day=all_day,
        status=str(item.get("status") or "confirmed").lower(),
        summary=text("summary"),
        location=text("location"),
        description=text("description"),
        conference=_conference(item),
        organizer=(
            Address(organizer_email, str(organizer.get("displayName") or "").strip() or None)
            if organizer_email
            else None
        ),
        attendees=_attendees(item),
        created=iso_moment(item.get("created")),
        version=str(item.get("etag") or item.get("updated") or ""),
    )


def _load(cursor: str | None) -> State | None:
    if cursor is None:
        return None
    try:
        state = json.loads(cursor)
        if not isinstance(state, dict) or state.get("v") != 1:
            raise ValueError("unknown cursor version")
        [datetime.fromisoformat(w) for w in state["window"]]
    except (ValueError, KeyError, TypeError) as error:
        raise CursorExpired(f"unreadable Google Calendar cursor: {type(error).__name__}") from error
    return state


class GoogleCalendarConnector:
    name: ClassVar[str] = "google_calendar"
    widens_history: ClassVar[bool] = True

    def __init__(
        self,
        *,
        account: str,
        refresh_token: str,
        app: App,
        endpoints: Endpoints | None = None,
        quota: Quota | None = None,
        window_past_days: int = 365,
        window_future_days: int = 90,
        refresh_days: int = 7,
        page_size: int = 250,
        watch: CalendarWatch | None = None,
        timeout: float = 60.0,
        pacer: Pacer | None = None,
        calendar: str = "primary",
    ) -> None:
        self.account = account.lower()
        self.endpoints = endpoints or Endpoints()
        self.quota = quota or CALENDAR_QUOTA
        self.window_past = timedelta(days=window_past_days)
        self.window_future = timedelta(days=window_future_days)
        self.refresh = timedelta(days=refresh_days)
        self.page_size = max(1, min(page_size, 2500))
        self.watch = watch
        self.timeout = timeout
        self.calendar = calendar
        self._creds = credentials(refresh_token, app, self.endpoints)
        self._refresh_token = refresh_token
        self.pacer = pacer or pacer_for("calendar", self.account, self.quota)
        self.caller = Caller(self._creds, self.pacer, timeout)

    def __repr__(self) -> str:
        return f"GoogleCalendarConnector({self.account!r})"

    def fresh_secret(self) -> Mapping[str, Any] | None:
        token = self._creds.refresh_token
        if token and token != self._refresh_token:
            self._refresh_token = token
            return {"refresh_token": token}
        return None

    def _service(self) -> Any:
        return build("calendar.v3", self._creds, self.endpoints, self.timeout)

    def check(self) -> None:
        service = self._service()
        request = service.events().list(calendarId=self.calendar, maxResults=1, singleEvents=True)
        self.caller.call("events.list", request)

    def pull(
        self, cursor: str | None, *, since: datetime, history_from: datetime | None = None
    ) -> Iterator[Page]:
        state = _load(cursor)
        window = sync_window(since, self.window_past, self.window_future, history_from)
        if state is not None:
            stored = tuple(datetime.fromisoformat(w) for w in state["window"])
            if window[0] < stored[0] and history_from is not None:  # widened: list afresh
                state = {**state, "token": None, "page": None, "token_page": None}
            elif state.get("token") and window[1] - stored[1] <= self.refresh:
                window = (stored[0], stored[1])  # the token tracks the full sync's window
            elif state.get("token"):  # the window moved on: a fresh full sync
                state = {**state, "token": None, "page": None}
            elif state.get("page"):
                window = (stored[0], stored[1])  # finish the interrupted full sync
        state = state or {"v": 1}
        state["window"] = [w.isoformat() for w in window]
        service = self._service()
        if self.watch is not None and self._watch_due(state):
            self._renew_watch(service, state)
            yield Page(cursor=dump_cursor(state))
        token = state.get("token")
        while True:
            params: dict[str, Any] = {
                "calendarId": self.calendar,
                "singleEvents": True,
                "maxResults": self.page_size,
                "pageToken": state.get("page") if not token else state.get("token_page"),
            }
            if token:
                params["syncToken"] = token
            else:
                params.update(
                    timeMin=window[0].isoformat().replace("+00:00", "Z"),
                    timeMax=window[1].isoformat().replace("+00:00", "Z"),
                    showDeleted=True,
                )
            try:
                answer = self.caller.call("events.list", service.events().list(**params))
            except GoogleError as error:
                if error.status == 410:
                    raise CursorExpired("Google Calendar asks for a full sync (410)") from error
                raise
            objects, failures = self._objects(answer.get("items") or (), window)
            next_page = answer.get("nextPageToken")
            if next_page:  # mid-way: resume from this page, keep the old token
                state["token_page" if token else "page"] = next_page
            else:
                state.update(token=answer.get("nextSyncToken") or token, page=None, token_page=None)
            yield Page(calendar=objects, failures=failures, cursor=dump_cursor(state))
            if not next_page:
                return

    def _objects(
        self, items: Any, window: tuple[datetime, datetime]
    ) -> tuple[tuple[CalendarObject, ...], tuple[Failure, ...]]:
        objects: list[CalendarObject] = []
        failures: list[Failure] = []
        for item in items:
            resource = f"{self.calendar}/{item.get('id')}"
            if item.get("status") == "cancelled":
                objects.append(CalendarObject(resource, deleted=True))
                continue
            if item.get("eventType") in NOT_MEETINGS:
                objects.append(CalendarObject(resource))
                continue
            try:
                event = to_event(item, self.calendar)
            except Exception as error:  # one unreadable event never stops the sync
                failures.append(Failure(resource, f"{type(error).__name__}: {error}"[:300]))
                continue
            if event is None:
                failures.append(Failure(resource, "the event has no readable start"))
                continue
            if event.start >= window[1]:
                objects.append(CalendarObject(resource))  # beyond the window: not (yet) kept
                continue
            objects.append(CalendarObject(resource, events=(event,)))
        return tuple(objects), tuple(failures)

    def _watch_due(self, state: State) -> bool:
        assert self.watch is not None
        watch = state.get("watch") or {}
        now = int(time.time() * 1000)
        if watch.get("id") and watch.get("terms", self._terms()) != self._terms():
            return True  # a channel keeps its address and token: open one on the new terms
        if watch.get("retry_at"):
            return now >= int(watch["retry_at"])
        return int(watch.get("expiration") or 0) - self.watch.renew_before_ms <= now

    def _terms(self) -> str:
        assert self.watch is not None
        return push_terms(self.watch.address, self.watch.token)

    def _renew_watch(self, service: Any, state: State) -> None:
        """Open a new channel, then close the old one (a gap would lose nothing: polling)."""
        assert self.watch is not None
        old = state.get("watch") or {}
        body = {
            "id": f"{self.watch.channel_prefix}{uuid.uuid4().hex[:16]}",
            "type": "web_hook",
            "address": self.watch.address,
            "token": self.watch.token,
            "params": {"ttl": str(self.watch.ttl_seconds)},
        }
        try:
            answer = self.caller.call(
                "events.watch", service.events().watch(calendarId=self.calendar, body=body)
            )
        except GoogleError as error:  # push is only a trigger: polling goes on without it
            retry = int(time.time() * 1000) + 6 * 3600_000
            state["watch"] = {"error": str(error)[:200], "retry_at": retry}
            return
        state["watch"] = {
            "id": answer.get("id", body["id"]),
            "resource": answer.get("resourceId"),
            "expiration": int(answer.get("expiration") or 0),
            "terms": self._terms(),
        }
        if old.get("id") and old.get("resource"):
            stop = service.channels().stop(body={"id": old["id"], "resourceId": old["resource"]})
            with contextlib.suppress(GoogleError):  # else it expires by itself
                self.caller.call("channels.stop", stop)
