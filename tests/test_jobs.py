"""Per-organization job leases (app/jobs.py): one process runs a job for an organization at a
time, a process taken over writes nothing, and a change asks for a run once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from app import jobs
from app.db import Database, session_scope
from app.models import Organization, OrgJob

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
LEASE = timedelta(seconds=60)
EVERY = timedelta(minutes=15)


def make_orgs(count: int) -> list[int]:
    with session_scope() as session:
        orgs = [Organization(name=f"org {n}", timezone="UTC") for n in range(count)]
        session.add_all(orgs)
        session.flush()
        return [o.id for o in orgs]


def row(org_id: int, job: str = "alerts") -> OrgJob:
    with session_scope() as session:
        found = session.scalars(
            select(OrgJob).where(OrgJob.org_id == org_id, OrgJob.job == job)
        ).one()
        session.expunge(found)
        return found


def test_an_organization_is_leased_by_one_process_at_a_time(database: Database) -> None:
    first, second = make_orgs(2)
    with session_scope() as session:
        assert jobs.due_orgs(session, "alerts", now=T0, every=EVERY) == [first, second]
        taken = jobs.claim(session, "alerts", [first, second], now=T0, lease=LEASE, owner="a")
    assert [(t.org_id, t.owner) for t in taken] == [(first, "a"), (second, "a")]
    with session_scope() as session:
        # a second process ticking at the same moment finds nothing free
        assert jobs.claim(session, "alerts", [first, second], now=T0, lease=LEASE, owner="b") == []
        # another job of the same organizations has leases of its own
        assert len(jobs.claim(session, "webhooks", [first], now=T0, lease=LEASE, owner="b")) == 1


def test_a_process_taken_over_writes_nothing(database: Database) -> None:
    (org_id,) = make_orgs(1)
    with session_scope() as session:
        (stalled,) = jobs.claim(session, "alerts", [org_id], now=T0, lease=LEASE, owner="a")
    later = T0 + LEASE + timedelta(seconds=1)  # "a" stalled past its lease
    with session_scope() as session:
        (taker,) = jobs.claim(session, "alerts", [org_id], now=later, lease=LEASE, owner="b")
    assert taker.epoch == stalled.epoch + 1
    with pytest.raises(jobs.LeaseLost), session_scope() as session:
        jobs.fence(session, stalled, now=later, renew=LEASE)
    with pytest.raises(jobs.LeaseLost), session_scope() as session:
        jobs.release(session, stalled, now=later)
    with session_scope() as session:
        jobs.fence(session, taker, now=later, renew=LEASE)
        jobs.release(session, taker, now=later)
    done = row(org_id)
    assert (done.lease_owner, done.lease_until, done.last_run_at) == (None, None, later)


def test_a_run_is_due_when_asked_for_or_when_the_last_is_old(database: Database) -> None:
    quiet, changed = make_orgs(2)
    with session_scope() as session:
        for lease in jobs.claim(session, "alerts", [quiet, changed], now=T0, lease=LEASE):
            jobs.release(session, lease, now=T0)
    soon = T0 + timedelta(minutes=1)
    with session_scope() as session:
        assert jobs.due_orgs(session, "alerts", now=soon, every=EVERY) == []
        jobs.mark_due(session, changed, "alerts", at=soon)
    with session_scope() as session:
        assert jobs.due_orgs(session, "alerts", now=soon, every=EVERY) == [changed]
    # a later change leaves the earlier due time; an earlier one moves it forward
    with session_scope() as session:
        jobs.mark_due(session, changed, "alerts", at=soon + timedelta(seconds=30))
    assert row(changed).due_at == soon
    with session_scope() as session:
        jobs.mark_due(session, changed, "alerts", at=soon - timedelta(seconds=30))
    assert row(changed).due_at == soon - timedelta(seconds=30)
    # the claim clears the mark: a change made during the run asks for another
    with session_scope() as session:
        (lease,) = jobs.claim(session, "alerts", [changed], now=soon, lease=LEASE)
    assert row(changed).due_at is None
    with session_scope() as session:
        jobs.release(session, lease, now=T0)
    with session_scope() as session:
        # fifteen minutes after its last run, a quiet organization is evaluated again
        old = T0 + EVERY
        assert jobs.due_orgs(session, "alerts", now=old - timedelta(seconds=1), every=EVERY) == []
        assert jobs.due_orgs(session, "alerts", now=old, every=EVERY) == [quiet, changed]
