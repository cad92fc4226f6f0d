"""The pure judgement of re-evaluation: what a kept message is due under a directory, what
must change to get there, and the address keys that find it. No database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.activities import facts
from app.activities.inference import Directory
from app.activities.rederive import Copy, Due, Held, Kept, due_of, plan
from connectors.base import Address
from tests.factories import message

ANA, BOB = 1, 2
T0 = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
IMAP = (10, "imap")


def directory(*, aliases: tuple[str, ...] = (), domains: tuple[str, ...] = ("acme.example",)):
    users = {"ana@acme.example": ANA, "bob@acme.example": BOB}
    users.update(dict.fromkeys(aliases, ANA))
    return Directory(frozenset(domains), users)


def kept(sender: str, to: tuple[str, ...], *, bcc: tuple[str, ...] = (), dated: bool = True):
    remote = message(sender, to, bcc=bcc, date=T0 if dated else None)
    return Kept("k", facts.facts_of(remote), remote.subject, remote.date)


def inbox(owner: int, provider_date: datetime | None = None) -> Copy:
    return Copy(owner, False, provider_date, IMAP)


def sent(owner: int, provider_date: datetime | None = None) -> Copy:
    return Copy(owner, True, provider_date, IMAP)


CASES = [
    # (what, message, copies, directory, {(user, type): linked addresses})
    (
        "sent from an alias nobody knew: nothing",
        kept("ana.s@acme.example", ("joe@northwind.example",)),
        [sent(ANA)],
        directory(),
        {},
    ),
    (
        "the same once the alias is hers",
        kept("ana.s@acme.example", ("joe@northwind.example",)),
        [sent(ANA)],
        directory(aliases=("ana.s@acme.example",)),
        {(ANA, "email_sent"): {"joe@northwind.example"}},
    ),
    (
        "a recipient who became internal is no contact",
        kept("ana@acme.example", ("joe@northwind.example", "pat@partner.example")),
        [sent(ANA)],
        directory(domains=("acme.example", "partner.example")),
        {(ANA, "email_sent"): {"joe@northwind.example"}},
    ),
    (
        "received by a colleague who became a user, in nobody's mailbox of his",
        kept("joe@northwind.example", ("bob@acme.example",)),
        [inbox(ANA)],
        directory(),
        {
            (ANA, "email_received"): {"joe@northwind.example"},
            (BOB, "email_received"): {"joe@northwind.example"},
        },
    ),
    (
        "a sender who became internal: nothing counts",
        kept("pat@partner.example", ("ana@acme.example",)),
        [inbox(ANA)],
        directory(domains=("acme.example", "partner.example")),
        {},
    ),
    (
        "Bcc known to the sender's copy links the other copies' activity too",
        kept("ana@acme.example", ("bob@acme.example",), bcc=("joe@northwind.example",)),
        [inbox(BOB), sent(ANA)],
        directory(),
        {(ANA, "email_sent"): {"joe@northwind.example"}},
    ),
]


@pytest.mark.parametrize(
    ("what", "kept_message", "copies", "where", "expected"), CASES, ids=[c[0] for c in CASES]
)
def test_due_of(
    what: str,
    kept_message: Kept,
    copies: list[Copy],
    where: Directory,
    expected: dict[tuple[int, str], set[str]],
) -> None:
    found = due_of(kept_message, copies, where)
    assert {
        (user, kind): {p.email for p in due.contacts} for (_, user, kind), due in found.items()
    } == expected
    assert all(due.occurred_at == T0 for due in found.values())


def test_an_undated_message_is_dated_by_its_earliest_copy_that_counts() -> None:
    undated = kept("joe@northwind.example", ("ana@acme.example",), dated=False)
    copies = [inbox(ANA, T0 + timedelta(hours=5)), inbox(BOB, T0)]
    # bob is no recipient: his copy still counts for him (his own mailbox), and dates both
    found = due_of(undated, copies, directory())
    assert {due.occurred_at for due in found.values()} == {T0}
    assert due_of(undated, copies[:1], directory())[("k", ANA, "email_received")].occurred_at == (
        T0 + timedelta(hours=5)
    )


def held(pk: int, user: int, kind: str, contacts: set[str], at: datetime = T0) -> Held:
    return Held(pk, user, kind, at, "Proposal", frozenset(contacts))


def due(contacts: tuple[str, ...], at: datetime = T0) -> Due:
    return Due(at, "Proposal", tuple(Address(c) for c in contacts), IMAP)


PLANS = [
    # (what, due, held, (added, moved, linked, unlinked, deleted))
    ("nothing stored, one due", {("k", ANA, "email_sent"): due(("a@x.example",))}, {},
     ({("k", ANA, "email_sent")}, [], {}, [], [])),
    ("stored and due alike: nothing to do", {("k", ANA, "email_sent"): due(("a@x.example",))},
     {("k", ANA, "email_sent"): held(7, ANA, "email_sent", {"a@x.example"})},
     (set(), [], {}, [], [])),
    ("a contact more and one less",
     {("k", ANA, "email_sent"): due(("a@x.example", "b@y.example"))},
     {("k", ANA, "email_sent"): held(7, ANA, "email_sent", {"a@x.example", "c@z.example"})},
     (set(), [], {("k", ANA, "email_sent"): ["b@y.example"]}, [(7, "c@z.example")], [])),
    ("no longer due", {}, {("k", ANA, "email_received"): held(8, ANA, "email_received", set())},
     (set(), [], {}, [], [8])),
    ("dated again by another copy",
     {("k", ANA, "email_received"): due((), T0)},
     {("k", ANA, "email_received"): held(9, ANA, "email_received", set(), T0 + timedelta(1))},
     (set(), [9], {}, [], [])),
]  # fmt: skip


@pytest.mark.parametrize(("what", "wanted", "stored", "expected"), PLANS, ids=[p[0] for p in PLANS])
def test_plan(
    what: str,
    wanted: dict[tuple[str, int, str], Due],
    stored: dict[tuple[str, int, str], Held],
    expected: tuple[set[object], list[int], dict[object, list[str]], list[object], list[int]],
) -> None:
    result = plan(wanted, stored)
    added, moved, linked, unlinked, deleted = expected
    assert set(result.add) == added
    assert [h.id for h, _ in result.move] == moved
    assert {k: [a.email for a in v] for k, v in result.link.items()} == linked
    assert result.unlink == unlinked
    assert [h.id for h in result.delete] == deleted


@pytest.mark.parametrize(
    ("email", "key"),
    [
        ("phillip.allen@enron.com", "com.enron@phillip.allen"),
        ("Tom@EU.Acme.Example", "example.acme.eu@tom"),
        ("odd@local@host.example", "example.host@odd@local"),
    ],
)
def test_address_keys_put_the_domain_first(email: str, key: str) -> None:
    assert facts.address_key(email) == key


def test_a_domains_ranges_hold_its_addresses_and_its_subdomains_only() -> None:
    ranges = facts.domain_ranges("Acme.Example.")

    def inside(email: str) -> bool:
        key = facts.address_key(email)
        return any(low <= key < high for low, high in ranges)

    assert inside("ana@acme.example") and inside("tom@eu.acme.example")
    assert not inside("joe@notacme.example") and not inside("joe@acme.example.org")
    assert not inside("joe@example") and not inside("x@bacme.example")


def test_facts_keep_roles_and_names_and_grow_by_bcc() -> None:
    remote = message(
        "Ana <ana@acme.example>", ("joe@northwind.example",), cc=("Kim <kim@g.example>",)
    )
    kept_facts = facts.facts_of(remote)
    assert kept_facts == {
        "from": ["ana@acme.example", "Ana"],
        "to": [["joe@northwind.example"]],
        "cc": [["kim@g.example", "Kim"]],
    }
    assert facts.with_bcc(kept_facts, ()) is None
    grown = facts.with_bcc(kept_facts, (Address("lee@x.example"),))
    assert grown is not None and grown["bcc"] == [["lee@x.example"]]
    assert facts.with_bcc(grown, (Address("lee@x.example"),)) is None
    assert facts.addresses(grown) == {
        "ana@acme.example",
        "joe@northwind.example",
        "kim@g.example",
        "lee@x.example",
    }
