"""Every periodic job, listed in one place, run by APScheduler (in-memory, per process).

Running it in several processes is safe: the sync job claims leased rows, so each connection
is synced by one worker at a time however many processes tick; the re-evaluation job leases
each organization's run the same way (app/activities/reevaluate.py), and the alert job each
organization's evaluation (app/alerts/job.py), the chat job each organization's conversations
after a directory change (app/chat/job.py), webhook delivery each organization's queue
(app/webhooks/delivery.py) and, hourly, its log's pruning (app/webhooks/prune.py); the
statistics job analyzes only what changed, under an advisory lock on PostgreSQL
(app/statistics.py).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler

from app import statistics
from app.activities.reevaluate import Reevaluator
from app.alerts import job as alert_job
from app.chat import job as chat_job
from app.config import settings
from app.db import session_scope
from app.sync.worker import SyncWorker
from app.webhooks import delivery as webhook_delivery

# how often the re-evaluation job looks for directory changes (a look that finds none is one
# indexed query); a change is re-derived within this much of being made
REEVALUATION_SECONDS = 5
# how often planner statistics are checked (a check that finds nothing stale costs ~2 ms; an
# ANALYZE of every table at 10M activities 1.8 s on PostgreSQL, 1.4 s per 1M on SQLite)
STATISTICS_SECONDS = 600
# how often webhook deliveries are looked for (one indexed query when none is due): an event
# leaves within this much of its commit (app/webhooks/delivery.py)
WEBHOOK_SECONDS = 2


def refresh_statistics() -> None:
    with session_scope() as session:
        statistics.refresh(session)


def configure(scheduler: BaseScheduler, worker: SyncWorker) -> BaseScheduler:
    scheduler.add_job(
        worker.tick,
        "interval",
        seconds=settings.sync_tick_seconds,
        id="sync_tick",
        max_instances=1,
        coalesce=True,
        misfire_grace_time=30,
    )
    scheduler.add_job(
        Reevaluator().tick,
        "interval",
        seconds=REEVALUATION_SECONDS,
        id="reevaluation",
        max_instances=1,
        coalesce=True,
        misfire_grace_time=30,
    )
    scheduler.add_job(
        webhook_delivery.tick,
        "interval",
        seconds=WEBHOOK_SECONDS,
        id="webhooks",
        max_instances=1,
        coalesce=True,
        misfire_grace_time=30,
    )
    scheduler.add_job(
        chat_job.tick,  # organizations whose directory changed
        "interval",
        seconds=chat_job.TICK_SECONDS,
        id="chat",
        max_instances=1,
        coalesce=True,
        misfire_grace_time=30,
    )
    scheduler.add_job(
        alert_job.tick,  # organizations asked for or not evaluated for 15 minutes
        "interval",
        seconds=alert_job.TICK_SECONDS,
        id="alerts",
        max_instances=1,
        coalesce=True,
        misfire_grace_time=30,
    )
    scheduler.add_job(
        refresh_statistics,
        "interval",
        seconds=STATISTICS_SECONDS,
        id="statistics",
        max_instances=1,
        coalesce=True,
        # a fresh database (just migrated, or just imported) gets statistics in its first minute
        next_run_time=datetime.now(UTC) + timedelta(seconds=60),
    )
    return scheduler


def background(worker: SyncWorker) -> BackgroundScheduler:
    scheduler = BackgroundScheduler(timezone="UTC")
    configure(scheduler, worker)
    return scheduler


def blocking(worker: SyncWorker) -> BlockingScheduler:
    scheduler = BlockingScheduler(timezone="UTC")
    configure(scheduler, worker)
    return scheduler
