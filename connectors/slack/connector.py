"""SlackConnector: the messages of conversations with people outside the organization.

Read (docs/slack.md says why these and no others):
- channels shared with another organization (Slack Connect: `is_ext_shared`) that the app is
  a member of;
- direct and group messages (`im`, `mpim`) with someone of another workspace or a guest.
Channels only our own people are in are never read: §11 makes nothing of them.

Incremental, per channel. conversations.history returns the newest messages first, between
`oldest` and `latest` (exclusive unless `inclusive`), in pages joined by
`response_metadata.next_cursor` while `has_more`
(https://docs.slack.dev/reference/methods/conversations.history). A channel's cursor keeps
`f`, the `ts` everything up to which is stored; a window (`f`, `l`] in progress also keeps `c`,
the oldest `ts` stored of it, so a crash resumes with `latest=c` and no page is fetched twice
or missed (Slack's own page cursors are not kept across runs). Threads: replies are not in
the history, only their parent (with `reply_count`, `latest_reply`), so each new parent's
replies are read with conversations.replies (https://docs.slack.dev/reference/methods/
conversations.replies), and threads that had a reply within `thread_days` are asked again
for newer replies on later runs (`t`: parent ts -> newest reply ts). A reply to a thread
quiet for longer is not seen (docs/slack.md).

Message text is never kept: only its length.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, ClassVar

from connectors.base import Page, dump_cursor
from connectors.chat import ChatMessage, ChatPage
from connectors.slack.api import Caller, Limits, SlackError
from connectors.slack.people import People

log = logging.getLogger(__name__)

TYPES = "public_channel,private_channel,mpim,im"
# human messages; joins, topic changes, bots and deletions are not conversation
SPOKEN = frozenset({None, "thread_broadcast", "file_share", "me_message"})
# the channel is gone or the app was removed from it: skipped, its cursor kept
GONE = frozenset({"channel_not_found", "not_in_channel", "is_archived", "access_denied"})


def ts_of(moment: datetime) -> str:
    return f"{moment.timestamp():.6f}"


def _key(ts: object) -> Decimal:
    try:
        return Decimal(str(ts))
    except (InvalidOperation, ValueError):
        return Decimal(0)


def load_cursor(cursor: str | None) -> dict[str, dict[str, Any]]:
    """The per-channel state of a cursor; an unreadable one starts afresh."""
    try:
        state = json.loads(cursor) if cursor else {}
    except ValueError:
        return {}
    channels = state.get("channels") if isinstance(state, dict) else None
    return {str(k): dict(v) for k, v in channels.items()} if isinstance(channels, dict) else {}


def _moment(ts: object) -> datetime:
    return datetime.fromtimestamp(float(_key(ts)), UTC)


class SlackConnector:
    name: ClassVar[str] = "slack"

    def __init__(
        self,
        token: str,
        *,
        user_token: str | None = None,
        base_url: str | None = None,
        limits: Limits | None = None,
        timeout: int = 30,
        thread_days: int = 7,
        max_threads: int = 50,
        own_only: bool = False,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.token = token
        self.user_token = user_token  # the installer's own DMs (docs/slack.md)
        # another member's install of a workspace already read: only their own DMs
        self.own_only = own_only
        self.base_url = base_url
        self.limits = limits or Limits()
        self.timeout = timeout
        self.thread_days = thread_days
        self.max_threads = max_threads
        self.sleep = sleep
        self.clock = clock
        self.caller: Caller | None = None  # the last pull's, for its counts
        self.people: People | None = None

    def __repr__(self) -> str:
        return f"SlackConnector(base_url={self.base_url!r})"

    def _caller(self) -> Caller:
        return Caller(
            self.token,
            user_token=self.user_token,
            base_url=self.base_url,
            timeout=self.timeout,
            limits=self.limits,
            sleep=self.sleep,
        )

    def check(self) -> None:
        self._caller().call("auth.test")

    def pull(self, cursor: str | None, *, since: datetime) -> Iterator[Page]:
        caller = self.caller = self._caller()
        people = self.people = People(caller)
        team = str(caller.call("auth.test").get("team_id") or "")
        state = load_cursor(cursor)
        for channel, as_user in self._conversations(caller, people, team):
            channel_id = str(channel["id"])
            mine = state.get(channel_id) or {"f": ts_of(since)}
            # a DM has no name: the other person's address says who it is with
            other = channel.get("user")
            mine["n"] = channel.get("name") or people.email(other) or other
            mine["k"] = _kind(channel)
            state[channel_id] = mine
            reader = _Reader(self, caller, people, channel_id, as_user)
            try:
                for messages, synced_to in reader.pages(mine):
                    yield ChatPage(
                        channel_id=channel_id,
                        chat=messages,
                        cursor=dump_cursor({"channels": state}),
                        channel_name=mine["n"],
                        channel_kind=mine["k"],
                        synced_to=synced_to,
                    )
            except SlackError as error:
                if error.code not in GONE:
                    raise
                log.info("slack channel %s skipped: %s", channel_id, error.code)

    def _conversations(
        self, caller: Caller, people: People, team: str
    ) -> Iterator[tuple[dict[str, Any], bool]]:
        """Conversations worth reading, and whether the user token reads them (else the
        bot's)."""
        seen: set[str] = set()
        readers = [] if self.own_only else [(False, TYPES)]
        readers += [(True, "mpim,im")] if self.user_token else []
        for as_user, types in readers:
            for channel in self._listing(caller, as_user, types):
                channel_id = str(channel.get("id") or "")
                if not channel_id or channel_id in seen:
                    continue
                if self._outside(caller, people, team, channel, as_user):
                    seen.add(channel_id)
                    yield channel, as_user

    def _listing(self, caller: Caller, as_user: bool, types: str) -> Iterator[dict[str, Any]]:
        page: str | None = None
        while True:
            answer = caller.call(
                "conversations.list", as_user=as_user, types=types, limit=200, cursor=page or ""
            )
            yield from answer.get("channels") or ()
            page = (answer.get("response_metadata") or {}).get("next_cursor") or None
            if not page:
                return

    def _outside(
        self,
        caller: Caller,
        people: People,
        team: str,
        channel: dict[str, Any],
        as_user: bool,
    ) -> bool:
        if channel.get("is_im"):
            user = channel.get("user")
            return bool(user) and people.get(str(user)).outside(team)
        if channel.get("is_mpim"):
            members = caller.call("conversations.members", as_user=as_user, channel=channel["id"])
            return any(people.get(str(m)).outside(team) for m in members.get("members") or ())
        # a channel the app is not in cannot be read ("Any conversation the relevant bot is a
        # member of", conversations.history); inviting the app is the admin's choice
        return bool(channel.get("is_ext_shared")) and bool(channel.get("is_member"))


def _kind(channel: dict[str, Any]) -> str:
    if channel.get("is_im"):
        return "im"
    if channel.get("is_mpim"):
        return "mpim"
    return "private_channel" if channel.get("is_private") else "public_channel"


class _Reader:
    """One channel's history since its cursor, page by page; `state` is updated in place
    before each page is handed out (the page's cursor covers exactly what it carries)."""

    def __init__(
        self,
        connector: SlackConnector,
        caller: Caller,
        people: People,
        channel_id: str,
        as_user: bool,
    ) -> None:
        self.connector = connector
        self.caller = caller
        self.people = people
        self.channel_id = channel_id
        self.as_user = as_user
        self.fresh: set[str] = set()  # threads read whole in this run

    def pages(
        self, state: dict[str, Any]
    ) -> Iterator[tuple[tuple[ChatMessage, ...], datetime | None]]:
        """Pages of messages, each with the time everything up to which is then stored (the
        end of the window, on its last page; None on the others)."""
        yield from self._window(state)
        yield from ((messages, None) for messages in self._threads(state))

    def _window(
        self, state: dict[str, Any]
    ) -> Iterator[tuple[tuple[ChatMessage, ...], datetime | None]]:
        if "l" not in state:  # a new window: everything after f up to now
            state["l"] = f"{self.connector.clock():.6f}"
        page: str | None = None
        limit = self.connector.limits.history_page
        # fixed for this run's pages, which Slack's cursor joins; `c` is for the next run
        latest = state.get("c") or state["l"]
        while True:
            answer = self.caller.call(
                "conversations.history",
                channel=self.channel_id,
                oldest=state["f"],
                latest=latest,
                limit=limit,
                cursor=page or "",
                as_user=self.as_user,
            )
            found = [m for m in answer.get("messages") or () if isinstance(m, dict)]
            page = (answer.get("response_metadata") or {}).get("next_cursor") or None
            more = bool(answer.get("has_more")) and page is not None
            messages = [*self._spoken(found)]
            for parent in found:
                if int(parent.get("reply_count") or 0) and parent.get("ts") == parent.get(
                    "thread_ts", parent.get("ts")
                ):
                    messages.extend(self._replies(state, str(parent["ts"]), None))
            if found:
                state["c"] = min((str(m["ts"]) for m in found if "ts" in m), key=_key)
                top = max((str(m["ts"]) for m in found if "ts" in m), key=_key)
                if _key(top) > _key(state.get("top", 0)):
                    state["top"] = top
            synced_to = None
            if not more:  # the window is complete: everything up to its newest is stored
                synced_to = _moment(state["l"])
                state["f"] = state.pop("top", None) or state["f"]
                state.pop("c", None)
                state.pop("l", None)
            if messages or not more:
                yield tuple(messages), synced_to
            if not more:
                return

    def _threads(self, state: dict[str, Any]) -> Iterator[tuple[ChatMessage, ...]]:
        """Newer replies to threads that were active lately (their parents are older than
        the window, so the history no longer shows them)."""
        threads: dict[str, str] = dict(state.get("t") or {})
        horizon = self.connector.clock() - self.connector.thread_days * 86400
        for parent, newest in sorted(threads.items(), key=lambda item: _key(item[1])):
            if float(_key(newest)) < horizon or parent in self.fresh:
                continue
            messages = tuple(self._replies(state, parent, newest))
            if messages:
                yield messages
        state["t"] = {p: n for p, n in (state.get("t") or {}).items() if float(_key(n)) >= horizon}

    def _replies(self, state: dict[str, Any], parent: str, oldest: str | None) -> list[ChatMessage]:
        if oldest is None:
            self.fresh.add(parent)
        found: list[dict[str, Any]] = []
        page: str | None = None
        while True:
            answer = self.caller.call(
                "conversations.replies",
                channel=self.channel_id,
                ts=parent,
                limit=self.connector.limits.history_page,
                cursor=page or "",
                **({"oldest": oldest} if oldest else {}),
                as_user=self.as_user,
            )
            found.extend(m for m in answer.get("messages") or () if isinstance(m, dict))
            page = (answer.get("response_metadata") or {}).get("next_cursor") or None
            if not (answer.get("has_more") and page):
                break
        replies = [m for m in found if m.get("ts") != parent and "ts" in m]
        if oldest is not None:
            replies = [m for m in replies if _key(m["ts"]) > _key(oldest)]
        if replies:
            newest = max((str(m["ts"]) for m in replies), key=_key)
            threads = dict(state.get("t") or {})
            if _key(newest) > _key(threads.get(parent, 0)):
                threads[parent] = newest
            # the most recently active threads are the ones asked again
            keep = sorted(threads.items(), key=lambda item: _key(item[1]), reverse=True)
            state["t"] = dict(keep[: self.connector.max_threads])
        return list(self._spoken(replies))

    def _spoken(self, found: list[dict[str, Any]]) -> Iterator[ChatMessage]:
        for message in found:
            if message.get("subtype") not in SPOKEN or "ts" not in message:
                continue
            if message.get("bot_id") and not message.get("user"):
                continue
            ts = str(message["ts"])
            text = message.get("text")
            yield ChatMessage(
                id=ts,
                sender=self.people.email(message.get("user")),
                sent_at=_moment(ts),
                text_length=len(text) if isinstance(text, str) else None,
            )
