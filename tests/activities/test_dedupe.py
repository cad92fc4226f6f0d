"""duplicate_call: the one rule that makes a call from a calendar and a phone system one call."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from app.activities import store
from app.activities.dedupe import duplicate_call
from app.contacts.models import Contact
from app.db import Database, session_scope
from app.models import Organization, User

AT = datetime(2024, 5, 14, 10, 0, tzinfo=UTC)


def _world(session: Session) -> tuple[int, int, int, int, int]:
    org = Organization(name="Acme", domains=["acme.example"], timezone="UTC")
    session.add(org)
    session.flush()
    ann = User(org_id=org.id, email="ann@acme.example", name="Ann", role="rep")
    bob = User(org_id=org.id, email="bob@acme.example", name="Bob", role="rep")
    c1 = Contact(org_id=org.id, email="c1@client.example")
    c2 = Contact(org_id=org.id, email="c2@client.example")
    session.add_all([ann, bob, c1, c2])
    session.flush()
    return org.id, ann.id, bob.id, c1.id, c2.id


def _call(
    session: Session,
    org_id: int,
    user_id: int,
    at: datetime,
    contacts: list[int],
    *,
    kind: str = "call",
    key: str | None = None,
) -> int:
    key = key or uuid.uuid4().hex
    row = {"user_id": user_id, "type": kind, "occurred_at": at, "source_key": key}
    row["provider"] = "caldav"
    added = store.add(session, org_id, [row], {(key, user_id, kind): contacts})
    return added.inserted[0]


def test_same_user_and_contact_within_five_minutes(database: Database) -> None:
    with session_scope() as session:
        org, ann, bob, c1, c2 = _world(session)
        existing = _call(session, org, ann, AT, [c1, c2])
        for delta in (0, -300, 300, 120):
            at = AT + timedelta(seconds=delta)
            assert duplicate_call(session, org, ann, [c2], at) == existing, delta
        assert duplicate_call(session, org, ann, [c1], AT + timedelta(seconds=301)) is None
        assert duplicate_call(session, org, ann, [c1], AT - timedelta(minutes=6)) is None
        assert duplicate_call(session, org, bob, [c1], AT) is None  # another user
        assert duplicate_call(session, org, ann, [c1 + c2 + 100], AT) is None  # another contact
        assert duplicate_call(session, org + 1, ann, [c1], AT) is None  # another organization


def test_no_contact_means_no_merge(database: Database) -> None:
    with session_scope() as session:
        org, ann, _bob, c1, _c2 = _world(session)
        _call(session, org, ann, AT, [c1])
        _call(session, org, ann, AT, [])
        assert duplicate_call(session, org, ann, [], AT) is None


def test_only_calls_count_and_the_closest_wins(database: Database) -> None:
    with session_scope() as session:
        org, ann, _bob, c1, _c2 = _world(session)
        _call(session, org, ann, AT, [c1], kind="meeting_held")
        assert duplicate_call(session, org, ann, [c1], AT) is None
        _call(session, org, ann, AT - timedelta(minutes=4), [c1])
        closest = _call(session, org, ann, AT + timedelta(minutes=1), [c1])
        assert duplicate_call(session, org, ann, [c1], AT) == closest


def test_the_callers_own_activity_can_be_left_out(database: Database) -> None:
    with session_scope() as session:
        org, ann, _bob, c1, _c2 = _world(session)
        mine = _call(session, org, ann, AT, [c1], key="k" * 64)
        assert duplicate_call(session, org, ann, [c1], AT) == mine
        assert duplicate_call(session, org, ann, [c1], AT, exclude_source_key="k" * 64) is None
