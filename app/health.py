"""Readiness: the database answers, its schema is the one this code was written for, and a
sync worker is alive (its heartbeat row is fresh). `/healthz` stays the liveness probe.

Each worker process (`tally worker`, and the worker inside `tally serve`) upserts its row in
`worker_heartbeats` every TALLY_WORKER_HEARTBEAT_SECONDS from a job of its own scheduler; the
row goes when the worker stops cleanly, and rows a day old are pruned by any beat.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import structlog
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from sqlalchemy import Connection, delete, func, select

from app.config import settings
from app.db import commit_without_waiting, get_database, session_scope
from app.models import WorkerHeartbeat, aggregated_utc, utcnow

log = structlog.get_logger(__name__)

HEARTBEAT_JOB = "heartbeat"
FORGET_AFTER = timedelta(days=1)  # a crashed worker's row is kept this long, for inspection


@lru_cache(maxsize=1)
def _scripts() -> tuple[tuple[str, ...], frozenset[str]]:
    """The heads and every revision of the migrations shipped with this code."""
    from alembic.script import ScriptDirectory

    import migrations

    scripts = ScriptDirectory(str(Path(migrations.__file__).resolve().parent))
    known = frozenset(script.revision for script in scripts.walk_revisions())
    return tuple(sorted(scripts.get_heads())), known


@dataclass(frozen=True)
class Schema:
    current: tuple[str, ...]  # the database's alembic_version (empty: never migrated)
    head: tuple[str, ...]  # what this code needs
    unknown: tuple[str, ...] = field(default=())  # revisions newer than this code

    @property
    def ok(self) -> bool:
        return self.current == self.head

    def problem(self) -> str:
        """Why the database cannot be used, as the end of a sentence (empty when it can)."""
        head = ", ".join(self.head)
        if self.ok:
            return ""
        if not self.current:
            return "has no Tally tables yet: create them with `tally migrate`"
        if self.unknown:
            return (
                f"is at schema {', '.join(self.current)}, newer than this Tally ({head}): "
                "upgrade Tally"
            )
        return (
            f"is at schema {', '.join(self.current)}, this Tally needs {head}: run `tally migrate`"
        )


def schema(connection: Connection) -> Schema:
    from alembic.runtime.migration import MigrationContext

    head, known = _scripts()
    current = tuple(sorted(MigrationContext.configure(connection).get_current_heads()))
    return Schema(current, head, tuple(r for r in current if r not in known))


def beat(worker: str, started_at: datetime) -> None:
    """Say this worker is alive (a job of its scheduler, every worker_heartbeat_seconds)."""
    now = utcnow()
    with session_scope() as session:
        commit_without_waiting(session)  # a lost beat is replaced by the next one
        row = session.get(WorkerHeartbeat, worker)
        if row is None:
            session.add(WorkerHeartbeat(worker=worker, started_at=started_at, beat_at=now))
        else:
            row.beat_at = now
        session.execute(delete(WorkerHeartbeat).where(WorkerHeartbeat.beat_at < now - FORGET_AFTER))


def forget(worker: str) -> None:
    """A worker that stops cleanly leaves no heartbeat to be mistaken for a live one."""
    try:
        with session_scope() as session:
            session.execute(delete(WorkerHeartbeat).where(WorkerHeartbeat.worker == worker))
    except Exception:  # stopping goes on: the row goes stale and is pruned in a day
        log.warning("heartbeat_not_removed", worker=worker, exc_info=True)


def schedule(scheduler: Any, worker: str) -> None:
    """Beat from `scheduler` (APScheduler's, the one running the sync ticks): at once, then
    every worker_heartbeat_seconds. The same scheduler, so a wedged scheduler stops beating."""
    started_at = utcnow()
    scheduler.add_job(
        beat,
        "interval",
        args=(worker, started_at),
        seconds=settings.worker_heartbeat_seconds,
        id=HEARTBEAT_JOB,
        max_instances=1,
        coalesce=True,
        next_run_time=started_at,
    )


def max_heartbeat_age() -> float:
    return settings.ready_heartbeat_age_seconds or 3 * settings.worker_heartbeat_seconds


@dataclass
class Check:
    ok: bool
    detail: str


def _worker_check(connection: Connection) -> Check:
    limit = max_heartbeat_age()
    fresh_since = utcnow() - timedelta(seconds=limit)
    fresh = connection.scalar(select(func.count()).where(WorkerHeartbeat.beat_at >= fresh_since))
    if fresh:
        return Check(True, f"{fresh} worker(s) beat in the last {limit:g} s")
    newest = connection.scalar(select(func.max(WorkerHeartbeat.beat_at)))
    if newest is None:
        return Check(False, "no sync worker is running (no heartbeat at all): start `tally worker`")
    age = (utcnow() - aggregated_utc(newest)).total_seconds()
    return Check(False, f"no worker heartbeat in the last {limit:g} s (newest: {age:.0f} s ago)")


def readiness(*, worker: bool = True) -> dict[str, Check]:
    checks: dict[str, Check] = {}
    database = get_database()
    try:
        with database.engine.connect() as connection:
            checks["database"] = Check(True, f"{database.engine.dialect.name} answers")
            found = schema(connection)
            checks["schema"] = Check(
                found.ok,
                f"at {', '.join(found.head)}" if found.ok else "the database " + found.problem(),
            )
            if worker:
                if found.ok:
                    checks["worker"] = _worker_check(connection)
                else:
                    checks["worker"] = Check(False, "not checked: the schema is not current")
    except Exception as error:  # any failure to reach the database is the answer itself
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        checks["database"] = Check(False, f"unreachable: {reason[:300]}")
        checks["schema"] = Check(False, "not checked: the database is unreachable")
        if worker:
            checks["worker"] = Check(False, "not checked: the database is unreachable")
    return checks


def install(app: FastAPI) -> None:
    # Not in the OpenAPI document: a probe for orchestrators, whose 503 is an answer and not
    # an API error (tests/test_openapi.py fuzzes every documented route for 5xx).
    @app.get("/readyz", include_in_schema=False)
    def readyz(worker: bool = True) -> JSONResponse:
        """Ready to serve: 200, or 503 naming the checks that failed. `?worker=false` leaves
        the heartbeat out (an API Deployment whose workers run elsewhere)."""
        checks = readiness(worker=worker)
        failed = [name for name, check in checks.items() if not check.ok]
        body = {
            "status": "not_ready" if failed else "ready",
            "failed": failed,
            "checks": {name: {"ok": c.ok, "detail": c.detail} for name, c in checks.items()},
        }
        return JSONResponse(body, status_code=503 if failed else 200)
