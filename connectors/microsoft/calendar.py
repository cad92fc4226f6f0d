"""The Outlook calendar through `/me/calendarView/delta` over the sync window.

The delta pages give single events, series masters, the plain occurrences of series (as
stubs) and exceptions; events.py turns them into CalendarObjects: one per single event
(resource = its id), one per series (resource = the master's id). An occurrence's
`recurrence_id` is its original start, its `uid` the master's `iCalUId` (identical in every
attendee's calendar). Masters are remembered for the pull; one that a page needs and did not
carry is read with `GET /me/events/{id}?$select=…` (one request per series, only then:
Exchange sends a series whole, master first, so a backfill costs pages only).

The cursor is JSON: {"v": 2, "window": [start, end], "link": nextLink or deltaLink, "push":
subscription, "from": start, "gap": gap}. Graph fixes the window in the delta token ("state
tokens … encode the startDateTime and endDateTime parameters",
https://learn.microsoft.com/graph/delta-query-events), so when the window has moved on by
more than `refresh_days` the old round is first drained (its removals still count), then a
new round starts over the new window. A 410 restarts the round over the current window.

A widened window (`history_from`, connectors.base.WidensHistory) starts before what the
stored round covers ("from": where the calendar's history starts; the start of the round's
window when absent). That round goes on as it is, and the stretch before it, the gap
{"window": [start, end], "link": nextLink}, is read once by a calendarView/delta round of
its own, its nextLink stored with each page so an interrupted gap resumes; its deltaLink is
not kept, since the next refresh's new round spans the whole widened window. A gap's
objects carry the gap's window, so what they say of deleted occurrences stays inside it. A
new round (the first, after a refresh or after a 410) spans the widened window: no gap.

Times are asked in UTC (`Prefer: outlook.timezone="UTC"`). Version 1 cursors (occurrences
stored one resource each, without their master's properties) are refused as expired: the
runner lists the window afresh and forgets what the listing no longer names.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar
from urllib.parse import quote

from connectors.base import CursorExpired, Page, dump_cursor, sync_window
from connectors.microsoft import push
from connectors.microsoft.events import MASTER_SELECT, SeriesReader, Window
from connectors.microsoft.http import (
    GraphClient,
    GraphConnector,
    NotFound,
    SyncStateGone,
    delta_pages,
)

VERSION = 2


def _load(cursor: str | None) -> dict[str, Any]:
    if cursor is None:
        return {"v": VERSION}
    try:
        data = json.loads(cursor)
        if data.get("v") != VERSION:
            raise ValueError("unknown cursor version")
        if data.get("window"):
            [datetime.fromisoformat(w) for w in data["window"]]
        if data.get("from"):
            datetime.fromisoformat(data["from"])
        if data.get("gap"):
            [datetime.fromisoformat(w) for w in data["gap"]["window"]]
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

    def master(self, master_id: str) -> dict[str, Any] | None:
        """A series master with what its occurrences need; None when it is gone."""
        try:
            return self.client.get(
                f"me/events/{quote(master_id, safe='')}",
                params={"$select": MASTER_SELECT},
                headers={"Prefer": 'outlook.timezone="UTC", IdType="ImmutableId"'},
            )
        except NotFound:
            return None

    def _pull(
        self, cursor: str | None, since: datetime, history_from: datetime | None
    ) -> Iterator[Page]:
        state = _load(cursor)
        reader = SeriesReader(self.account, self.master)
        wanted = sync_window(since, self.window_past, self.window_future, history_from)
        window = wanted
        old = state.get("window")
        link = state.get("link")
        if old is not None and link:
            old_window = (datetime.fromisoformat(old[0]), datetime.fromisoformat(old[1]))
            if window[1] - old_window[1] <= self.refresh:
                window = old_window  # keep the delta round of the stored window
            else:
                try:  # drain the old round first: its removals still count
                    for items, after, first in self._round(old_window, link):
                        objects, failures = reader.read(
                            items, old_window, first=first, last=_ends(after)
                        )
                        state["link"] = after
                        yield Page(calendar=objects, failures=failures, cursor=dump_cursor(state))
                except SyncStateGone:
                    pass
                link = None
        else:
            link = None
        for attempt in range(2):
            try:
                fresh = link is None
                for items, after, first in self._round(window, link):
                    objects, failures = reader.read(items, window, first=first, last=_ends(after))
                    state["window"] = [w.isoformat() for w in window]
                    state["link"] = after
                    if fresh:  # a new round spans the whole window: no gap is left
                        state["from"] = window[0].isoformat()
                        state.pop("gap", None)
                    yield Page(calendar=objects, failures=failures, cursor=dump_cursor(state))
                break
            except SyncStateGone:
                if attempt:
                    raise
                link = None
        yield from self._fill(state, reader, wanted[0])
        subscription = push.ensure(
            self.client, self.push_target, "me/events", state.get("push"), now=datetime.now(UTC)
        )
        if subscription != state.get("push"):
            if subscription is None:
                state.pop("push", None)
            else:
                state["push"] = subscription
            yield Page(cursor=dump_cursor(state))

    def _fill(self, state: dict[str, Any], reader: SeriesReader, start: datetime) -> Iterator[Page]:
        """The gap under way, then the one between `start` and what the calendar's history
        covers, if earlier: a calendarView/delta round over just that stretch."""
        restarted = False
        while state.get("window"):
            gap = state.get("gap")
            if gap is None:
                covered = datetime.fromisoformat(state.get("from") or state["window"][0])
                if start >= covered:
                    return
                gap = state["gap"] = {
                    "window": [start.isoformat(), covered.isoformat()],
                    "link": None,
                }
                state["from"] = start.isoformat()
            window = (
                datetime.fromisoformat(gap["window"][0]),
                datetime.fromisoformat(gap["window"][1]),
            )
            try:
                for items, after, first in self._round(window, gap["link"]):
                    objects, failures = reader.read(items, window, first=first, last=_ends(after))
                    if _ends(after):
                        del state["gap"]
                    else:
                        gap["link"] = after
                    yield Page(calendar=objects, failures=failures, cursor=dump_cursor(state))
            except SyncStateGone:
                if restarted:
                    raise
                restarted, gap["link"] = True, None

    def _round(self, window: Window, link: str | None) -> Iterator[tuple[list[Any], str, bool]]:
        """The round's pages: (entries, the link after them, whether the page starts the
        round: the first after no link or a deltaLink, not after a nextLink)."""
        if link is not None:
            pages = delta_pages(self.client, link, self.prefer)
        else:
            params = {
                "startDateTime": window[0].strftime("%Y-%m-%dT%H:%M:%SZ"),
                "endDateTime": window[1].strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
            pages = delta_pages(self.client, ("me/calendarView/delta", params), self.prefer)
        first = link is None or _ends(link)
        for items, after in pages:
            yield items, after, first
            first = False


def _ends(link: str) -> bool:
    """A deltaLink (a round's end) rather than a nextLink: Graph's links carry `$deltatoken`
    and `$skiptoken` (https://learn.microsoft.com/graph/delta-query-overview)."""
    return "deltatoken=" in link.lower()
