"""Nothing is lost when a process dies: real `tally worker` processes deliver what the outbox
holds, to a real receiver in this process.

- A deal is won through the API while no worker runs: the announcement waits in the database
  and the first worker started delivers it.
- A worker is killed (SIGKILL) while the receiver holds its request: the delivery stays due;
  once the dead worker's lease has run out, another worker delivers it again, with the same
  webhook-id (at least once: the receiver dedupes on it).

On both databases: SQLite in WAL mode takes the worker process and this one side by side.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from app.db import Database, session_scope
from app.models import OrgJob, utcnow
from app.webhooks.models import WebhookDelivery
from tests.api import Org
from tests.sync.processes import Processes, wait_for
from tests.webhooks.receiver import Receiver
from tests.webhooks.test_delivery import closed_deals, subscribe

# a worker process starts in a few seconds and ticks the job every 2 s; measured: ~3-6 s
STARTUP = 60


@pytest.fixture
def processes(database: Database, tmp_path: Path) -> Iterator[Processes]:
    children = Processes({"TALLY_DATABASE_URL": database.url}, tmp_path)
    yield children
    children.close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver().up()
    yield receiver
    receiver.release()
    receiver.down()


def rows() -> list[WebhookDelivery]:
    with session_scope() as session:
        return list(session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)))


def delivered() -> bool:
    return all(r.status == "delivered" for r in rows())


def test_announced_while_no_worker_runs_then_delivered(
    org: Org, database: Database, receiver: Receiver, processes: Processes
) -> None:
    subscribe(org, receiver)
    [deal_id] = closed_deals(org, "won")
    [row] = rows()
    assert row.status == "pending" and receiver.heard == []
    processes.worker("worker", lease=30)
    [heard] = receiver.wait_for(1, timeout=STARTUP)
    assert heard.verified and heard.payload["data"]["deal"]["id"] == deal_id
    wait_for(delivered, timeout=10)
    assert [(r.attempts, r.event_id) for r in rows()] == [(1, heard.webhook_id)]


def test_a_worker_killed_mid_delivery_loses_nothing(
    org: Org, database: Database, receiver: Receiver, processes: Processes
) -> None:
    subscribe(org, receiver)
    receiver.hold = True  # the request is taken, not answered
    first = processes.worker("first", lease=30)
    [deal_id] = closed_deals(org, "won")
    [held] = receiver.wait_for(1, timeout=STARTUP)
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    receiver.hold = False
    receiver.release()
    # the attempt's outcome was never written: the delivery is as it was, due
    [row] = rows()
    assert (row.status, row.attempts, row.delivered_at) == ("pending", 0, None)
    assert row.next_attempt_at is not None
    # the dead worker's lease holds the organization for 60 s: let that time pass
    with session_scope() as session:
        lease = session.scalars(select(OrgJob).where(OrgJob.job == "webhooks")).one()
        assert lease.lease_until is not None and lease.lease_until > utcnow()
        session.execute(
            update(OrgJob)
            .where(OrgJob.job == "webhooks")
            .values(lease_until=utcnow() - timedelta(seconds=1))
        )
    processes.worker("second", lease=30)
    heard = receiver.wait_for(2, timeout=STARTUP)
    again = heard[1]
    assert again.verified and again.payload["data"]["deal"]["id"] == deal_id
    assert again.webhook_id == held.webhook_id and again.body == held.body
    wait_for(delivered, timeout=10)
    [row] = rows()
    assert (row.attempts, row.last_status_code) == (1, 200)
