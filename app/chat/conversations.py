"""Pure: semantics §11. A channel's messages and the organization's gap make conversations;
each conversation makes one chat_conversation for each user who wrote in it. No session, no
clock: the result depends only on which messages exist, whatever order they came in."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from app.activities.inference import Directory

# Loose on purpose: anything a directory could hold. A Slack user id ("U024BE7LH"), a phone
# number or a display name has no @ and is unmappable.
_ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
MAX_ADDRESS = 320


@dataclass(frozen=True, slots=True)
class Sent:
    """A stored message as the rules read it."""

    id: str
    sender: str | None  # a normalized address (see `address_of`), or None: unmappable
    sent_at: datetime


@dataclass(frozen=True, slots=True)
class Conversation:
    first_id: str  # the id of its first message: its identity while it keeps that start
    started_at: datetime
    users: tuple[int, ...]  # the users who wrote, sorted
    externals: tuple[str, ...]  # the external addresses that wrote, sorted


def address_of(sender: str | None) -> str | None:
    """The sender's address, trimmed and lower-cased (§1: addresses compare
    case-insensitively); None when it is no address at all."""
    if sender is None:
        return None
    text = sender.strip().lower()
    if text.startswith("mailto:"):
        text = text[len("mailto:") :]
    if len(text) > MAX_ADDRESS or not _ADDRESS.match(text):
        return None
    return text


def _utc(moment: datetime) -> datetime:
    """Python subtracts and compares two datetimes of the same zone object by wall clock
    (02:30 CEST to 02:29 CET is -1 minute, not 59): in UTC it is elapsed time."""
    return moment.astimezone(UTC)


def _order(message: Sent) -> tuple[datetime, str]:
    return _utc(message.sent_at), message.id


def distinct(messages: Iterable[Sent]) -> list[Sent]:
    """One message per id, the first delivered winning (a second delivery changes nothing),
    in time order (ties by id, so the first message of a run never depends on arrival)."""
    seen: dict[str, Sent] = {}
    for message in messages:
        seen.setdefault(message.id, message)
    return sorted(seen.values(), key=_order)


def runs(messages: Iterable[Sent], gap: timedelta) -> list[list[Sent]]:
    """Maximal runs in which each message follows the previous one by less than `gap`
    (exactly `gap` splits), in elapsed time."""
    found: list[list[Sent]] = []
    for message in distinct(messages):
        if found and _utc(message.sent_at) - _utc(found[-1][-1].sent_at) < gap:
            found[-1].append(message)
        else:
            found.append([message])
    return found


def conversation_of(run: Sequence[Sent], directory: Directory) -> Conversation | None:
    """The run as a conversation: None unless a user and an external participant wrote in it.
    A sender that is neither (an internal colleague without Tally, an unmappable id) counts
    as nobody."""
    users: set[int] = set()
    externals: set[str] = set()
    for message in run:
        if message.sender is None:
            continue
        user = directory.user_of(message.sender)
        if user is not None:
            users.add(user)
        elif not directory.is_internal(message.sender):
            externals.add(message.sender)
    if not users or not externals:
        return None
    first = run[0]
    started = _utc(first.sent_at)
    return Conversation(first.id, started, tuple(sorted(users)), tuple(sorted(externals)))


def conversations(
    messages: Iterable[Sent], directory: Directory, gap: timedelta
) -> list[Conversation]:
    """The channel's conversations, in time order."""
    found = (conversation_of(run, directory) for run in runs(messages, gap))
    return [c for c in found if c is not None]


@dataclass(frozen=True, slots=True)
class DueChat:
    """One chat_conversation due: for `user_id`, at the conversation's first message,
    linked to the external participants who wrote."""

    first_id: str
    user_id: int
    occurred_at: datetime
    externals: tuple[str, ...]


def due(found: Iterable[Conversation]) -> list[DueChat]:
    """Users who only read get nothing: only writers are in `users`."""
    return [DueChat(c.first_id, user, c.started_at, c.externals) for c in found for user in c.users]


def subject(source: str, externals: Sequence[str]) -> str:
    shown = ", ".join(externals[:3])
    more = f" and {len(externals) - 3} more" if len(externals) > 3 else ""
    return f"Chat ({source}) with {shown}{more}"
