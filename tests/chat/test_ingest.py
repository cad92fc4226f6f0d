"""app.chat.service.ingest and app.chat.forget on both databases: messages stored once,
removed ones no longer counting, conversations re-derived around the changed ones,
activities, links, rollups, contacts and companies exactly as §11 says whatever order and
batching the messages and their removals come in."""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.activities.models import Activity
from app.chat import forget as removal
from app.chat import service
from app.chat.models import ChatChannel, ChatMessageRow, ChatParticipant
from app.chat.schemas import ChatSettingsBody
from app.contacts.models import Contact
from app.db import Database, session_scope
from app.models import User
from tests.chat.world import JOE, SUE, T0, ChatOrg, make_chat_org, message, snapshot


@pytest.fixture
def session(database: Database) -> Iterator[Session]:
    with session_scope() as session:
        yield session


@pytest.fixture
def org(session: Session) -> ChatOrg:
    return make_chat_org(session)


def ingest(session: Session, org: ChatOrg, *messages: tuple[str, str | None, float], **kw: object):  # type: ignore[no-untyped-def]
    return service.ingest(
        session,
        org.id,
        source=str(kw.get("source", "whatsapp")),
        channel_id=str(kw.get("channel", "c1")),
        messages=[message(*m) for m in messages],
        participants=list(kw.get("participants", ())),  # type: ignore[call-overload]
    )


def forget(session: Session, org: ChatOrg, *ids: str, channel: str = "c1") -> tuple[int, ...]:
    result = removal.forget(
        session, org.id, source="whatsapp", channel_id=channel, message_ids=list(ids)
    )
    return (
        result.stored,
        result.duplicates,
        result.activities_added,
        result.activities_removed,
        result.activities_moved,
    )


def chats(session: Session, org: ChatOrg) -> list[tuple[int, float, list[str]]]:
    """(user, minutes after T0, linked external writers) of every activity."""
    return [
        (user, (at - T0) / timedelta(minutes=1), contacts)
        for user, _, at, _, contacts in snapshot(session, org.id)["activities"]
    ]


def test_a_conversation_makes_one_activity_per_writing_user_linked_to_outsiders(
    session: Session, org: ChatOrg
) -> None:
    result = ingest(
        session,
        org,
        ("1", JOE, 0),
        ("2", "ana@acme.example", 5),
        ("3", "Bob@Acme.Example", 6),
        ("4", SUE, 7),
        participants=["kim@acme.example", "carl@northwind.example"],  # they only read
    )
    assert (result.stored, result.duplicates, result.activities_added) == (4, 0, 2)
    assert chats(session, org) == [(org.ana, 0, [JOE, SUE]), (org.bob, 0, [JOE, SUE])]
    seen = snapshot(session, org.id)
    assert seen["contacts"] == [JOE, SUE]  # not carl, who never wrote
    assert seen["companies"] == ["northwind.example", "southwind.example"]
    assert [a[1] for a in seen["activities"]] == ["chat_conversation"] * 2
    assert seen["activities"][0][3] == f"Chat (whatsapp) with {JOE}, {SUE}"
    assert seen["days"] == [
        (org.ana, T0.date(), "chat_conversation", 1),
        (org.bob, T0.date(), "chat_conversation", 1),
    ]
    listed = set(session.scalars(select(ChatParticipant.address)))
    assert listed == {
        "kim@acme.example",
        "carl@northwind.example",
        JOE,
        SUE,
        "ana@acme.example",
        "bob@acme.example",
    }


def test_no_text_is_kept() -> None:
    columns = set(ChatMessageRow.__table__.columns.keys())
    assert columns == {"id", "channel_pk", "message_id", "sender", "sent_at", "text_length"}


def test_the_same_messages_again_change_nothing(session: Session, org: ChatOrg) -> None:
    ingest(session, org, ("1", JOE, 0), ("2", "ana@acme.example", 5))
    before = snapshot(session, org.id)
    # again, with other content: a different sender and time change nothing (identity)
    again = ingest(session, org, ("1", JOE, 0), ("2", "bob@acme.example", 500))
    assert (again.stored, again.duplicates, again.activities_added) == (0, 2, 0)
    assert snapshot(session, org.id) == before
    assert session.scalar(select(func.count()).select_from(ChatMessageRow)) == 2


def test_the_same_id_in_another_channel_or_source_is_another_message(
    session: Session, org: ChatOrg
) -> None:
    ingest(session, org, ("1", JOE, 0), ("2", "ana@acme.example", 5))
    ingest(session, org, ("1", JOE, 0), ("2", "ana@acme.example", 5), channel="c2")
    ingest(session, org, ("1", JOE, 0), ("2", "ana@acme.example", 5), source="crisp")
    assert chats(session, org) == [(org.ana, 0, [JOE])] * 3


def test_a_late_message_joins_two_conversations(session: Session, org: ChatOrg) -> None:
    ingest(session, org, ("1", "ana@acme.example", 0), ("2", JOE, 10))
    ingest(session, org, ("4", SUE, 400), ("5", "bob@acme.example", 410))
    assert chats(session, org) == [(org.ana, 0, [JOE]), (org.bob, 400, [SUE])]
    joined = ingest(session, org, ("3", None, 200))  # an unmappable sender still bridges
    assert (joined.activities_added, joined.activities_removed) == (1, 1)
    assert joined.activities_moved == 1  # ana's keeps its time, gains sue
    assert chats(session, org) == [(org.ana, 0, [JOE, SUE]), (org.bob, 0, [JOE, SUE])]


def test_a_late_earlier_message_moves_the_start(session: Session, org: ChatOrg) -> None:
    ingest(session, org, ("2", "ana@acme.example", 100), ("3", JOE, 110))
    ingest(session, org, ("1", SUE, 0))
    assert chats(session, org) == [(org.ana, 0, [JOE, SUE])]
    assert snapshot(session, org.id)["days"] == [(org.ana, T0.date(), "chat_conversation", 1)]


def test_nothing_until_someone_external_writes(session: Session, org: ChatOrg) -> None:
    ingest(session, org, ("1", "ana@acme.example", 0), ("2", "kim@acme.example", 1))
    assert chats(session, org) == []
    assert snapshot(session, org.id)["contacts"] == []
    ingest(session, org, ("3", JOE, 100))
    assert chats(session, org) == [(org.ana, 0, [JOE])]


def test_a_new_gap_derives_everything_again(session: Session, org: ChatOrg) -> None:
    ingest(session, org, ("1", "ana@acme.example", 0), ("2", JOE, 100))
    assert chats(session, org) == [(org.ana, 0, [JOE])]
    caller = session.get_one(User, org.ana)
    caller.role = "admin"
    service.replace_settings(session, caller, ChatSettingsBody(gap_minutes=100))
    assert chats(session, org) == []  # exactly the gap splits
    assert snapshot(session, org.id)["contacts"] == []  # nothing holds joe any more
    service.replace_settings(session, caller, ChatSettingsBody(gap_minutes=101))
    assert chats(session, org) == [(org.ana, 0, [JOE])]
    assert service.settings_of(session, org.id).gap_minutes == 101


def test_a_long_run_is_read_whole(session: Session, org: ChatOrg) -> None:
    """A run much longer than the first window read around a new message: the window
    widens until the run ends inside it."""
    chain = [(f"m{i:03}", SUE, i * 200.0) for i in range(60)]  # 200 hours, one run
    ingest(session, org, *chain[1:])
    assert chats(session, org) == []
    ingest(session, org, ("ana", "ana@acme.example", 59 * 200 + 30))
    assert chats(session, org) == [(org.ana, 200, [SUE])]
    ingest(session, org, chain[0])  # the start moves 200 hours back
    assert chats(session, org) == [(org.ana, 0, [SUE])]


def test_removing_the_only_external_message_ends_the_conversation(
    session: Session, org: ChatOrg
) -> None:
    ingest(session, org, ("1", "ana@acme.example", 0), ("2", JOE, 5), ("3", "bob@acme.example", 6))
    assert chats(session, org) == [(org.ana, 0, [JOE]), (org.bob, 0, [JOE])]
    assert forget(session, org, "2") == (0, 0, 0, 2, 0)
    assert chats(session, org) == []
    seen = snapshot(session, org.id)
    assert seen["contacts"] == []  # joe only ever wrote the removed message
    assert [d for d in seen["days"] if d[3]] == []
    assert session.scalar(select(func.count()).select_from(ChatMessageRow)) == 2
    assert JOE in set(session.scalars(select(ChatParticipant.address)))  # was in the channel


def test_removing_the_only_user_message_ends_the_conversation(
    session: Session, org: ChatOrg
) -> None:
    ingest(session, org, ("1", JOE, 0), ("2", "ana@acme.example", 5), ("3", SUE, 6))
    assert forget(session, org, "2") == (0, 0, 0, 1, 0)
    assert chats(session, org) == []


def test_removing_the_bridging_message_splits_the_conversation(
    session: Session, org: ChatOrg
) -> None:
    ingest(
        session,
        org,
        ("1", "ana@acme.example", 0),
        ("2", JOE, 10),
        ("3", None, 200),
        ("4", SUE, 400),
        ("5", "bob@acme.example", 410),
    )
    assert chats(session, org) == [(org.ana, 0, [JOE, SUE]), (org.bob, 0, [JOE, SUE])]
    # bob's moves to the second part's start (a new key); ana's keeps hers, loses sue
    assert forget(session, org, "3") == (0, 0, 1, 1, 1)
    assert chats(session, org) == [(org.ana, 0, [JOE]), (org.bob, 400, [SUE])]
    assert snapshot(session, org.id)["user_contacts"] == [(org.ana, JOE, 1), (org.bob, SUE, 1)]


def test_removing_the_first_message_moves_the_start(session: Session, org: ChatOrg) -> None:
    ingest(session, org, ("1", SUE, 0), ("2", "ana@acme.example", 100), ("3", JOE, 110))
    assert chats(session, org) == [(org.ana, 0, [JOE, SUE])]
    assert forget(session, org, "1") == (0, 0, 1, 1, 0)
    assert chats(session, org) == [(org.ana, 100, [JOE])]
    assert snapshot(session, org.id)["contacts"] == [JOE]


def test_removing_again_or_an_unknown_message_changes_nothing(
    session: Session, org: ChatOrg
) -> None:
    ingest(session, org, ("1", "ana@acme.example", 0), ("2", JOE, 5), ("3", SUE, 6))
    assert forget(session, org, "3", "3") == (0, 1, 0, 0, 1)  # once is enough in one call
    before = snapshot(session, org.id)
    assert forget(session, org, "3", "never-stored", "x" * 1000) == (0, 3, 0, 0, 0)
    assert forget(session, org, "1", channel="c2") == (0, 1, 0, 0, 0)  # another channel's
    assert snapshot(session, org.id) == before
    assert chats(session, org) == [(org.ana, 0, [JOE])]


def test_a_deleted_message_delivered_after_its_deletion_stays_deleted(
    session: Session, org: ChatOrg
) -> None:
    """A sync read the page before the deletion and commits it after: the message is gone."""
    ingest(session, org, ("1", "ana@acme.example", 0))
    assert forget(session, org, "2") == (0, 1, 0, 0, 0)  # not stored yet
    ingest(session, org, ("2", JOE, 5), ("3", SUE, 6))  # the page on its way
    assert chats(session, org) == [(org.ana, 0, [SUE])]
    stored = set(session.scalars(select(ChatMessageRow.message_id)))
    assert stored == {"1", "3"}
    ingest(session, org, ("1", "ana@acme.example", 0), ("2", JOE, 5))  # and again: no
    assert chats(session, org) == [(org.ana, 0, [SUE])]


def test_removing_from_a_channel_never_seen_creates_nothing(session: Session, org: ChatOrg) -> None:
    assert forget(session, org, "1", "2", channel="c9") == (0, 2, 0, 0, 0)
    assert session.scalar(select(func.count()).select_from(ChatChannel)) == 0
    assert snapshot(session, org.id)["activities"] == []


def test_removing_from_a_long_run_reads_it_whole(session: Session, org: ChatOrg) -> None:
    chain = [(f"m{i:03}", SUE, i * 200.0) for i in range(60)]  # 200 hours, one run
    ingest(session, org, *chain, ("ana", "ana@acme.example", 59 * 200 + 30))
    assert chats(session, org) == [(org.ana, 0, [SUE])]
    assert forget(session, org, "m030") == (0, 0, 1, 1, 0)
    assert chats(session, org) == [(org.ana, 31 * 200, [SUE])]


SENDERS = ["ana@acme.example", "A.Silva@acme.example", "bob@acme.example", JOE, SUE, None]


@settings(
    max_examples=16, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    messages=st.lists(
        st.tuples(st.sampled_from(SENDERS), st.integers(0, 12).map(lambda q: q * 60.0)),
        min_size=1,
        max_size=14,
    ),
    removed=st.sets(st.integers(0, 13), max_size=7),
    seed=st.integers(0, 2**16),
)
def test_any_order_and_batching_gives_the_same_activities(
    session: Session, messages: list[tuple[str | None, float]], removed: set[int], seed: int
) -> None:
    """Minutes on a 60-minute grid with a 240 gap: runs split exactly at the gap often.
    Ingests and removals interleaved (each removal after the message's last delivery) end
    as ingesting only the messages that are left, at once."""
    items = [(f"m{i}", sender, minutes) for i, (sender, minutes) in enumerate(messages)]
    gone = sorted(f"m{i}" for i in removed if i < len(items))
    at_once = make_chat_org(session)
    ingest(session, at_once, *(m for m in items if m[0] not in gone))
    shuffled = make_chat_org(session)
    rng = random.Random(seed)
    order = items + rng.sample(items, k=len(items) // 2)  # some delivered twice
    rng.shuffle(order)
    steps: list[tuple[str, list[tuple[str, str | None, float]]]] = []
    while order:
        size = rng.randint(1, 4)
        steps.append(("ingest", order[:size]))
        order = order[size:]
    # some removed twice, one never stored; adjacent removals go in one call
    for message_id in [*gone, *rng.sample(gone, k=len(gone) // 2), "never"]:
        delivered = [
            k
            for k, (kind, batch) in enumerate(steps)
            if kind == "ingest" and any(m[0] == message_id for m in batch)
        ]
        at = rng.randint(max(delivered, default=-1) + 1, len(steps))
        steps.insert(at, ("forget", [(message_id, None, 0.0)]))
    for kind, group in itertools.groupby(steps, key=lambda step: step[0]):
        batches = [batch for _, batch in group]
        if kind == "forget":
            forget(session, shuffled, *(m[0] for batch in batches for m in batch))
        for batch in batches if kind == "ingest" else ():
            ingest(session, shuffled, *batch)
    expected, got = snapshot(session, at_once.id), snapshot(session, shuffled.id)
    users = {at_once.ana: "ana", at_once.bob: "bob", shuffled.ana: "ana", shuffled.bob: "bob"}
    for seen in (expected, got):
        seen["activities"] = [(users[a[0]], *a[1:]) for a in seen["activities"]]
        seen["days"] = [(users[d[0]], *d[1:]) for d in seen["days"]]
        seen["contact_days"] = [(users[d[0]], *d[1:]) for d in seen["contact_days"]]
        seen["user_contacts"] = [(users[d[0]], *d[1:]) for d in seen["user_contacts"]]
    assert got == expected
    assert len(session.scalars(select(Contact.id).where(Contact.org_id == shuffled.id)).all()) == (
        len(expected["contacts"])
    )
    assert session.scalar(
        select(func.count()).select_from(Activity).where(Activity.org_id == shuffled.id)
    ) == len(expected["activities"])
    left = (
        select(ChatMessageRow.message_id).join(ChatChannel).where(ChatChannel.org_id == shuffled.id)
    )
    assert sorted(session.scalars(left)) == sorted(m[0] for m in items if m[0] not in gone)
