"""The delivery job: sends what the outbox holds, per webhook in order, at least once.

Every process's scheduler ticks it; an organization with a delivery due is claimed through its
`org_jobs` lease (job "webhooks", app/jobs.py), so one process at a time sends its deliveries.
A delivery is read in one transaction, sent with none open, and its outcome written in a
third that ends with the lease's fence. A process that dies mid-way leaves the row as it was
(due): it is sent again once the lease runs out, so a receiver may see an event twice, with
the same `webhook-id` (receivers dedupe on it), never not at all.

Only the oldest pending delivery of a webhook is due (`next_attempt_at`); when it is settled
(delivered, or failed for good: `settled_at`) the next one becomes due, so a later event waits
while an earlier one is retried.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit, urlunsplit

import httpx2
import structlog
from sqlalchemy import select, update
from sqlalchemy.orm import Session
from standardwebhooks import Webhook as Signer

from app import jobs
from app.config import settings
from app.db import session_scope
from app.models import utcnow
from app.security import SecretUnreadable, decrypt_secret
from app.webhooks import prune
from app.webhooks.models import DeliveryStatus, Webhook, WebhookDelivery, WebhookStatus
from connectors.netguard import BlockedAddress, resolve

log = structlog.get_logger(__name__)

JOB = jobs.WEBHOOKS
# waits after the 1st, 2nd... failed attempt: the schedule the Standard Webhooks
# specification's reference (Svix) uses; the 8th attempt comes 27 h 35 min after the first
SCHEDULE = (
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
)
# a delivery whose attempt fails this long after it was announced is given up (failed); one
# that waited behind an earlier one that long gets one attempt
GIVE_UP_AFTER = timedelta(hours=24)
# the receiver has 5 s to accept the connection, then 10 s for each read of its answer (Svix
# gives 15 s in all)
TIMEOUT = httpx2.Timeout(10.0, connect=5.0)
# one process holds an organization this long without a sign of life; each written outcome
# renews it, and one attempt lasts at most ~15 s (connect + answer); a process killed mid-run
# holds back its organization's deliveries this long
LEASE = timedelta(seconds=60)
# how long one organization's run may send before it lets the tick go on (the rest is due
# still and is sent by the next tick)
RUN_SECONDS = 30.0
BATCH = 20
USER_AGENT = "Tally-Webhooks/1"


@dataclass(frozen=True, slots=True)
class Attempt:
    delivery_id: int
    webhook_id: int
    url: str
    event_id: str
    body: str
    secret: bytes


@dataclass(frozen=True, slots=True)
class Outcome:
    status_code: int | None
    error: str | None

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def gone(self) -> bool:
        return self.status_code == 410


def next_step(
    outcome: Outcome, attempts: int, created_at: datetime, now: datetime
) -> tuple[DeliveryStatus, datetime | None]:
    """After `attempts` attempts, the last with `outcome`: the delivery's status and its next
    attempt (None: settled)."""
    if outcome.delivered:
        return DeliveryStatus.delivered, None
    if outcome.gone or now - created_at >= GIVE_UP_AFTER:
        return DeliveryStatus.failed, None
    return DeliveryStatus.pending, now + SCHEDULE[min(attempts, len(SCHEDULE)) - 1]


def _pinned(url: str) -> tuple[str, dict[str, str], dict[str, str]]:
    """The URL with its host replaced by the address checked now (no second look-up a
    rebinding DNS server could answer differently), the Host header, and for https the name
    the certificate is checked against (SNI)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    family, sockaddr = resolve(host, port, settings.allowed_private_hosts)[0]
    address = f"[{sockaddr[0]}]" if family == socket.AF_INET6 else str(sockaddr[0])
    netloc = f"{address}:{port}"
    headers = {"Host": parts.netloc.rsplit("@", 1)[-1]}
    extensions = {"sni_hostname": host} if parts.scheme == "https" else {}
    return urlunsplit(parts._replace(netloc=netloc)), headers, extensions


def send(attempt: Attempt, client: httpx2.Client) -> Outcome:
    """POST the body, signed now (the timestamp is the attempt's: receivers refuse old ones;
    the body and webhook-id are the same on every attempt). Redirects are not followed."""
    try:
        secret = str(decrypt_secret(attempt.secret)["secret"])
    except SecretUnreadable as error:
        return Outcome(None, str(error))
    # the wall clock, whatever the job's clock says: receivers refuse a timestamp 5 min off
    at = datetime.fromtimestamp(time.time(), UTC)
    headers = {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": attempt.event_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": Signer(secret).sign(attempt.event_id, at, attempt.body),
    }
    try:
        url, host, extensions = _pinned(attempt.url)
        with client.stream(
            "POST",
            url,
            content=attempt.body.encode(),
            headers={**headers, **host},
            extensions=extensions,
        ) as response:
            # the answer's body is never read: only its status counts
            code = response.status_code
            return Outcome(code, None if response.is_success else f"the receiver answered {code}")
    except BlockedAddress as error:
        return Outcome(None, str(error))
    except (httpx2.HTTPError, OSError, ValueError) as error:
        return Outcome(None, f"{type(error).__name__}: {error}"[:500])


def _due_orgs(session: Session, now: datetime) -> list[int]:
    return list(
        session.scalars(
            select(WebhookDelivery.org_id).where(WebhookDelivery.next_attempt_at <= now).distinct()
        )
    )


def _due(session: Session, org_id: int, now: datetime) -> list[Attempt]:
    rows = session.execute(
        select(WebhookDelivery, Webhook)
        .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
        .where(WebhookDelivery.org_id == org_id, WebhookDelivery.next_attempt_at <= now)
        .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
        .limit(BATCH)
    ).all()
    return [Attempt(d.id, d.webhook_id, w.url, d.event_id, d.body, w.secret) for d, w in rows]


def _promote_next(session: Session, webhook_id: int, now: datetime) -> None:
    head = session.scalar(
        select(WebhookDelivery.id)
        .where(
            WebhookDelivery.webhook_id == webhook_id,
            WebhookDelivery.status == DeliveryStatus.pending,
        )
        .order_by(WebhookDelivery.seq)
        .limit(1)
    )
    if head is not None:
        session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == head)
            .values(next_attempt_at=now)
            .execution_options(synchronize_session=False)
        )


def record(session: Session, attempt: Attempt, outcome: Outcome, now: datetime) -> None:
    """Write an attempt's outcome; settle the delivery or schedule its retry."""
    # the webhook's row first, as announce() takes it: an announcement being written now is
    # committed before this looks for the next delivery to make due, or sees this one settled
    status = session.execute(
        update(Webhook)
        .where(Webhook.id == attempt.webhook_id)
        .values(last_seq=Webhook.last_seq)
        .returning(Webhook.status)
        .execution_options(synchronize_session=False)
    ).scalar()
    row = session.get(WebhookDelivery, attempt.delivery_id)
    if status is None or row is None or row.next_attempt_at is None:
        return  # the webhook was deleted, or another run settled the delivery
    row.attempts += 1
    row.last_attempt_at = now
    row.last_status_code = outcome.status_code
    row.last_error = outcome.error
    state, row.next_attempt_at = next_step(outcome, row.attempts, row.created_at, now)
    row.status = state
    if state != DeliveryStatus.pending:
        row.settled_at = now
    if state == DeliveryStatus.delivered:
        row.delivered_at = now
    if outcome.gone:
        _disable(session, attempt.webhook_id, now)
    elif state != DeliveryStatus.pending:
        session.flush()
        _promote_next(session, attempt.webhook_id, now)
    session.flush()


def _disable(session: Session, webhook_id: int, now: datetime) -> None:
    """410 Gone: the receiver asks for nothing more (the specification's recommendation).
    The webhook is disabled and what was queued for it fails."""
    reason = f"the receiver answered 410 Gone at {now.isoformat()}"
    session.execute(
        update(Webhook)
        .where(Webhook.id == webhook_id)
        .values(status=WebhookStatus.disabled, disabled_reason=reason)
        .execution_options(synchronize_session=False)
    )
    session.flush()
    session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.webhook_id == webhook_id,
            WebhookDelivery.status == DeliveryStatus.pending,
        )
        .values(
            status=DeliveryStatus.failed,
            next_attempt_at=None,
            settled_at=now,
            last_error="webhook disabled",
        )
        .execution_options(synchronize_session=False)
    )


def run_org(lease: jobs.JobLease, client: httpx2.Client) -> int:
    """Send the organization's due deliveries until none is due or the run's time is up."""
    sent = 0
    deadline = time.monotonic() + RUN_SECONDS
    while time.monotonic() < deadline:
        with session_scope() as session:
            batch = _due(session, lease.org_id, utcnow())
        if not batch:
            break
        for attempt in batch:
            outcome = send(attempt, client)
            sent += 1
            with session_scope() as session:
                now = utcnow()
                record(session, attempt, outcome, now)
                jobs.fence(session, lease, now=now, renew=LEASE)
            if not outcome.delivered:
                log.info(
                    "webhook_attempt_failed",
                    webhook_id=attempt.webhook_id,
                    delivery_id=attempt.delivery_id,
                    status_code=outcome.status_code,
                    error=outcome.error,
                )
            if time.monotonic() >= deadline:
                break
    with session_scope() as session:
        jobs.release(session, lease, now=utcnow())
    return sent


def tick(client_factory: Callable[[], httpx2.Client] | None = None) -> int:
    """One round: claim the organizations with a delivery due, send; then, now and then, prune
    the log (app/webhooks/prune.py). The number of attempts."""
    attempts = _deliver(client_factory)
    prune.tick(utcnow())
    return attempts


def _deliver(client_factory: Callable[[], httpx2.Client] | None) -> int:
    now = utcnow()
    with session_scope() as session:
        leases = jobs.claim(session, JOB, _due_orgs(session, now), now=now, lease=LEASE)
    if not leases:
        return 0
    make = client_factory or (lambda: httpx2.Client(timeout=TIMEOUT, follow_redirects=False))
    attempts = 0
    with make() as client:
        for lease in leases:
            try:
                attempts += run_org(lease, client)
            except jobs.LeaseLost:
                log.warning("webhook_lease_lost", org_id=lease.org_id)
    return attempts
