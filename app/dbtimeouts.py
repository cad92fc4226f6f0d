"""Time limits on PostgreSQL transactions, per role of the session, and what an API request
answers when it hits one (docs/operations.md "Frozen and dead workers, timeouts").

Without them a process stopped inside a transaction (SIGSTOP, a debugger, a VM paused, a
GC pause of minutes) keeps its row locks for ever: the lease of its connection ends but
nobody can take the row over, and every API request that writes the row waits, holding a
thread and a database connection, until the API stops answering at all.

The limits are set with `set_config(…, true)` as each transaction begins: local to the
transaction, so they hold behind PgBouncer's transaction pooling, where options given at
connect time would be refused or leak to other clients. It costs one round trip per
transaction: 0.26 ms measured on a local server (a transaction of one SELECT, 1.00 ms
before), under 0.5 % of a page of 250 messages. SQLite needs none: one writer at a time,
within its busy timeout, in one process.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException

from app.config import settings

ROLE = "tally.role"  # key of Session.info
API, WORKER, JOB = "api", "worker", "job"

# A lock is held by a transaction that commits in milliseconds, or by a stopped one the
# server ends within db_idle_in_transaction_seconds: a client retrying after this many
# seconds finds it free in the first case and waits politely in the second.
RETRY_AFTER_SECONDS = 2

# SQLSTATEs that mean "not now" rather than "wrong": lock_not_available (lock_timeout),
# query_canceled (statement_timeout), deadlock_detected, serialization_failure,
# idle_in_transaction_session_timeout, admin_shutdown (a session ended by the server).
_BUSY = {"55P03", "40P01", "40001"}
_SLOW = {"57014", "25P03", "57P01"}


def _limits(role: str) -> dict[str, float]:
    """Seconds per PostgreSQL setting for a session of this role; 0 is no limit."""
    limits = {"idle_in_transaction_session_timeout": settings.db_idle_in_transaction_seconds}
    if role == API:
        limits["lock_timeout"] = settings.db_lock_timeout_seconds
        limits["statement_timeout"] = settings.db_statement_timeout_seconds
    elif role == WORKER:
        limits["statement_timeout"] = settings.db_worker_statement_timeout_seconds
    return limits


def _sql(limits: dict[str, float]) -> str:
    # integers in milliseconds, the settings' unit; no parameters: one short simple query
    calls = (f"set_config('{name}', '{round(s * 1000)}', true)" for name, s in limits.items())
    return "SELECT " + ", ".join(calls)


def apply_limits(session: Session, _transaction: Any, connection: Any) -> None:
    """Session `after_begin` listener: the limits of the session's role, for this transaction."""
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(_sql(_limits(session.info.get(ROLE, JOB))))


@contextmanager
def lock_wait(session: Session, seconds: float) -> Iterator[None]:
    """Within the block, wait at most `seconds` for a lock (then LockNotAvailable); after it,
    the role's own limit again."""
    if session.get_bind().dialect.name != "postgresql":
        yield
        return
    session.execute(text(_sql({"lock_timeout": seconds})))
    yield
    own = _limits(session.info.get(ROLE, JOB)).get("lock_timeout", 0.0)
    session.execute(text(_sql({"lock_timeout": own})))


def allow_statements(session: Session, seconds: float) -> None:
    """Let this transaction's statements run up to `seconds` (a request that purges a
    mailbox's history deletes as much as a worker writes)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(_sql({"statement_timeout": seconds})))


def lock_refused(error: DBAPIError) -> bool:
    """Whether the error is a lock not granted in time (or a deadlock broken)."""
    return getattr(error.orig, "sqlstate", None) in _BUSY or "database is locked" in str(error)


class Unavailable(HTTPException):
    """503 with Retry-After: the database could not do it now; the same request later can."""

    def __init__(self, message: str) -> None:
        super().__init__(503, message, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})


def unavailable(error: BaseException) -> Unavailable | None:
    """The 503 an API request answers for a time limit it hit, or None for other errors."""
    retry = f"retry in {RETRY_AFTER_SECONDS} s"
    if isinstance(error, PoolTimeout):
        return Unavailable(f"every database connection of this process is busy; {retry}")
    if not isinstance(error, DBAPIError):
        return None
    if lock_refused(error):
        return Unavailable(
            "what this request changes is being written by another transaction (a sync of "
            f"this connection, say); {retry}"
        )
    if getattr(error.orig, "sqlstate", None) in _SLOW:
        return Unavailable(f"the database did not finish this request in time; {retry}")
    return None
