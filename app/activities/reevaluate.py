"""Re-evaluation: when the directory changes, the activities, links, contacts and companies
of exactly the mail and events it concerns are derived again, in the background.

A change (app/users/service.py: users and aliases added or removed, send-as addresses
learnt, internal domains changed) calls `record_change` in its own transaction: it bumps the
organization's directory version (so writers reload, app/activities/directory.py) and queues
the changed address keys and domains (`directory_changes`). The job, run by the scheduler
beside the sync tick, leases the organization's `reevaluations` row (one process at a time,
epoch fenced as a connection's sync lease) and works page by page, each page one
transaction ended by the lease check:

1. queued changes are taken: the messages and events with any of their addresses (found by
   the address indexes, never by reading the organization's mail) become items;
2. up to PAGE items are derived again under the directory as it is now (reapply.py) and
   deleted: the items left are the job's cursor, so a crash repeats at most one page;
3. progress (done/total) is written with the lease check.

When no item and no change is left, the run is finished in the same transaction. A change
made while the job runs is taken by its next page; items it re-adds are done again, under
the newer directory. docs/reevaluation.md tells the whole story.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, delete, exists, or_, select, update
from sqlalchemy.orm import Session

from app import jobs
from app.activities import directory as directories
from app.activities import reapply
from app.activities.facts import address_key, domain_ranges
from app.activities.inference import Directory
from app.activities.models import (
    DirectoryChange,
    EventAddress,
    MessageAddress,
    Reevaluation,
    ReevaluationEvent,
    ReevaluationMessage,
)
from app.contacts import service as contacts
from app.db import insert_ignore, one_of, session_scope
from app.models import utcnow

PAGE = 1_000  # messages per transaction: ~1 s of work on PostgreSQL (bench/reevaluate.py)
EVENT_PAGE = 200  # events per transaction (each reads all its copies)
LEASE_SECONDS = 300
REEVALUATIONS = cast(Table, Reevaluation.__table__)


@dataclass(frozen=True)
class Lease:
    org_id: int
    owner: str
    epoch: int


class LeaseLost(Exception):
    """Another process runs this organization's re-evaluation now: stop, write nothing."""


def record_change(
    session: Session,
    org_id: int,
    *,
    addresses: Iterable[str] = (),
    domains: Iterable[str] = (),
) -> None:
    """Call in the transaction that changes the directory, after the change: writers that
    read the old directory reload it, and the job will re-derive what it concerns."""
    keys = sorted({address_key(a) for a in addresses})
    changed = sorted({d.lower().strip(".") for d in domains})
    if not keys and not changed:
        return
    # waits for the writers inferring with the old directory (directory.current)
    directories.bump(session, org_id)
    # chat conversations are derived from whole channels (app/chat/job.py), not from items
    jobs.mark_due(session, org_id, jobs.CHAT)
    session.add(DirectoryChange(org_id=org_id, addresses=keys, domains=changed))
    insert_ignore(
        session,
        REEVALUATIONS,
        [{"org_id": org_id, "done": 0, "total": 0, "lease_epoch": 0}],
        ["org_id"],
    )
    session.flush()


# -- the job ----------------------------------------------------------------------------------


def _waiting(org_id: Any) -> Any:
    return or_(
        exists().where(DirectoryChange.org_id == org_id),
        exists().where(ReevaluationMessage.org_id == org_id),
        exists().where(ReevaluationEvent.org_id == org_id),
    )


def claim(session: Session, *, owner: str, now: datetime, limit: int = 1) -> list[Lease]:
    """Lease organizations with work waiting whose lease is free (none, or run out)."""
    due = (
        select(Reevaluation.org_id)
        .where(
            _waiting(Reevaluation.org_id),
            or_(Reevaluation.lease_until.is_(None), Reevaluation.lease_until < now),
        )
        .order_by(Reevaluation.org_id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    claimed = session.execute(
        update(Reevaluation)
        .where(Reevaluation.org_id.in_(due.scalar_subquery()))
        .values(
            lease_owner=owner,
            lease_until=now + timedelta(seconds=LEASE_SECONDS),
            lease_epoch=Reevaluation.lease_epoch + 1,
        )
        .returning(Reevaluation.org_id, Reevaluation.lease_epoch, Reevaluation.finished_at)
        .execution_options(synchronize_session=False)
    ).all()
    leases = []
    for org_id, epoch, finished_at in claimed:
        row = session.get_one(Reevaluation, org_id)
        if finished_at is not None or row.started_at is None:  # a new run, not a resumed one
            row.started_at, row.finished_at, row.done, row.total = now, None, 0, 0
        leases.append(Lease(org_id, owner, epoch))
    session.flush()
    return leases


def _fence(session: Session, lease: Lease, *, now: datetime, **values: Any) -> None:
    """A job transaction's last statement: renew the lease if it still holds, with `values`
    (progress), else LeaseLost and the transaction rolls back."""
    renewed = session.execute(
        update(Reevaluation)
        .where(
            Reevaluation.org_id == lease.org_id,
            Reevaluation.lease_owner == lease.owner,
            Reevaluation.lease_epoch == lease.epoch,
        )
        .values({"lease_until": now + timedelta(seconds=LEASE_SECONDS), **values})
        .returning(Reevaluation.org_id)
        .execution_options(synchronize_session=False)
    ).first()
    if renewed is None:
        raise LeaseLost(f"the re-evaluation of organization {lease.org_id} was taken over")


def _take_changes(session: Session, org_id: int) -> int:
    """Turn the queued changes into items; how many items were added."""
    changes = session.execute(
        select(DirectoryChange.id, DirectoryChange.addresses, DirectoryChange.domains)
        .where(DirectoryChange.org_id == org_id)
        .order_by(DirectoryChange.id)
    ).all()
    if not changes:
        return 0
    keys = sorted({key for _, found, _ in changes for key in found})
    domains = sorted({domain for _, _, found in changes for domain in found})
    added = 0
    for index, item, column in (
        (MessageAddress, ReevaluationMessage, "message_id"),
        (EventAddress, ReevaluationEvent, "event_key"),
    ):
        added += _enqueue(session, org_id, index, item, column, keys, domains)
    session.execute(
        delete(DirectoryChange).where(one_of(session, DirectoryChange.id, [c[0] for c in changes]))
    )
    return added


def _enqueue(
    session: Session,
    org_id: int,
    index: Any,
    item: Any,
    column: str,
    keys: list[str],
    domains: list[str],
) -> int:
    """INSERT the items the index names for these address keys and domains (one statement
    per address or domain range, each an index range scan)."""
    ranges: list[Any] = [index.address_key == key for key in keys]
    for domain in domains:
        ranges += [
            (index.address_key >= low) & (index.address_key < high)
            for low, high in domain_ranges(domain)
        ]
    added = 0
    for condition in ranges:
        found = select(getattr(index, column)).where(index.org_id == org_id, condition).distinct()
        rows = [{column: value} for value in session.scalars(found)]
        inserted = insert_ignore(
            session,
            item.__table__,
            rows,
            ["org_id", column],
            returning=(getattr(item, column),),
            shared={"org_id": org_id},
        )
        added += len(inserted)
    return added


def run_page(session: Session, lease: Lease, directory: Directory | None) -> Directory | None:
    """One page of the run; the directory it used, or None when the run is finished (the
    lease is then released in this transaction)."""
    now = utcnow()
    org_id = lease.org_id
    directory = directories.current(session, org_id, directory)
    state = session.get_one(Reevaluation, org_id)
    added = _take_changes(session, org_id)
    unlinked: set[int] = set()
    message_ids = list(
        session.scalars(
            select(ReevaluationMessage.message_id)
            .where(ReevaluationMessage.org_id == org_id)
            .order_by(ReevaluationMessage.message_id)
            .limit(PAGE)
        )
    )
    keys: list[str] = []
    if message_ids:
        reapply.messages(session, org_id, message_ids, directory, unlinked)
        session.execute(
            delete(ReevaluationMessage).where(
                ReevaluationMessage.org_id == org_id,
                one_of(session, ReevaluationMessage.message_id, message_ids),
            )
        )
    else:
        keys = list(
            session.scalars(
                select(ReevaluationEvent.event_key)
                .where(ReevaluationEvent.org_id == org_id)
                .order_by(ReevaluationEvent.event_key)
                .limit(EVENT_PAGE)
            )
        )
        if keys:
            reapply.event_keys(session, org_id, keys, directory, unlinked, now=now)
            session.execute(
                delete(ReevaluationEvent).where(
                    ReevaluationEvent.org_id == org_id,
                    one_of(session, ReevaluationEvent.event_key, keys),
                )
            )
    contacts.forget_unlinked(session, org_id, unlinked)
    done = state.done + len(message_ids) + len(keys)
    if message_ids or keys or added:
        _fence(session, lease, now=now, done=done, total=state.total + added)
        return directory
    _fence(session, lease, now=now, finished_at=now, lease_owner=None, lease_until=None)
    return None


def run(lease: Lease) -> None:
    """Run a leased organization's re-evaluation to its end (or until the lease is lost)."""
    directory: Directory | None = None
    try:
        while True:
            with session_scope() as session:
                directory = run_page(session, lease, directory)
            if directory is None:
                return
    except LeaseLost:
        return


class Reevaluator:
    """The scheduler's job: one per process; claims and runs one organization at a time."""

    def __init__(self) -> None:
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"

    def tick(self) -> int:
        """Run every organization with work waiting that no other process runs; how many."""
        count = 0
        while True:
            with session_scope() as session:
                leases = claim(session, owner=self.owner, now=utcnow())
            if not leases:
                return count
            for lease in leases:
                run(lease)
                count += 1


def drain() -> int:
    """Run every waiting re-evaluation to its end in this process (tests, benches, CLI)."""
    return Reevaluator().tick()


@dataclass(frozen=True)
class Status:
    state: str  # idle | pending | running
    done: int
    total: int
    started_at: datetime | None
    finished_at: datetime | None


def status(session: Session, org_id: int, *, now: datetime) -> Status:
    """What GET /org/reevaluation shows: running while a live lease holds the job; pending
    while changes or items wait for a worker; else idle, with the last run's figures."""
    row = session.get(Reevaluation, org_id)
    if row is None:
        return Status("idle", 0, 0, None, None)
    session.refresh(row)
    waiting = bool(session.scalar(select(_waiting(org_id))))
    if row.lease_until is not None and row.lease_until >= now and row.finished_at is None:
        state = "running"
    else:
        state = "pending" if waiting else "idle"
    return Status(state, row.done, row.total, row.started_at, row.finished_at)
