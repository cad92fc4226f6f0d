"""Every periodic job, listed in one place, run by APScheduler (in-memory, per process).

Running it in several processes is safe: the only job claims leased rows, so each connection
is synced by one worker at a time however many processes tick.
"""

from __future__ import annotations

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler

from app.config import settings
from app.sync.worker import SyncWorker


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
    return scheduler


def background(worker: SyncWorker) -> BackgroundScheduler:
    scheduler = BackgroundScheduler(timezone="UTC")
    configure(scheduler, worker)
    return scheduler


def blocking(worker: SyncWorker) -> BlockingScheduler:
    scheduler = BlockingScheduler(timezone="UTC")
    configure(scheduler, worker)
    return scheduler
