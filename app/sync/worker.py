"""The sync worker: claims due connections and runs them on a thread pool."""

from __future__ import annotations

import os
import socket
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import structlog

from app.connections import leases
from app.db import session_scope
from app.dbtimeouts import WORKER
from app.models import utcnow
from app.sync import runner

log = structlog.get_logger(__name__)


class SyncWorker:
    """One per process. Each tick leases as many due connections as it has free threads."""

    def __init__(self, threads: int) -> None:
        self.threads = threads
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._pool = ThreadPoolExecutor(threads, thread_name_prefix="sync")
        self._running: set[int] = set()
        self._lock = threading.Lock()

    def tick(self) -> int:
        """Claim and start due connections; returns how many were started."""
        with self._lock:
            free = self.threads - len(self._running)
        if free <= 0:
            return 0
        with session_scope(WORKER) as session:
            claimed = leases.claim_due(session, owner=self.owner, limit=free, now=utcnow())
        for lease in claimed:
            with self._lock:
                self._running.add(lease.connection_id)
            self._pool.submit(self._run, lease)
        return len(claimed)

    def _run(self, lease: leases.Lease) -> None:
        try:
            runner.run(lease)
        except Exception:  # runner.run records failures itself; this only guards the pool
            log.exception("worker_run_crashed", connection_id=lease.connection_id)
        finally:
            with self._lock:
                self._running.discard(lease.connection_id)

    def drain(self) -> None:
        """Run every due connection to completion (tests and `tally sync --once`)."""
        while self.tick():
            self._pool.shutdown(wait=True)
            self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="sync")

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
