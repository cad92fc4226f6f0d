"""Pure: what a message keeps for inference to run again, and the keys that find it by address.

A message whose meaning depends on the directory (who is a user, what is internal) keeps its
addresses by role with their display names (`messages.facts`); its subject and date are
columns already, and each copy keeps its folder role and, for an undated message, its
provider date (`observations.sent`, `observations.provider_date`). Automated mail, calendar
traffic and mail without a sender mean nothing whatever the directory says, so they keep
nothing (their observation says why they were filtered). Bodies are never kept.

Facts, as JSON: `{"from": [email, name?], "to": [[email, name?], …], "cc": …, "bcc": …,
"undated": true}`, empty lists and `undated: false` left out. Bcc is the union of what the
copies knew (only the sender's copy names them): inference per copy and then the union of
the results is the same as inference with the union, see docs/reevaluation.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from connectors.base import Address, FolderRole, RemoteMessage

Facts = dict[str, Any]
ROLES = ("to", "cc", "bcc")


def _pair(address: Address) -> list[str]:
    return [address.email, address.name] if address.name else [address.email]


def _address(pair: Sequence[str]) -> Address:
    return Address(pair[0], pair[1] if len(pair) > 1 else None)


def kept(kind: str, message: RemoteMessage) -> bool:
    """Whether a message inferred as `kind` can mean something else under another directory:
    written by a person (not automated), not calendar traffic, with a sender. Only then are
    its facts worth keeping."""
    return kind in ("email", "internal", "unrelated") and message.sender is not None


def facts_of(message: RemoteMessage) -> Facts:
    assert message.sender is not None
    facts: Facts = {"from": _pair(message.sender)}
    for role in ROLES:
        people = getattr(message, role)
        if people:
            facts[role] = [_pair(a) for a in people]
    if message.date is None:
        facts["undated"] = True
    return facts


def with_bcc(facts: Facts, bcc: Iterable[Address]) -> Facts | None:
    """The facts with these Bcc recipients added, or None when they add nobody."""
    known = {pair[0] for pair in facts.get("bcc", ())}
    new = [_pair(a) for a in bcc if a.email not in known]
    if not new:
        return None
    return {**facts, "bcc": [*facts.get("bcc", ()), *new]}


def addresses(facts: Facts) -> set[str]:
    """Every address the message names, in any role."""
    found = {facts["from"][0]}
    for role in ROLES:
        found.update(pair[0] for pair in facts.get(role, ()))
    return found


def copy_message(
    facts: Facts,
    *,
    subject: str,
    date: datetime | None,
    provider_date: datetime | None,
    sent: bool,
) -> RemoteMessage:
    """One copy of a kept message as a connector would have handed it over, for inference:
    what inference reads (addresses, folder role, dates) is what the message had."""
    role: FolderRole = "sent" if sent else "inbox"
    return RemoteMessage(
        source_id="",
        folder_role=role,
        message_id=None,
        date=None if facts.get("undated") else date,
        date_header="",
        provider_date=provider_date,
        subject=subject,
        sender=_address(facts["from"]),
        to=tuple(_address(p) for p in facts.get("to", ())),
        cc=tuple(_address(p) for p in facts.get("cc", ())),
        bcc=tuple(_address(p) for p in facts.get("bcc", ())),
    )


# -- address keys ---------------------------------------------------------------------------


def address_key(email: str) -> str:
    """`phillip.allen@enron.com` -> `com.enron@phillip.allen`: the domain's labels reversed
    first, so every address at a domain and at its subdomains shares a prefix."""
    local, _, domain = email.lower().rpartition("@")
    return ".".join(reversed(domain.split("."))) + "@" + local


def domain_ranges(domain: str) -> list[tuple[str, str]]:
    """The key ranges [low, high) of the addresses at `domain` (`…@`) and at its subdomains
    (`….`), for a byte-wise ordered index: the high end is the prefix with its last
    character moved one up."""
    reversed_domain = ".".join(reversed(domain.lower().strip(".").split(".")))
    ranges = []
    for separator in ("@", "."):
        prefix = reversed_domain + separator
        ranges.append((prefix, prefix[:-1] + chr(ord(separator) + 1)))
    return ranges
