"""Gmail as a Connector (google-api-python-client; gmail.readonly, or gmail.metadata).

The cursor is JSON:

    {"v": 1, "history": "91442", "newest": 1767225600000, "covered_from": 1735689600000,
     "backfill": {"page": "0934…" | null, "floor": 1735689600000} | null,
     "gap": {"page", "floor", "below", "q"} | null, "rest": {"page", "from_id"} | null,
     "watch": {"expiration": 1767830400000} | null}

- First pull: `users.getProfile` gives the mailbox's historyId *before* anything is listed;
  it is the incremental boundary, so mail that arrives during a long backfill is replayed
  by history afterwards (connectors.md §0.1). `floor` is `since` in epoch milliseconds.
- Every pull first replays history (`history.list` from `history`, messageAdded, labelAdded
  and SPAM/TRASH labelRemoved, minus messageDeleted), then goes on with the backfill if one
  is pending, so fresh mail is not held up behind it. Each history page moves `history` to
  the last record it holds; the last page stores the mailbox's current historyId.
- Backfill: `messages.list` newest first (`maxResults` `page_size`), then `messages.get` in
  batch requests of `batch_size` (Google: at most 100, more than 50 "not recommended"), up
  to `quota.max_in_flight` batches at once: format=full with a mask of headers and MIME tree
  (no body), or format=metadata when the consent granted gmail.metadata only
  (gmail_message.py). The gmail.metadata scope does not allow `q`, so the window is enforced
  by `internalDate` in both modes: the backfill ends with the first batch that reaches below
  `floor` (Gmail lists newest first). Each page stores the next page token.
- A 404 on history (Google keeps it about a week) is not a CursorExpired: a new historyId is
  taken and a "relist" (a second backfill, done before any pending one) lists down to the
  newest message seen, less `overlap_days`.
  Ingest skips what the connection already observed, so nothing is doubled and only that
  stretch's quota is spent again.
- DRAFT, SPAM, TRASH and CHAT messages are skipped (not even observed, so a message moved
  out of spam later comes through history). SENT -> folder role "sent", INBOX -> "inbox".
- Deleted mail removes nothing: an email that was sent or received stays an activity.
- Widening (`history_from` earlier than `covered_from`): gmail_window.py; the gap listing
  pages like the backfill, after history, and each page stores its token.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar

from googleapiclient.errors import HttpError

from connectors.base import CursorExpired, Failure, Page, RemoteMessage, dump_cursor
from connectors.google.api import App, Caller, Endpoints, build, credentials
from connectors.google.errors import GoogleError
from connectors.google.gmail_message import (
    FULL_FIELDS,
    METADATA_FIELDS,
    METADATA_HEADERS,
    to_message,
)
from connectors.google.gmail_window import resume_at, widen
from connectors.google.pacing import Pacer, Quota, pacer_for

DAY_MS = 86_400_000

State = dict[str, Any]


@dataclass(frozen=True, slots=True)
class GmailWatch:
    """users.watch through Cloud Pub/Sub: the push only marks the connection due."""

    topic: str  # projects/<project>/topics/<topic>
    renew_before_ms: int = DAY_MS  # renew when the watch expires within this


def _load(cursor: str | None) -> State | None:
    if cursor is None:
        return None
    try:
        state = json.loads(cursor)
        if not isinstance(state, dict) or state.get("v") != 1 or not state.get("history"):
            raise ValueError("unknown cursor version")
        str(state["history"])
    except (ValueError, KeyError, TypeError) as error:
        raise CursorExpired(f"unreadable Gmail cursor: {type(error).__name__}") from error
    return state


def _ms(moment: datetime) -> int:
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def _gone(error: HttpError) -> bool:
    """A message deleted between its listing and its read."""
    return bool(error.resp.status == 404)


class GmailConnector:
    name: ClassVar[str] = "gmail"
    widens_history: ClassVar[bool] = True

    def __init__(
        self,
        *,
        account: str,
        refresh_token: str,
        app: App,
        endpoints: Endpoints | None = None,
        quota: Quota | None = None,
        page_size: int = 500,
        batch_size: int = 50,
        overlap_days: int = 1,
        watch: GmailWatch | None = None,
        timeout: float = 60.0,
        pacer: Pacer | None = None,
        metadata_only: bool = False,
    ) -> None:
        """`metadata_only`: the consent granted gmail.metadata, not gmail.readonly
        (oauth.gmail_metadata_only of its scopes); Google then refuses format=full."""
        self.account = account.lower()
        self.metadata_only = metadata_only
        self.endpoints = endpoints or Endpoints()
        self.quota = quota or Quota()
        self.page_size = max(1, min(page_size, 500))
        self.batch_size = max(1, min(batch_size, 100))
        self.overlap_ms = overlap_days * DAY_MS
        self.watch = watch
        self.timeout = timeout
        self._creds = credentials(refresh_token, app, self.endpoints)
        self._refresh_token = refresh_token
        self.pacer = pacer or pacer_for("gmail", self.account, self.quota)
        self.caller = Caller(self._creds, self.pacer, timeout)

    def __repr__(self) -> str:  # never show the token
        return f"GmailConnector({self.account!r})"

    def fresh_secret(self) -> Mapping[str, Any] | None:
        """Google may hand out a new refresh token on refresh: keep it."""
        token = self._creds.refresh_token
        if token and token != self._refresh_token:
            self._refresh_token = token
            return {"refresh_token": token}
        return None

    def _service(self) -> Any:
        return build("gmail.v1", self._creds, self.endpoints, self.timeout)

    def check(self) -> None:
        self._profile(self._service())

    def _profile(self, service: Any) -> dict[str, Any]:
        request = service.users().getProfile(userId="me")
        profile: dict[str, Any] = self.caller.call("getProfile", request)
        return profile

    # -- pull ---------------------------------------------------------------------------------

    def pull(
        self, cursor: str | None, *, since: datetime, history_from: datetime | None = None
    ) -> Iterator[Page]:
        state = _load(cursor)
        service = self._service()
        start = None if history_from is None else _ms(history_from)
        with ThreadPoolExecutor(max(1, self.quota.max_in_flight)) as pool:
            if state is None:
                profile = self._profile(service)
                floor = min(_ms(since), start if start is not None else _ms(since))
                state = {
                    "v": 1,
                    "history": str(profile["historyId"]),
                    "newest": 0,
                    "covered_from": floor,
                    "backfill": {"page": None, "floor": floor},
                }
            if self.watch is not None and self._watch_due(state):
                self._renew_watch(service, state)
                yield Page(cursor=dump_cursor(state))
            try:
                yield from self._history(service, pool, state)
            except GoogleError as error:
                if error.status != 404:
                    raise
                # history expired: a new boundary, then re-list down to what we have seen
                profile = self._profile(service)
                floor = max(_ms(since), int(state.get("newest") or 0) - self.overlap_ms)
                state["history"] = str(profile["historyId"])
                state["relist"] = {"page": None, "floor": floor}
                yield Page(cursor=dump_cursor(state))
            widen(state, _ms(since), start, metadata_only=self.metadata_only)
            for key in ("relist", "backfill", "gap"):
                if state.get(key):
                    yield from self._backfill(service, pool, state, key)
            # a widening asked for while a gap listing was under way starts once it has ended
            if widen(state, _ms(since), start, metadata_only=self.metadata_only):
                for key in ("backfill", "gap"):
                    if state.get(key):
                        yield from self._backfill(service, pool, state, key)

    def _watch_due(self, state: State) -> bool:
        watch = state.get("watch") or {}
        now = int(time.time() * 1000)
        if watch.get("retry_at"):
            return now >= int(watch["retry_at"])
        assert self.watch is not None
        return int(watch.get("expiration") or 0) - self.watch.renew_before_ms <= now

    def _renew_watch(self, service: Any, state: State) -> None:
        assert self.watch is not None
        body = {
            "topicName": self.watch.topic,
            "labelIds": ["INBOX", "SENT"],
            "labelFilterBehavior": "INCLUDE",
        }
        try:
            answer = self.caller.call("watch", service.users().watch(userId="me", body=body))
        except GoogleError as error:  # push is only a trigger: polling goes on without it
            state["watch"] = {
                "error": str(error)[:200],
                "retry_at": int(time.time() * 1000) + 6 * 3600_000,
            }
            return
        state["watch"] = {"expiration": int(answer.get("expiration") or 0)}

    def _history(self, service: Any, pool: ThreadPoolExecutor, state: State) -> Iterator[Page]:
        page_token: str | None = None
        start = str(state["history"])
        while True:
            request = (
                service.users()
                .history()
                .list(
                    userId="me",
                    startHistoryId=start,
                    historyTypes=["messageAdded", "messageDeleted", "labelAdded", "labelRemoved"],
                    maxResults=500,
                    pageToken=page_token,
                )
            )
            answer = self.caller.call("history.list", request, what="history.list")
            records = answer.get("history") or []
            added: dict[str, None] = {}
            deleted: set[str] = set()
            for record in records:
                for item in record.get("messagesAdded") or ():
                    added[item["message"]["id"]] = None
                for item in record.get("labelsAdded") or ():
                    added[item["message"]["id"]] = None
                for item in record.get("labelsRemoved") or ():
                    if set(item.get("labelIds") or ()) & {"SPAM", "TRASH"}:
                        added[item["message"]["id"]] = None
                for item in record.get("messagesDeleted") or ():
                    deleted.add(item["message"]["id"])
            ids = [i for i in added if i not in deleted]
            messages, failures = self._read(service, pool, ids)
            self._note_newest(state, messages)
            page_token = answer.get("nextPageToken")
            if page_token and records:
                state["history"] = str(records[-1]["id"])
            elif not page_token:
                state["history"] = str(answer.get("historyId") or state["history"])
            yield Page(
                messages=tuple(messages), failures=tuple(failures), cursor=dump_cursor(state)
            )
            if not page_token:
                return

    def _backfill(
        self, service: Any, pool: ThreadPoolExecutor, state: State, key: str
    ) -> Iterator[Page]:
        """List newest first down to the floor of `state[key]` ("relist", "backfill" or "gap":
        gmail_window.py), keeping what lies below its `below` if it has one."""
        backfill: State = state[key]
        floor = int(backfill["floor"])
        below = backfill.get("below")
        query = {"q": backfill["q"]} if backfill.get("q") else {}
        while True:
            request = (
                service.users()
                .messages()
                .list(
                    userId="me",
                    maxResults=self.page_size,
                    pageToken=backfill.get("page"),
                    includeSpamTrash=False,
                    **query,
                )
            )
            try:
                answer = self.caller.call("messages.list", request, what="messages.list")
            except GoogleError as error:
                if error.status in (400, 404) and backfill.get("page"):
                    raise CursorExpired("Gmail forgot the backfill's page token") from error
                raise
            ids = resume_at(
                [m["id"] for m in answer.get("messages") or ()], backfill.get("from_id")
            )
            messages, failures, reached = self._read_until(service, pool, ids, floor)
            if below is not None:
                messages = [
                    m for m in messages if m.provider_date is None or _ms(m.provider_date) < below
                ]
            self._note_newest(state, messages)
            next_page = answer.get("nextPageToken")
            if key == "backfill" and reached is not None:  # where a later widening goes on
                state["rest"] = {"page": backfill.get("page"), "from_id": reached}
            elif key == "backfill" and not next_page:
                state["rest"] = {"end": True}  # the mailbox holds nothing older
            if reached is not None or not next_page:
                state[key] = None
            else:
                backfill = state[key] = {**backfill, "page": next_page, "from_id": None}
            yield Page(
                messages=tuple(messages), failures=tuple(failures), cursor=dump_cursor(state)
            )
            if state[key] is None:
                return

    @staticmethod
    def _note_newest(state: State, messages: Sequence[RemoteMessage]) -> None:
        newest = int(state.get("newest") or 0)
        for message in messages:
            if message.provider_date is not None:
                newest = max(newest, _ms(message.provider_date))
        state["newest"] = newest

    # -- reading messages ---------------------------------------------------------------------

    def _batches(self, ids: Sequence[str]) -> list[list[str]]:
        return [list(ids[i : i + self.batch_size]) for i in range(0, len(ids), self.batch_size)]

    def _get_batch(self, service: Any, ids: list[str]) -> dict[str, Any]:
        messages = service.users().messages()
        if self.metadata_only:
            options: dict[str, Any] = {
                "format": "metadata",
                "metadataHeaders": list(METADATA_HEADERS),
                "fields": METADATA_FIELDS,
            }
        else:
            options = {"format": "full", "fields": FULL_FIELDS}
        requests = [(mid, messages.get(userId="me", id=mid, **options)) for mid in ids]
        return self.caller.batch(
            service, "messages.get", requests, what="messages.get", tolerate=_gone
        )

    def _parse(
        self, ids: Sequence[str], answers: Mapping[str, Any]
    ) -> tuple[list[RemoteMessage], list[Failure], list[int]]:
        messages: list[RemoteMessage] = []
        failures: list[Failure] = []
        dates: list[int] = []
        for mid in ids:
            data = answers.get(mid)
            if data is None:
                continue  # deleted since it was listed
            if str(data.get("internalDate") or "").isdigit():
                dates.append(int(data["internalDate"]))
            try:
                message = to_message(data, metadata_only=self.metadata_only)
            except Exception as error:  # one unreadable message never stops the sync
                failures.append(Failure(mid, f"{type(error).__name__}: {error}"[:300]))
                continue
            if message is not None:
                messages.append(message)
        return messages, failures, dates

    def _read(
        self, service: Any, pool: ThreadPoolExecutor, ids: Sequence[str]
    ) -> tuple[list[RemoteMessage], list[Failure]]:
        answers: dict[str, Any] = {}
        for found in pool.map(lambda chunk: self._get_batch(service, chunk), self._batches(ids)):
            answers.update(found)
        messages, failures, _ = self._parse(ids, answers)
        return messages, failures

    def _read_until(
        self, service: Any, pool: ThreadPoolExecutor, ids: Sequence[str], floor: int
    ) -> tuple[list[RemoteMessage], list[Failure], str | None]:
        """Read newest-first ids in rounds of batches (one, then `max_in_flight` at once);
        stop after the first batch that reaches below `floor`, and name the first id it read
        below it (else None: the window may go on). Gmail lists by internalDate, newest first,
        so nothing after that batch is newer."""
        messages: list[RemoteMessage] = []
        failures: list[Failure] = []
        batches = self._batches(ids)
        start, width = 0, 1
        while start < len(batches):
            group = batches[start : start + width]
            results = list(pool.map(lambda chunk: self._get_batch(service, chunk), group))
            for chunk, answers in zip(group, results, strict=True):
                found, failed, _ = self._parse(chunk, answers)
                failures += failed
                messages += [
                    m for m in found if m.provider_date is None or _ms(m.provider_date) >= floor
                ]
                for mid in chunk:
                    stamp = str((answers.get(mid) or {}).get("internalDate") or "")
                    if stamp.isdigit() and int(stamp) < floor:
                        return messages, failures, mid
            start += width
            width = max(1, self.quota.max_in_flight)
        return messages, failures, None
