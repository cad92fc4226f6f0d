"""Outlook mail through Microsoft Graph delta queries, one delta round per folder.

Per folder (Inbox and Sent Items by default, by their well-known names) the connector follows
`/me/mailFolders/{folder}/messages/delta` with `$select` of the metadata inference needs, so
the delta pages *are* the data (no per-message request), with `Prefer: IdType="ImmutableId"`
(a message keeps its id when it moves between folders) and `odata.maxpagesize`. The first
round is bounded by `receivedDateTime ge <window start>`; Graph encodes every option in the
links.

The cursor is JSON: {"v": 1, "folders": {folder: link}, "push": {folder: subscription},
"select": "headers" | "basic", "covered": {folder: time}, "gaps": {folder: gap}}. A
folder's link is the latest `@odata.nextLink` (mid-round: a resumed pull continues the round)
or `@odata.deltaLink` (round done: the next pull gets the changes), stored with the page it
follows, so a crash repeats at most one page. A 410 / SyncStateNotFound restarts that
folder's round from scratch; the repeated messages are ignored by ingest (observations are
keyed on the immutable id), so nothing is duplicated.

The window starts at the earlier of `since` and `history_from` (a window widened later,
connectors.base.WidensHistory). A delta round cannot reach back further than the floor its
links hold, so the older stretch is read apart: `covered` is where each folder's history
starts (the floor of its round; a cursor from before it was recorded is taken to start at
`since`, which it does at the latest), and a window starting earlier opens a gap,
{"from", "before", "link"}: the folder's messages received in [from, before), listed with
`GET /me/mailFolders/{folder}/messages` (gaps.py) after the folders' changes, its nextLink
stored with each page so an interrupted gap resumes. A new round (the first, or after a 410)
starts from the window's start, and so needs no gap.

What Graph gives for automated-mail detection (semantics §2): with Mail.Read
(`read_headers`, the default) the `$select` names `internetMessageHeaders`, so the delta pages
carry each received message's headers and the header rules (Auto-Submitted, Precedence,
List-*, X-Auto…, a multipart/report Content-Type) apply as on IMAP; a received message that
came without them has them read in JSON batches (headers.py). The links hold the `$select`,
so a cursor made with the other one ("select") starts its rounds again. With Mail.ReadBasic
(`read_headers=False`) Graph gives no header: only the sender-address rule (no-reply and
system mailboxes) applies, the connection's known deviation (auth.READ_BASIC_DEVIATION).
Meeting requests, responses and cancellations are recognised by their type
(`eventMessage…`) and become calendar traffic. `inferenceClassification` ("focused"/"other")
is Outlook's guess at importance, not an automation signal, and is not used. Drafts are
skipped (not observed, so a draft that is later sent is read then); `@removed` entries
(deleted, or moved out of the folder) change nothing: an activity, once counted, stays.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

from connectors.base import (
    Address,
    CursorExpired,
    Failure,
    FolderRole,
    Page,
    RemoteMessage,
    dump_cursor,
    iso_moment,
)
from connectors.microsoft import gaps, push
from connectors.microsoft.gaps import stamp, utc
from connectors.microsoft.headers import FIELD, classifying, read_headers, wanting
from connectors.microsoft.http import GraphClient, GraphConnector, SyncStateGone, delta_pages

SELECT = (
    "id,internetMessageId,subject,from,toRecipients,ccRecipients,bccRecipients,"
    "receivedDateTime,sentDateTime,isDraft,parentFolderId"
)
ROLES: dict[str, FolderRole] = {"inbox": "inbox", "sentitems": "sent"}
# meeting messages: an invitation, a response to one, or (the base type) a cancellation
_MEETING_TYPES = {
    "#microsoft.graph.eventMessageRequest": "REQUEST",
    "#microsoft.graph.eventMessageResponse": "REPLY",
    "#microsoft.graph.eventMessage": "CANCEL",
}
_NUL = "\x00"


def graph_text(value: object) -> str:
    return str(value or "").replace(_NUL, "")


def graph_address(value: object) -> Address | None:
    """A Graph recipient ({"emailAddress": {"name", "address"}}) -> Address; None for entries
    without an SMTP address (an Exchange legacy DN, an empty group)."""
    if not isinstance(value, dict):
        return None
    inner = value.get("emailAddress")
    if not isinstance(inner, dict):
        return None
    email = graph_text(inner.get("address")).strip().lower()
    if "@" not in email or email.startswith("/"):
        return None
    name = graph_text(inner.get("name")).strip()
    return Address(email, name if name and name.lower() != email else None)


def _addresses(values: object) -> tuple[Address, ...]:
    if not isinstance(values, list):
        return ()
    return tuple(a for a in (graph_address(v) for v in values) if a is not None)


def to_message(item: dict[str, Any], role: FolderRole) -> RemoteMessage:
    """One delta entry (not removed, not a draft) -> RemoteMessage; ValueError if unreadable."""
    source_id = item.get("id")
    if not isinstance(source_id, str) or not source_id:
        raise ValueError("no id")
    message_id = graph_text(item.get("internetMessageId")).strip().strip("<>").strip() or None
    sent = iso_moment(item.get("sentDateTime"))
    headers, mime = classifying(item.get(FIELD))
    return RemoteMessage(
        source_id=source_id,
        folder_role=role,
        message_id=message_id,
        date=sent,
        date_header=graph_text(item.get("sentDateTime")),
        provider_date=iso_moment(item.get("receivedDateTime")) or sent,
        subject=graph_text(item.get("subject")),
        sender=graph_address(item.get("from")),
        to=_addresses(item.get("toRecipients")),
        cc=_addresses(item.get("ccRecipients")),
        bcc=_addresses(item.get("bccRecipients")),
        headers=headers,
        content_type=mime or "text/plain",
        calendar_method=_MEETING_TYPES.get(str(item.get("@odata.type", ""))),
    )


def read_page(
    items: Sequence[Any], role: FolderRole
) -> tuple[tuple[RemoteMessage, ...], tuple[Failure, ...]]:
    messages: list[RemoteMessage] = []
    failures: list[Failure] = []
    for item in items:
        if not isinstance(item, dict) or "@removed" in item or item.get("isDraft") is True:
            continue
        try:
            messages.append(to_message(item, role))
        except (ValueError, TypeError) as error:
            source = str(item.get("id") or "?")
            failures.append(Failure(source, f"unreadable Graph message: {error}"))
    return tuple(messages), tuple(failures)


def _load(cursor: str | None) -> dict[str, Any]:
    if cursor is None:
        return {"v": 1, "folders": {}, "push": {}, "select": None, "covered": {}, "gaps": {}}
    try:
        data = json.loads(cursor)
        if data.get("v") != 1 or not isinstance(data.get("folders"), dict):
            raise ValueError("unknown cursor version")
    except (ValueError, AttributeError) as error:
        raise CursorExpired(f"unreadable Graph mail cursor: {type(error).__name__}") from error
    data.setdefault("push", {})
    data.setdefault("select", "basic")  # cursors from before the headers were asked for
    data.setdefault("covered", {})  # cursors from before a window could be widened
    data.setdefault("gaps", {})
    if not isinstance(data["covered"], dict) or not isinstance(data["gaps"], dict):
        raise CursorExpired("unreadable Graph mail cursor: bad covered or gaps")
    return dict(data)


class GraphMailConnector(GraphConnector):
    name: ClassVar[str] = "microsoft_mail"

    def __init__(
        self,
        client: GraphClient,
        *,
        folders: Sequence[str] = ("inbox", "sentitems"),
        page_size: int = 250,
        push_target: push.PushTarget | None = None,
        read_headers: bool = True,
        own_domains: Sequence[str] = (),
    ) -> None:
        self.client = client
        self.folders = list(dict.fromkeys(folders))
        self.page_size = page_size
        self.push_target = push_target
        self.read_headers = read_headers
        self.own_domains = frozenset(d.lower() for d in own_domains)
        self.header_reads = 0  # messages whose headers were read apart from their page

    def __repr__(self) -> str:
        return f"GraphMailConnector(folders={self.folders!r}, read_headers={self.read_headers})"

    @property
    def select(self) -> str:
        return f"{SELECT},{FIELD}" if self.read_headers else SELECT

    @property
    def prefer(self) -> dict[str, str]:
        return {"Prefer": f'IdType="ImmutableId", odata.maxpagesize={self.page_size}'}

    def _pull(
        self, cursor: str | None, since: datetime, history_from: datetime | None
    ) -> Iterator[Page]:
        state = _load(cursor)
        mode = "headers" if self.read_headers else "basic"
        if state["select"] != mode:  # the links hold the old $select: new rounds
            state["folders"], state["select"] = {}, mode
        links: dict[str, str] = state["folders"]
        covered: dict[str, str] = state["covered"]
        floor = utc(since) if history_from is None else min(utc(since), utc(history_from))
        for folder in links:  # stored before `covered` was: its round read from `since` on
            covered.setdefault(folder, stamp(since))
        for folder in self.folders:
            role = ROLES.get(folder.lower(), "other")
            for attempt in range(2):
                try:
                    fresh = folder not in links
                    for items, link in self._round(folder, links.get(folder), floor):
                        messages, failures = self._read(items, role)
                        links[folder] = link
                        if fresh:  # the new round reads the whole window: no gap is left
                            covered[folder] = stamp(floor)
                            state["gaps"].pop(folder, None)
                        yield Page(messages=messages, failures=failures, cursor=dump_cursor(state))
                    break
                except SyncStateGone:
                    if attempt:
                        raise
                    links.pop(folder, None)  # start the folder's round again
        for folder in self.folders:
            role = ROLES.get(folder.lower(), "other")
            for items in gaps.fill(self, state, folder, floor):
                messages, failures = self._read(items, role)
                yield Page(messages=messages, failures=failures, cursor=dump_cursor(state))
        subscriptions = self._subscribe(dict(state["push"]))
        if subscriptions != state["push"]:
            state["push"] = subscriptions
            yield Page(cursor=dump_cursor(state))

    def _read(
        self, items: list[Any], role: FolderRole
    ) -> tuple[tuple[RemoteMessage, ...], tuple[Failure, ...]]:
        """A page's entries as messages, with the headers the page did not carry read."""
        if self.read_headers and role != "sent":
            self._add_headers(items)
        return read_page(items, role)

    def _add_headers(self, items: list[Any]) -> None:
        """Read the headers the page did not carry for its received messages."""
        missing = wanting(items, self.own_domains, _MEETING_TYPES)
        if not missing:
            return
        found = read_headers(self.client, missing)
        self.header_reads += len(missing)
        for item in items:
            if isinstance(item, dict) and item.get("id") in found:
                item[FIELD] = found[item["id"]]

    def _round(
        self, folder: str, link: str | None, since: datetime
    ) -> Iterator[tuple[list[Any], str]]:
        if link is not None:
            return delta_pages(self.client, link, self.prefer)
        params = {"$select": self.select, "$filter": f"receivedDateTime ge {stamp(since)}"}
        path = f"me/mailFolders/{folder}/messages/delta"
        return delta_pages(self.client, (path, params), self.prefer)

    def _subscribe(self, current: dict[str, Any]) -> dict[str, Any]:
        now = datetime.now(UTC)
        result: dict[str, Any] = {}
        for folder in self.folders:
            found = push.ensure(
                self.client,
                self.push_target,
                f"me/mailFolders('{folder}')/messages",
                current.get(folder),
                now=now,
            )
            if found is not None:
                result[folder] = found
        return result
