"""Pruning of the deliveries log: a delivery that was delivered or failed for good is deleted
TALLY_WEBHOOK_RETENTION_DAYS after it settled (`settled_at`); a pending one never is, whatever
its age, so the head of each webhook's queue, and the order behind it, are never touched.

It runs from the delivery job's tick (app/webhooks/delivery.py), per organization, at most
once an hour for each, under the organization's own `org_jobs` lease (job "webhooks_prune",
app/jobs.py). Per organization rather than once per instance: every process ticks, and an
instance-wide run would need a lease of its own that nothing provides, while `org_jobs`
already keeps two processes off one organization and its `last_run_at` spaces the runs
across all of them (a timer in each process would prune once an hour per process); each
organization's rows are one range of ix_webhook_deliveries_settled.

A run deletes BATCH rows per transaction, each ending with the lease's fence, so a backlog
never holds a long transaction or many locks; one round stops after BUDGET_SECONDS (it runs
between two rounds of deliveries), and an organization left unfinished is asked for again at
once, to go on at the next round.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog
from sqlalchemy import and_, delete, or_, select
from sqlalchemy.orm import Session

from app import jobs
from app.config import settings
from app.db import session_scope
from app.models import OrgJob
from app.webhooks.models import DeliveryStatus, Webhook, WebhookDelivery

log = structlog.get_logger(__name__)

JOB = jobs.WEBHOOKS_PRUNE
# an hour's deliveries more or less in a 30-day log changes nothing a reader sees; an
# organization asked for sooner is one with a backlog left by the budget below
EVERY = timedelta(hours=1)
# how often a process looks for organizations to prune: one query over `webhooks` and
# `org_jobs`, not worth making every 2 s for work that comes hourly
CHECK = timedelta(minutes=1)
# rows deleted per transaction, whatever the backlog, so its locks and WAL stay small: on
# PostgreSQL a batch took 8 ms (21 at most), 100,000 old rows 1.3 s, 864,000 10.9 s
BATCH = 1000
# a round's pruning delays this process's next deliveries by at most this much
BUDGET_SECONDS = 2.0
# a batch takes milliseconds and renews it; a process that dies mid-run holds back only the
# pruning of that organization this long
LEASE = timedelta(minutes=5)
SETTLED = (DeliveryStatus.delivered, DeliveryStatus.failed)


@dataclass
class Throttle:
    """When this process last looked (the job's clock); a clock set back looks again."""

    last: datetime | None = None

    def due(self, now: datetime) -> bool:
        if self.last is not None and self.last <= now < self.last + CHECK:
            return False
        self.last = now
        return True


THROTTLE = Throttle()


def tick(now: datetime) -> int:
    """Prune what is due, unless this process looked less than CHECK ago; the rows deleted."""
    if not THROTTLE.due(now):
        return 0
    return run(now)


def due_orgs(session: Session, now: datetime) -> list[int]:
    """Organizations with a webhook (only they have deliveries: a deleted webhook's go with it)
    whose log was not pruned in the last EVERY, or that were asked for again; the ones pruned
    longest ago first, so one organization's backlog does not hold the others back."""
    rows = session.execute(
        select(Webhook.org_id, OrgJob.last_run_at)
        .distinct()
        .outerjoin(OrgJob, and_(OrgJob.org_id == Webhook.org_id, OrgJob.job == JOB))
        .where(
            or_(
                OrgJob.last_run_at.is_(None),
                OrgJob.last_run_at <= now - EVERY,
                OrgJob.due_at <= now,
            )
        )
    ).all()
    ordered = sorted(rows, key=lambda row: (row[1] is not None, row[1] or now, row[0]))
    return [org_id for org_id, _ in ordered]


def run(now: datetime, *, budget: float = BUDGET_SECONDS) -> int:
    """Prune the due organizations that no other process holds, until done or the budget is
    spent; the rows deleted."""
    deadline = time.monotonic() + budget
    with session_scope() as session:
        due = due_orgs(session, now)
    deleted = 0
    for org_id in due:
        with session_scope() as session:
            leases = jobs.claim(session, JOB, [org_id], now=now, lease=LEASE)
        for lease in leases:
            deleted += prune_org(lease, now, deadline)
        if time.monotonic() >= deadline:
            break  # the others are still due: the next round (each round gets one batch done)
    return deleted


def delete_batch(session: Session, org_id: int, cutoff: datetime) -> int:
    """Delete up to BATCH of the organization's deliveries settled before `cutoff`."""
    doomed = (
        select(WebhookDelivery.id)
        .where(
            WebhookDelivery.org_id == org_id,
            WebhookDelivery.settled_at < cutoff,
            # settled_at is null while pending; the status says it again, for safety's sake
            WebhookDelivery.status.in_(SETTLED),
        )
        # oldest first, along the index: without an order PostgreSQL may pick a sequential
        # scan, which goes over every row the previous batches deleted before vacuum
        .order_by(WebhookDelivery.settled_at)
        .limit(BATCH)
        .scalar_subquery()
    )
    result = session.execute(
        delete(WebhookDelivery)
        .where(WebhookDelivery.id.in_(doomed))
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def prune_org(lease: jobs.JobLease, now: datetime, deadline: float) -> int:
    """One organization's run under its lease; the rows deleted (committed)."""
    cutoff = now - timedelta(days=settings.webhook_retention_days)
    deleted = 0
    try:
        while True:
            with session_scope() as session:
                count = delete_batch(session, lease.org_id, cutoff)
                jobs.fence(session, lease, now=now, renew=LEASE)
            deleted += count
            more = count >= BATCH
            if not more or time.monotonic() >= deadline:
                break
        with session_scope() as session:
            if more:
                jobs.mark_due(session, lease.org_id, JOB, at=now)
            jobs.release(session, lease, now=now)
    except jobs.LeaseLost:
        log.warning("webhook_prune_lease_lost", org_id=lease.org_id)
    except Exception:  # one organization's failure must not stop the deliveries or the others
        # its lease runs out and a later round tries again
        log.exception("webhook_prune_failed", org_id=lease.org_id)
    if deleted:
        log.info("webhook_deliveries_pruned", org_id=lease.org_id, deleted=deleted)
    return deleted
