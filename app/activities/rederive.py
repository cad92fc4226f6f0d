"""Pure: what a kept message is due under a directory, and what must change to get there.

`due_of` runs inference (`infer_email`, the same rules ingest applies) on every copy of one
message as its facts and the copy's folder role and owner describe it, and unites the
results as ingest does copy after copy: an activity is due once per (message, user, type),
linked to every external person any copy links it to, at the message's Date or, without
one, at the earliest provider date of the copies that count. `plan` compares that with
what is stored and says what to add, move, link, unlink and delete. No session, no clock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from app.activities import facts as message_facts
from app.activities.inference import Directory, infer_email
from app.models import ActivityType
from connectors.base import Address

Ident = tuple[str, int, str]  # (message key hash, user id, activity type)


@dataclass(frozen=True, slots=True)
class Copy:
    """One mailbox's copy of a kept message, as its observation records it."""

    owner_id: int  # the mailbox's user
    sent: bool  # in the sent folder
    provider_date: datetime | None  # kept only for undated messages
    source: tuple[int, str]  # (connection id, provider): who an activity is credited to


@dataclass(frozen=True, slots=True)
class Kept:
    """A kept message: its key hash, facts, subject and Date (None when it has none)."""

    key: str
    facts: message_facts.Facts
    subject: str
    date: datetime | None


@dataclass(frozen=True, slots=True)
class Due:
    occurred_at: datetime
    subject: str
    contacts: tuple[Address, ...]  # external people to link, each once
    source: tuple[int, str]


@dataclass(frozen=True, slots=True)
class Held:
    """A stored activity and the addresses of the contacts it is linked to."""

    id: int
    user_id: int
    type: str
    occurred_at: datetime
    subject: str | None
    contacts: frozenset[str]


@dataclass
class Plan:
    add: dict[Ident, Due] = field(default_factory=dict)
    move: list[tuple[Held, Due]] = field(default_factory=list)  # time or subject changed
    link: dict[Ident, list[Address]] = field(default_factory=dict)  # kept ones: new links
    unlink: list[tuple[int, str]] = field(default_factory=list)  # (activity id, address)
    delete: list[Held] = field(default_factory=list)


def due_of(message: Kept, copies: Sequence[Copy], directory: Directory) -> dict[Ident, Due]:
    """The email activities one message is due from all its copies (in the order they were
    first seen: the first copy that makes an activity is credited with it)."""
    found: dict[Ident, tuple[tuple[int, str], dict[str, Address]]] = {}
    times: list[datetime] = []
    for copy in copies:
        remote = message_facts.copy_message(
            message.facts,
            subject=message.subject,
            date=message.date,
            provider_date=copy.provider_date,
            sent=copy.sent,
        )
        inferred = infer_email(remote, directory, owner_id=copy.owner_id)
        when = remote.date or remote.provider_date
        if inferred.kind != "email" or when is None:
            continue
        times.append(when)
        owners = [(inferred.sent_by, ActivityType.email_sent.value)]
        owners += [(user, ActivityType.email_received.value) for user in inferred.received_by]
        for user_id, kind in owners:
            if user_id is None:
                continue
            _, people = found.setdefault((message.key, user_id, kind), (copy.source, {}))
            for person in inferred.contacts:
                people.setdefault(person.email, person)
    if not found:
        return {}
    when = min(times)
    subject = message.subject[:2000]
    return {
        ident: Due(when, subject, tuple(people[e] for e in sorted(people)), source)
        for ident, (source, people) in found.items()
    }


def plan(due: Mapping[Ident, Due], held: Mapping[Ident, Held]) -> Plan:
    """What turns the `held` activities of some messages into the `due` ones."""
    result = Plan()
    for ident, wanted in due.items():
        stored = held.get(ident)
        if stored is None:
            result.add[ident] = wanted
            continue
        if (stored.occurred_at, stored.subject) != (wanted.occurred_at, wanted.subject):
            result.move.append((stored, wanted))
        emails = {person.email for person in wanted.contacts}
        missing = [person for person in wanted.contacts if person.email not in stored.contacts]
        if missing:
            result.link[ident] = missing
        result.unlink += [(stored.id, email) for email in sorted(stored.contacts - emails)]
    result.delete = [stored for ident, stored in held.items() if ident not in due]
    return result
