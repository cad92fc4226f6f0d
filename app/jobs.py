"""Per-organization leases for periodic jobs (alert evaluation, webhook delivery).

Every API and worker process runs the scheduler, so each tick of a job may start in several
processes at once. A job claims the organizations it has work for through their `org_jobs`
row: one process holds an organization's lease at a time, and every transaction of the job
ends with `fence`, which renews the lease only if the epoch it was claimed with is still the
row's (a process that stalled past its lease and was taken over writes nothing), as a
connection's sync lease does (app/connections/leases.py).

`mark_due` asks for a run soon, from the transaction of a change the job should see (a deal
written, a sync finished): it writes only when the row is not already due, so the changes
between two runs touch the row once.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, and_, or_, select, update
from sqlalchemy.orm import Session

from app.db import insert_ignore, one_of
from app.models import Organization, OrgJob, utcnow

ORG_JOBS = cast(Table, OrgJob.__table__)
# the jobs, by the name their rows carry
ALERTS = "alerts"
WEBHOOKS = "webhooks"
WEBHOOKS_PRUNE = "webhooks_prune"  # the deliveries log kept its retention (app/webhooks/prune.py)
CHAT = "chat"  # chat conversations derived again after a directory change (app/chat/job.py)
# one process's name, as the sync worker's lease owner is written
OWNER = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@dataclass(frozen=True, slots=True)
class JobLease:
    org_id: int
    job: str
    owner: str
    epoch: int


class LeaseLost(Exception):
    """Another process runs this job for this organization now: stop, write nothing more."""


def _ensure(session: Session, job: str, org_ids: Iterable[int]) -> None:
    rows = [{"org_id": o, "job": job, "lease_epoch": 0} for o in sorted(set(org_ids))]
    if rows:
        insert_ignore(session, ORG_JOBS, rows, ["org_id", "job"])


def mark_due(session: Session, org_id: int, job: str, *, at: datetime | None = None) -> None:
    """Ask for a run of `job` for this organization at `at` (default now), in the caller's
    transaction. Writes only when the row is not due as early already."""
    at = at or utcnow()
    _ensure(session, job, [org_id])
    session.execute(
        update(OrgJob)
        .where(
            OrgJob.org_id == org_id,
            OrgJob.job == job,
            or_(OrgJob.due_at.is_(None), OrgJob.due_at > at),
        )
        .values(due_at=at)
        .execution_options(synchronize_session=False)
    )


def due_orgs(session: Session, job: str, *, now: datetime, every: timedelta | None) -> list[int]:
    """Organizations whose run of `job` is asked for (due_at reached) or, with `every`, whose
    last run is older than that (or that never ran): the periodic run, for what time alone
    changes. Without `every`, only the organizations asked for."""
    if every is None:
        asked = OrgJob.due_at <= now
    else:
        _ensure(session, job, session.scalars(select(Organization.id)))
        asked = or_(
            OrgJob.due_at <= now, OrgJob.last_run_at.is_(None), OrgJob.last_run_at <= now - every
        )
    return list(
        session.scalars(
            select(OrgJob.org_id).where(OrgJob.job == job, asked).order_by(OrgJob.org_id)
        )
    )


def claim(
    session: Session,
    job: str,
    org_ids: Iterable[int],
    *,
    now: datetime,
    lease: timedelta,
    owner: str = OWNER,
) -> list[JobLease]:
    """Lease `job` for those of `org_ids` whose lease is free (never taken, or run out); the
    due mark is cleared with the claim, so a change made during the run asks for another."""
    wanted = sorted(set(org_ids))
    if not wanted:
        return []
    _ensure(session, job, wanted)
    free = (
        select(OrgJob.org_id)
        .where(
            OrgJob.job == job,
            one_of(session, OrgJob.org_id, wanted),
            or_(OrgJob.lease_until.is_(None), OrgJob.lease_until < now),
        )
        .order_by(OrgJob.org_id)
    )
    if session.get_bind().dialect.name == "postgresql":
        free = free.with_for_update(skip_locked=True)
    claimed = session.execute(
        update(OrgJob)
        .where(OrgJob.job == job, OrgJob.org_id.in_(free.scalar_subquery()))
        .values(
            lease_owner=owner,
            lease_until=now + lease,
            lease_epoch=OrgJob.lease_epoch + 1,
            due_at=None,
        )
        .returning(OrgJob.org_id, OrgJob.lease_epoch)
        .execution_options(synchronize_session=False)
    ).all()
    return [JobLease(org_id, job, owner, epoch) for org_id, epoch in sorted(claimed)]


def _held(lease: JobLease) -> Any:
    return and_(
        OrgJob.org_id == lease.org_id,
        OrgJob.job == lease.job,
        OrgJob.lease_owner == lease.owner,
        OrgJob.lease_epoch == lease.epoch,
    )


def fence(session: Session, lease: JobLease, *, now: datetime, renew: timedelta) -> None:
    """A job transaction's last statement: renew the lease if it still holds, else LeaseLost
    (the caller's transaction rolls back)."""
    renewed = session.execute(
        update(OrgJob)
        .where(_held(lease))
        .values(lease_until=now + renew)
        .returning(OrgJob.org_id)
        .execution_options(synchronize_session=False)
    ).first()
    if renewed is None:
        raise LeaseLost(f"job {lease.job} of organization {lease.org_id} was taken over")


def release(session: Session, lease: JobLease, *, now: datetime) -> None:
    """End a run that went to its end: it counts as the last run, the lease is free. A lease
    already taken over is left alone (LeaseLost, the caller rolls back)."""
    released = session.execute(
        update(OrgJob)
        .where(_held(lease))
        .values(lease_until=None, lease_owner=None, last_run_at=now)
        .returning(OrgJob.org_id)
        .execution_options(synchronize_session=False)
    ).first()
    if released is None:
        raise LeaseLost(f"job {lease.job} of organization {lease.org_id} was taken over")
