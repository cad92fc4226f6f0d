"""Run one leased connection's connectors, page by page.

Network I/O happens outside any database transaction. Each page is written in its own short
transaction together with the cursor that covers it, and that transaction ends with the
lease check (leases.fence), so a crash repeats at most one page, ingest makes repeats
harmless, and a page read under a lease that was taken over meanwhile is refused whole.
A connector error ends the run in a state a person can read (leases.record_failure).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import structlog
from sqlalchemy.orm import Session

from app import jobs
from app.activities import events
from app.activities.ingest import IngestResult, ingest_page, load_directory
from app.chat import service as chat
from app.config import settings
from app.connections import changes, leases
from app.contacts.service import KnownContacts
from app.db import commit_without_waiting, session_scope
from app.dbtimeouts import WORKER
from app.models import Connection, utcnow
from app.observability import SYNC_MESSAGES, SYNC_RUNS
from app.security import SecretUnreadable
from app.sync.registry import build_connectors
from connectors.base import (
    Connector,
    ConnectorError,
    CursorExpired,
    Page,
    RefreshesCredentials,
    WidensHistory,
)
from connectors.chat import ChatPage

log = structlog.get_logger(__name__)


def run(lease: leases.Lease) -> None:
    """Sync a leased connection; every outcome, including a bug, is recorded on it."""
    with _LOG_BUDGET.run(lease.connection_id):
        _run(lease)


def _run(lease: leases.Lease) -> None:
    cursor_key: str | None = None
    try:
        with session_scope(WORKER) as session:
            connection = leases.leased(session, lease)
            provider = connection.provider
            connectors = build_connectors(connection, changes.credentials(connection))
            leases.start_run(connection, now=utcnow())
            leases.fence(session, lease, now=utcnow())
        for connector in connectors:
            cursor_key = connector.name
            _run_connector(lease, connector)
        cursor_key = None
        _settle(lease)
    except leases.LeaseLost:
        log.warning("lease_lost", connection_id=lease.connection_id)
        return
    except (ConnectorError, SecretUnreadable) as error:
        _finish(lease, error, cursor_key)
        SYNC_RUNS.labels(provider, type(error).__name__).inc()
        return
    except Exception as error:  # a bug must not stop other connections: record and move on
        log.exception("sync_crashed", connection_id=lease.connection_id)
        _finish(lease, error, cursor_key)
        return
    _finish(lease, None, None)
    SYNC_RUNS.labels(provider, "ok").inc()


def _run_connector(lease: leases.Lease, connector: Connector) -> None:
    for attempt in range(2):  # a forgotten cursor is retried once from scratch
        try:
            _pull_pages(lease, connector)
            return
        except CursorExpired:
            if attempt:
                raise
            log.info("cursor_expired", connection_id=lease.connection_id, connector=connector.name)
            with session_scope(WORKER) as session:
                connection = leases.leased(session, lease)
                cursors = dict(connection.cursors)
                cursors.pop(connector.name, None)
                connection.cursors = cursors
                leases.fence(session, lease, now=utcnow())


def _pull_pages(lease: leases.Lease, connector: Connector) -> None:
    with session_scope(WORKER) as session:
        connection = leases.leased(session, lease)
        cursor = connection.cursors.get(connector.name)
        directory = load_directory(session, connection.org_id)
        provider = connection.provider
        history_from = history_start(connection.config)
    since = utcnow() - timedelta(days=settings.backfill_days)
    listing = _Listing() if cursor is None else None  # a pull from nothing lists everything
    known = KnownContacts()
    try:
        for page in _pull(connector, cursor, since, history_from):
            if listing is not None:
                listing.add(page)
            with session_scope(WORKER) as session:
                connection = leases.leased(session, lease)
                if isinstance(page, ChatPage):  # one channel's chat messages (app.chat)
                    result = _ingest_chat_page(session, connection, page)
                else:
                    result = ingest_page(session, connection, page, directory, known)
                if page.cursor is not None:  # reassign: JSON columns do not track in-place edits
                    connection.cursors = {**connection.cursors, connector.name: page.cursor}
                fresh = _fresh_secret(connector)
                if fresh:
                    changes.merge_secret(connection, fresh)
                else:
                    commit_without_waiting(session)  # a lost page is fetched again
                leases.fence(session, lease, now=utcnow())
            SYNC_MESSAGES.labels(provider, "imported").inc(result.imported)
            SYNC_MESSAGES.labels(provider, "filtered").inc(result.filtered)
            SYNC_MESSAGES.labels(provider, "failed").inc(result.failed)
    finally:  # credentials renewed before a failure are kept too (a rotated refresh token)
        if fresh := _fresh_secret(connector):
            with session_scope(WORKER) as session:
                changes.merge_secret(leases.leased(session, lease), fresh)
                leases.fence(session, lease, now=utcnow())
    if listing is not None and listing.window is not None:
        with session_scope(WORKER) as session:
            connection = leases.leased(session, lease)
            events.forget_unlisted(
                session, connection, listing.resources, listing.window, directory, now=utcnow()
            )
            leases.fence(session, lease, now=utcnow())


def history_start(config: dict[str, Any]) -> datetime | None:
    """The start of a connection's widened window (`config.history_from`, a day set by POST
    /connections/{id}/backfill): midnight UTC of that day; None when not set (or unreadable,
    which the API never stores)."""
    value = config.get("history_from")
    try:
        day = date.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None
    return None if day is None else datetime.combine(day, time(), tzinfo=UTC)


def _pull(
    connector: Connector, cursor: str | None, since: datetime, history_from: datetime | None
) -> Iterator[Page]:
    """The connector's pages: a connector that can widen its window (WidensHistory) is given
    the connection's own start too; the others get the instance's default window, as always
    (the API refuses to widen their connections)."""
    if isinstance(connector, WidensHistory) and connector.widens_history and history_from:
        return connector.pull(cursor, since=since, history_from=history_from)
    return connector.pull(cursor, since=since)


class _Listing:
    """What a complete pull named: its calendar resources, and the window all of them cover."""

    def __init__(self) -> None:
        self.resources: set[str] = set()
        self.window: tuple[datetime, datetime] | None = None

    def add(self, page: Page) -> None:
        for item in page.calendar:
            self.resources.add(item.resource)
            if item.window is not None:  # the narrowest: forget only what surely was listed
                start, end = item.window
                if self.window is not None:
                    start, end = max(start, self.window[0]), min(end, self.window[1])
                self.window = (start, end)
        for failure in page.failures:  # unreadable now, but still there
            self.resources.add(failure.source_id)


def _fresh_secret(connector: Connector) -> dict[str, Any] | None:
    """The credentials the connector renewed since it was last asked, if any."""
    if isinstance(connector, RefreshesCredentials):
        fresh = connector.fresh_secret()
        return dict(fresh) if fresh else None
    return None


def _settle(lease: leases.Lease) -> None:
    """Events of the organization that ended since they were last computed get their
    meeting_held and call activities now, even when no calendar changed."""
    with session_scope(WORKER) as session:
        connection = leases.leased(session, lease)
        directory = load_directory(session, connection.org_id)
        events.settle_ended(session, connection.org_id, directory, now=utcnow())
        leases.fence(session, lease, now=utcnow())


def _finish(lease: leases.Lease, error: Exception | None, cursor_key: str | None) -> None:
    try:
        with session_scope(WORKER) as session:
            # the row first (fence), then read: a sync requested meanwhile is seen and kept
            leases.fence(session, lease, now=utcnow())
            connection = leases.leased(session, lease)
            if error is None:
                leases.record_success(connection, now=utcnow())
            else:
                leases.record_failure(connection, error, cursor_key=cursor_key, now=utcnow())
                log.warning("sync_failed", connection_id=connection.id, error=connection.last_error)
            leases.take_changes(session, connection, now=utcnow())
            # what the run brought (activities, a broken connection) shows in alerts soon
            jobs.mark_due(session, connection.org_id, jobs.ALERTS)
    except leases.LeaseLost:
        return  # deleted, changed or taken over: nothing of ours to record


class _LogBudget(logging.Filter):
    """At most `settings.sync_log_lines_per_run` records from the connectors' loggers per
    run; the rest are counted and told in one line when the run ends. One run per thread at
    a time (the worker's pool), so the count is per thread. Installed on each `connectors.*`
    logger, because a logger's filters do not apply to its children's records."""

    def __init__(self) -> None:
        super().__init__()
        self._local = threading.local()
        self._installed: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        counts: list[int] | None = getattr(self._local, "counts", None)
        if counts is None:  # outside a run
            return True
        counts[0] += 1
        return counts[0] <= settings.sync_log_lines_per_run

    @contextmanager
    def run(self, connection_id: int) -> Iterator[None]:
        for name in [n for n in logging.Logger.manager.loggerDict if n not in self._installed]:
            if name == "connectors" or name.startswith("connectors."):
                logging.getLogger(name).addFilter(self)
                self._installed.add(name)
        self._local.counts = [0]
        try:
            yield
        finally:
            dropped = self._local.counts[0] - settings.sync_log_lines_per_run
            self._local.counts = None
            if dropped > 0:
                log.warning("sync_log_capped", connection_id=connection_id, dropped=dropped)


_LOG_BUDGET = _LogBudget()


def _ingest_chat_page(session: Session, connection: Connection, page: ChatPage) -> IngestResult:
    """Store one channel's page of any chat connector (app.chat.service.ingest, in this
    transaction with the cursor that covers it). The connection's counts grow like a
    mailbox's: seen, and imported (new to Tally); a message delivered again (a replayed page)
    is seen, not imported. The metrics read the result as a mail page's."""
    result = chat.ingest(
        session,
        connection.org_id,
        source=page.source,
        channel_id=page.channel_id,
        messages=page.chat,
        participants=page.participants,
        connection_id=connection.id,
        name=page.channel_name,
        kind=page.channel_kind,
        synced_to=page.synced_to,
    )
    connection.messages_seen += len(page.chat)
    connection.messages_imported += result.stored
    connection.activities_created += result.activities_added
    return IngestResult(
        seen=len(page.chat), imported=result.stored, activities_created=result.activities_added
    )
