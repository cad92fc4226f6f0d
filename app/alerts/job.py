"""The alert job: every scheduler tick, evaluate the organizations that are due, one at a time,
each under its lease (app/jobs.py) and in one transaction that ends with the fence.

An organization is due when something asked for it (`jobs.mark_due` after a sync run or a deal
change: alerts follow within a minute) or when its last run is older than EVERY: time alone
moves pace, coldness and the trailing windows.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import structlog
from sqlalchemy import select

from app import jobs
from app.alerts.evaluate import evaluate
from app.db import one_of, session_scope
from app.models import OrgJob, utcnow

log = structlog.get_logger(__name__)

JOB = jobs.ALERTS
TICK_SECONDS = 15
EVERY = timedelta(minutes=15)
# An organization asked for again is evaluated at most this often: an organization whose 400
# connections sync every few minutes asks after every run, and a run of the 10M bench's
# organization costs 6-7 CPU seconds. Asked at t, evaluated by t + SPACING + a tick: within
# a minute.
SPACING = timedelta(seconds=40)
# a run of the 200-rep organization at 10M activities takes a few seconds (bench/alerts.py);
# a process stopped longer than this loses the organization to another one
LEASE = timedelta(minutes=5)


def tick(now: datetime | None = None) -> int:
    """Evaluate every due organization that no other process holds and that was not evaluated
    in the last SPACING; how many were evaluated."""
    now = now or utcnow()
    with session_scope() as session:
        due = jobs.due_orgs(session, JOB, now=now, every=EVERY)
        recent = (
            set(
                session.scalars(
                    select(OrgJob.org_id).where(
                        OrgJob.job == JOB,
                        one_of(session, OrgJob.org_id, due),
                        OrgJob.last_run_at > now - SPACING,
                    )
                )
            )
            if due
            else set()
        )
    due = [org_id for org_id in due if org_id not in recent]  # they stay due: a later tick
    count = 0
    for org_id in due:
        with session_scope() as session:
            claimed = jobs.claim(session, JOB, [org_id], now=utcnow(), lease=LEASE)
        for lease in claimed:
            count += run(lease)
    return count


def run(lease: jobs.JobLease) -> int:
    """One organization's evaluation under its lease: 1 when it went to its end."""
    try:
        with session_scope() as session:
            summary = evaluate(session, lease.org_id, now=utcnow())
            jobs.fence(session, lease, now=utcnow(), renew=LEASE)
            jobs.release(session, lease, now=utcnow())
    except jobs.LeaseLost:
        log.warning("alerts_lease_lost", org_id=lease.org_id)
        return 0
    except Exception:  # one organization's failure must not stop the others
        # the lease runs out and the next tick after it tries again
        log.exception("alerts_failed", org_id=lease.org_id)
        return 0
    log.info(
        "alerts_evaluated",
        org_id=lease.org_id,
        opened=summary.opened,
        resolved=summary.resolved,
        attained=summary.attained,
        seconds=summary.seconds,
    )
    return 1
