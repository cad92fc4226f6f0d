"""A CalDAV account as a Connector: discover the VEVENT calendars, then sync each incrementally.

Per calendar the server's RFC 6578 sync token is used when it offers one (sync-collection
REPORT), else the CalendarServer ctag plus a per-resource ETag map. Changed resources are read
with calendar-multiget and fully re-expanded over the sync window; gone ones are emitted as
`CalendarObject(resource, deleted=True)`.

The cursor is JSON: {"v": 1, "window": [start, end], "calendars": {path: state}, "reread":
[path…]} where state is {"token": sync-token} or {"ctag": ctag, "etags": {resource path: etag}}.
A page's cursor covers only that page and the ones before it: a calendar's new token is stored
with its last page, earlier pages carry its old one (a resumed pull repeats those items; ingest
is idempotent). When the window has moved on by more than `refresh_days`, or starts earlier
than the stored one (`history_from`, a widened window: WidensHistory), every resource is
re-read, so occurrences of long-running series that entered the window appear, and those of
the widened stretch. `reread` lists the calendars whose re-read has not ended yet, so a pull
resumed mid-way still re-reads them (a CalDAV listing has no dates: a calendar is re-read whole).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar

from connectors.base import (
    CalendarObject,
    CursorExpired,
    Failure,
    Page,
    dump_cursor,
    sync_window,
)
from connectors.calendar.dav import CAL, CS, DAV, DavClient
from connectors.calendar.ics import UnreadableCalendar, read_calendar_parts

State = dict[str, Any]


@dataclass(frozen=True, slots=True)
class RemoteCalendar:
    path: str
    name: str
    sync_token: str | None  # None: the server does not offer RFC 6578 on this collection
    ctag: str


Window = tuple[datetime, datetime]


def _load(cursor: str | None) -> tuple[Window | None, dict[str, State], set[str]]:
    if cursor is None:
        return None, {}, set()
    try:
        data = json.loads(cursor)
        start, end = (datetime.fromisoformat(v) for v in data["window"])
        calendars = data["calendars"]
        reread = data.get("reread", [])
        if data.get("v") != 1 or not isinstance(calendars, dict) or not isinstance(reread, list):
            raise ValueError("unknown cursor version")
    except (ValueError, KeyError, TypeError) as error:
        raise CursorExpired(f"unreadable CalDAV cursor: {type(error).__name__}") from error
    return (start, end), calendars, {str(path) for path in reread}


def _dump(window: Window, calendars: dict[str, State], reread: set[str]) -> str:
    body: dict[str, Any] = {
        "v": 1,
        "window": [w.isoformat() for w in window],
        "calendars": calendars,
    }
    if reread:
        body["reread"] = sorted(reread)
    return dump_cursor(body)


class CalDavConnector:
    name: ClassVar[str] = "caldav"
    widens_history: ClassVar[bool] = True  # connectors.base.WidensHistory

    def __init__(
        self,
        url: str,
        username: str,
        password: str,
        calendars: Sequence[str] | None = None,
        window_past_days: int = 365,
        window_future_days: int = 90,
        timeout: float = 30.0,
        *,
        page_size: int = 50,
        refresh_days: int = 7,
        sync_tokens: bool = True,
        connect_timeout: float = 10.0,
        allowed_hosts: Sequence[str] | None = None,
    ) -> None:
        self.url = url
        self.username = username
        self._password = password
        self.calendars = list(calendars) if calendars is not None else None
        self.window_past = timedelta(days=window_past_days)
        self.window_future = timedelta(days=window_future_days)
        self.timeout = timeout
        self.page_size = page_size
        self.refresh = timedelta(days=refresh_days)
        self.sync_tokens = sync_tokens  # False: ctag + ETags even where RFC 6578 is offered
        self.connect_timeout = connect_timeout
        # None: connect anywhere; a list (the app always gives one): connectors.netguard
        self.allowed_hosts = None if allowed_hosts is None else list(allowed_hosts)

    def __repr__(self) -> str:  # never show the password
        return f"CalDavConnector({self.url!r}, {self.username!r})"

    def _client(self) -> DavClient:
        return DavClient(
            self.url,
            self.username,
            self._password,
            self.timeout,
            connect_timeout=self.connect_timeout,
            allowed_hosts=self.allowed_hosts,
        )

    def check(self) -> None:
        client = self._client()
        try:
            client.propfind("", "<d:current-user-principal/>")
        finally:
            client.close()

    def discover(self, client: DavClient) -> list[RemoteCalendar]:
        """principal -> calendar-home-set -> the collections that take VEVENTs."""
        found = client.propfind("", "<d:current-user-principal/>")
        principal = found[0].text(f"{DAV}current-user-principal") if found else ""
        homes = client.propfind(principal or "", "<c:calendar-home-set/>")
        home = homes[0].text(f"{CAL}calendar-home-set") if homes else ""
        props = (
            "<d:resourcetype/><d:displayname/><c:supported-calendar-component-set/>"
            "<cs:getctag/><d:sync-token/>"
        )
        result: list[RemoteCalendar] = []
        for item in client.propfind(home or principal or "", props, depth="1"):
            kind = item.props.get(f"{DAV}resourcetype")
            if kind is None or kind.find(f"{CAL}calendar") is None:
                continue
            components = item.props.get(f"{CAL}supported-calendar-component-set")
            names = {c.get("name", "").upper() for c in components or []}
            if components is not None and names and "VEVENT" not in names:
                continue
            name = item.text(f"{DAV}displayname") or item.href.rstrip("/").rsplit("/", 1)[-1]
            if self.calendars is not None and not self._wanted(item.href, name):
                continue
            token = (item.text(f"{DAV}sync-token") or None) if self.sync_tokens else None
            result.append(RemoteCalendar(item.href, name, token, item.text(f"{CS}getctag")))
        return sorted(result, key=lambda c: c.path)

    def _wanted(self, path: str, name: str) -> bool:
        assert self.calendars is not None
        last = path.rstrip("/").rsplit("/", 1)[-1]
        return any(w in (name, path, path.rstrip("/"), last) for w in self.calendars)

    def pull(
        self, cursor: str | None, *, since: datetime, history_from: datetime | None = None
    ) -> Iterator[Page]:
        old_window, states, reread = _load(cursor)
        window = sync_window(since, self.window_past, self.window_future, history_from)
        stale = (
            old_window is None
            or window[1] - old_window[1] > self.refresh
            or window[0] < old_window[0]  # widened: the stretch before was never read
        )
        if not stale and old_window is not None:
            window = old_window  # keep expanding over the stored window until it is refreshed
        client = self._client()
        try:
            done: dict[str, State] = {}
            calendars = self.discover(client)
            paths = {calendar.path for calendar in calendars}
            reread = paths if stale and old_window is not None else reread & paths
            for calendar in calendars:
                done[calendar.path] = states.get(calendar.path, {})
            last = cursor
            for calendar in calendars:
                state = states.get(calendar.path)
                full = stale or calendar.path in reread
                for objects, failures, new_state in self._sync(
                    client, calendar, state, window, full=full
                ):
                    done[calendar.path] = new_state
                    last = _dump(window, done, reread)
                    yield Page(calendar=objects, failures=failures, cursor=last)
                reread.discard(calendar.path)
            if last != _dump(window, done, reread):  # a re-read ended with the calendar's last page
                yield Page(cursor=_dump(window, done, reread))
        finally:
            client.close()

    def _sync(
        self,
        client: DavClient,
        calendar: RemoteCalendar,
        state: State | None,
        window: tuple[datetime, datetime],
        *,
        full: bool,
    ) -> Iterator[tuple[tuple[CalendarObject, ...], tuple[Failure, ...], State]]:
        """Pages of (objects, failures, the calendar's state once they are stored)."""
        state = state or {}
        old_etags: dict[str, str] = dict(state.get("etags", {}))
        if calendar.sync_token is not None and "etags" not in state:
            token = str(state.get("token", ""))
            changed, gone, new_token = self._delta(client, calendar.path, token)
            if full and token:  # the window moved: re-read everything, keep the deletions
                changed = sorted(self._etags(client, calendar.path))
            final: State = {"token": new_token}
            partial: State = {"token": token} if token else {}
            yield from self._emit(client, calendar.path, changed, gone, window, final, partial)
            return
        if not full and state.get("ctag") and state.get("ctag") == calendar.ctag:
            return  # nothing changed in this calendar
        etags = self._etags(client, calendar.path)
        gone = sorted(set(old_etags) - set(etags))
        changed = sorted(h for h, e in etags.items() if full or old_etags.get(h) != e)
        final = {"ctag": calendar.ctag, "etags": etags}
        yield from self._emit(
            client, calendar.path, changed, gone, window, final, {"etags": old_etags}
        )

    def _delta(self, client: DavClient, path: str, token: str) -> tuple[list[str], list[str], str]:
        changed: dict[str, None] = {}
        gone: dict[str, None] = {}
        while True:
            members, token_after, truncated = client.sync_collection(path, token)
            for member in members:
                if member.href.endswith("/"):
                    continue  # a sub-collection, not a calendar resource
                target = gone if member.status == 404 else changed
                (changed if target is gone else gone).pop(member.href, None)
                target[member.href] = None
            if not token_after or token_after == token or not truncated:
                return list(changed), list(gone), token_after or token
            token = token_after

    def _etags(self, client: DavClient, path: str) -> dict[str, str]:
        return {
            item.href: item.text(f"{DAV}getetag")
            for item in client.propfind(path, "<d:getetag/><d:resourcetype/>", depth="1")
            if not item.href.endswith("/") and item.href.rstrip("/") != path.rstrip("/")
        }

    def _emit(
        self,
        client: DavClient,
        path: str,
        changed: list[str],
        gone: list[str],
        window: tuple[datetime, datetime],
        final: State,
        partial: State,
    ) -> Iterator[tuple[tuple[CalendarObject, ...], tuple[Failure, ...], State]]:
        etag_mode = "etags" in final
        progress: dict[str, str] = dict(partial.get("etags", {}))
        deleted = [CalendarObject(h, deleted=True) for h in gone]
        for h in gone:
            progress.pop(h, None)
        batches = [changed[i : i + self.page_size] for i in range(0, len(changed), self.page_size)]
        if not batches:
            yield tuple(deleted), (), final
            return
        for number, batch in enumerate(batches):
            objects: list[CalendarObject] = list(deleted) if number == 0 else []
            failures: list[Failure] = []
            for item in client.multiget(path, batch):
                if item.status == 404:  # deleted between the listing and the read
                    objects.append(CalendarObject(item.href, deleted=True))
                    continue
                etag = item.text(f"{DAV}getetag")
                data = item.text(f"{CAL}calendar-data").encode("utf-8")
                try:
                    read, reasons = read_calendar_parts(
                        data, resource=item.href, window=window, version=etag
                    )
                except UnreadableCalendar as error:
                    failures.append(Failure(item.href, str(error)))
                else:
                    objects.append(read)
                    if reasons:
                        failures.append(Failure(item.href, "; ".join(reasons)))
                progress[item.href] = etag
            last = number == len(batches) - 1
            state = final if last else ({"etags": dict(progress)} if etag_mode else partial)
            yield tuple(objects), tuple(failures), state
