"""Semantics §11 as a table: messages of one channel -> the chat_conversation activities due.

Each case names its messages as (id, sender, minutes after T0); the directory has two users
(ana with an alias, bob), the internal domain acme.example, and outsiders at northwind."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from app.activities.inference import Directory
from app.chat.conversations import Sent, address_of, conversations, due, runs

T0 = datetime(2024, 5, 14, 9, 0, tzinfo=UTC)
GAP = timedelta(minutes=240)
ANA, BOB = 1, 2
DIRECTORY = Directory(
    internal_domains=frozenset({"acme.example"}),
    user_by_address={"ana@acme.example": ANA, "a.silva@acme.example": ANA, "bob@acme.example": BOB},
)
JOE, SUE = "joe@northwind.example", "sue@northwind.example"

Msg = tuple[str, str | None, float]


def sent(messages: list[Msg]) -> list[Sent]:
    return [Sent(i, address_of(s), T0 + timedelta(minutes=m)) for i, s, m in messages]


def derive(messages: list[Msg]) -> set[tuple[int, float, tuple[str, ...]]]:
    """(user, minutes of the activity after T0, external writers linked)."""
    found = due(conversations(sent(messages), DIRECTORY, GAP))
    return {(d.user_id, (d.occurred_at - T0) / timedelta(minutes=1), d.externals) for d in found}


CASES: list[tuple[str, list[Msg], set[tuple[int, float, tuple[str, ...]]]]] = [
    ("a user and an outsider", [("1", "ana@acme.example", 0), ("2", JOE, 5)], {(ANA, 0, (JOE,))}),
    (
        "just under the gap: one conversation",
        [("1", "ana@acme.example", 0), ("2", JOE, 239.99)],
        {(ANA, 0, (JOE,))},
    ),
    (
        "exactly the gap splits: two runs of one side each, nothing",
        [("1", "ana@acme.example", 0), ("2", JOE, 240)],
        set(),
    ),
    (
        "exactly the gap splits two conversations",
        [
            ("1", "ana@acme.example", 0),
            ("2", JOE, 10),
            ("3", JOE, 250),
            ("4", "ana@acme.example", 260),
        ],
        {(ANA, 0, (JOE,)), (ANA, 250, (JOE,))},
    ),
    (
        "just over the gap: two runs",
        [("1", "ana@acme.example", 0), ("2", JOE, 240.01)],
        set(),
    ),
    (
        "each message follows the previous by less than the gap: one long run",
        [("1", JOE, 0), ("2", JOE, 200), ("3", JOE, 400), ("4", "ana@acme.example", 600)],
        {(ANA, 0, (JOE,))},
    ),
    (
        "internal-only channel",
        [("1", "ana@acme.example", 0), ("2", "bob@acme.example", 1), ("3", "kim@acme.example", 2)],
        set(),
    ),
    ("nobody external ever writes", [("1", "ana@acme.example", 0)] * 1, set()),
    ("only outsiders write (users only read)", [("1", JOE, 0), ("2", SUE, 1)], set()),
    (
        "a user who only reads gets nothing; several writers each get one",
        [("1", JOE, 0), ("2", "ana@acme.example", 3), ("3", "bob@acme.example", 4), ("4", SUE, 5)],
        {(ANA, 0, (JOE, SUE)), (BOB, 0, (JOE, SUE))},
    ),
    (
        "a user writing many times gets one",
        [("1", "ana@acme.example", 0), ("2", JOE, 1), ("3", "ana@acme.example", 2)],
        {(ANA, 0, (JOE,))},
    ),
    (
        "an internal colleague without Tally is nobody",
        [("1", "kim@acme.example", 0), ("2", JOE, 1), ("3", "ana@acme.example", 2)],
        {(ANA, 0, (JOE,))},
    ),
    (
        "a subdomain of an internal domain is internal",
        [("1", "ops@eu.acme.example", 0), ("2", "ana@acme.example", 1)],
        set(),
    ),
    (
        "unmappable ids are nobody, but still carry the run",
        [("1", "ana@acme.example", 0), ("2", "U024BE7LH", 200), ("3", JOE, 400), ("4", None, 5)],
        {(ANA, 0, (JOE,))},
    ),
    (
        "case-insensitive addresses, an alias of a user",
        [("1", "A.Silva@ACME.example", 0), ("2", " Joe@NorthWind.Example ", 1)],
        {(ANA, 0, (JOE,))},
    ),
    (
        "a mailto: sender",
        [("1", "mailto:ana@acme.example", 0), ("2", JOE, 1)],
        {(ANA, 0, (JOE,))},
    ),
    (
        "the same message twice: the first delivery wins",
        [("1", "ana@acme.example", 0), ("2", JOE, 1), ("2", SUE, 100)],
        {(ANA, 0, (JOE,))},
    ),
    (
        "the conversation is at its first message, whoever wrote it",
        [("1", JOE, 30), ("2", "ana@acme.example", 45)],
        {(ANA, 30, (JOE,))},
    ),
    (
        "simultaneous messages: one run, started at that instant",
        [("b", JOE, 0), ("a", "ana@acme.example", 0)],
        {(ANA, 0, (JOE,))},
    ),
]


@pytest.mark.parametrize(
    ("messages", "expected"), [(m, e) for _, m, e in CASES], ids=[n for n, _, _ in CASES]
)
def test_rules(messages: list[Msg], expected: set[tuple[int, float, tuple[str, ...]]]) -> None:
    assert derive(messages) == expected


# Late messages: what the channel holds before and after one more message arrives; the
# result is what it would have been had it come in time (the rules see only the set).
LATE: list[tuple[str, list[Msg], Msg, set[tuple[int, float, tuple[str, ...]]]]] = [
    (
        "joins two runs into one conversation",
        [("1", "ana@acme.example", 0), ("3", JOE, 400)],
        ("2", "bob@acme.example", 200),
        {(ANA, 0, (JOE,)), (BOB, 0, (JOE,))},
    ),
    (
        "extends a run with a new outsider",
        [("1", "ana@acme.example", 0), ("2", JOE, 10)],
        ("3", SUE, 200),
        {(ANA, 0, (JOE, SUE))},
    ),
    (
        "moves the start earlier",
        [("2", "ana@acme.example", 100), ("3", JOE, 110)],
        ("1", SUE, 0),
        {(ANA, 0, (JOE, SUE))},
    ),
    (
        "makes a conversation of a run that had no outsider",
        [("1", "ana@acme.example", 0)],
        ("2", JOE, 30),
        {(ANA, 0, (JOE,))},
    ),
]


@pytest.mark.parametrize(
    ("held", "late", "expected"), [c[1:] for c in LATE], ids=[c[0] for c in LATE]
)
def test_a_late_message(
    held: list[Msg], late: Msg, expected: set[tuple[int, float, tuple[str, ...]]]
) -> None:
    assert derive(held) != expected
    assert derive([*held, late]) == expected
    assert derive([late, *reversed(held)]) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Joe@Northwind.Example", "joe@northwind.example"),
        ("  ana@acme.example\n", "ana@acme.example"),
        ("MAILTO:ana@acme.example", "ana@acme.example"),
        ("U024BE7LH", None),
        ("+32470123456", None),
        ("Joe Doe <joe@northwind.example>", None),
        ("joe@localhost", None),
        ("a@b@c.example", None),
        ("", None),
        (None, None),
        ("x" * 310 + "@northwind.example", None),
    ],
)
def test_address_of(raw: str | None, expected: str | None) -> None:
    assert address_of(raw) == expected


def test_runs_are_elapsed_time_whatever_the_offsets() -> None:
    """Across the night clocks go back in Paris: 02:30 CEST to 02:29 CET is 59 minutes of
    wall clock but 119 elapsed; with a 60-minute gap they are two runs."""
    first = datetime(2024, 10, 27, 2, 30, tzinfo=ZoneInfo("Europe/Paris"))  # CEST, +02:00
    second = datetime(2024, 10, 27, 3, 29, tzinfo=ZoneInfo("Europe/Paris"))  # CET, +01:00
    assert second - first == timedelta(minutes=59)  # Python: same zone object, wall clock
    messages = [Sent("1", "ana@acme.example", first), Sent("2", JOE, second)]
    assert [len(run) for run in runs(messages, timedelta(minutes=60))] == [1, 1]
    assert [len(run) for run in runs(messages, timedelta(minutes=120))] == [2]
