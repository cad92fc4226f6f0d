"""A worker's hold on a connection: claims with epoch fencing, the lease check that ends every
worker transaction, and the outcome of a run (success, or an error made into state)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, exists, or_, select, update
from sqlalchemy.orm import Session, object_session

from app import providers
from app.config import settings
from app.connections import changes
from app.models import Connection, ConnectionStatus, User
from app.security import SecretUnreadable
from app.webhooks.outbox import announce_needs_reconnect
from connectors.base import AuthExpired, ConnectorError, CursorExpired, RateLimited


@dataclass(frozen=True)
class Lease:
    connection_id: int
    owner: str
    epoch: int


# A worker's transaction reads the row with KEY SHARE (`leased`) and ends with `fence`, the
# lease check that also renews it: the only statements that hold the row for writing are a
# page's last ones, so API writes (FOR NO KEY UPDATE) never wait for a page being written,
# and a PATCH or a takeover that moves the epoch meanwhile makes the fence refuse the page.


def claim_due(session: Session, *, owner: str, limit: int, now: datetime) -> list[Lease]:
    """Lease up to `limit` due connections to `owner`: one worker per connection at a time.

    PostgreSQL skips rows another transaction is writing (FOR NO KEY UPDATE SKIP LOCKED:
    not the KEY SHARE of a stopped worker's page, which must not delay the takeover); SQLite
    has one writer at a time, so the single UPDATE … RETURNING is atomic there too.
    """

    due = (
        select(Connection.id)
        .where(
            Connection.provider.in_(providers.SCHEDULED),
            or_(
                and_(
                    Connection.next_sync_at <= now,
                    Connection.status != ConnectionStatus.needs_reconnect,
                ),
                changes.any_pending(Connection.id),  # a person asked for it
            ),
            or_(
                Connection.lease_until.is_(None),
                Connection.lease_until < now,
                changes.settings_pending(Connection.id),  # the run under way is void
            ),
            # someone who left never syncs again, even if a sync was asked for since
            ~exists().where(User.id == Connection.user_id, User.deactivated_at.is_not(None)),
        )
        .order_by(Connection.next_sync_at)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True, key_share=True)
    lease_until = now + timedelta(seconds=settings.sync_lease_seconds)
    rows = session.execute(
        update(Connection)
        .where(Connection.id.in_(due.scalar_subquery()))
        .values(
            lease_owner=owner,
            lease_until=lease_until,
            lease_epoch=Connection.lease_epoch + 1,
            status=ConnectionStatus.syncing,
            # due again when the lease ends: a worker that dies mid-run is replaced then
            next_sync_at=lease_until,
        )
        .returning(Connection.id, Connection.lease_epoch)
        .execution_options(synchronize_session=False)
    ).all()
    for connection_id in changes.pending(session, [row[0] for row in rows]):
        changes.apply_pending(session, session.get_one(Connection, connection_id))
    return [Lease(connection_id, owner, epoch) for connection_id, epoch in rows]


class LeaseLost(Exception):
    """Another worker holds this connection now: stop without writing anything."""


def _held(lease: Lease) -> Any:
    return (
        (Connection.id == lease.connection_id)
        & (Connection.lease_owner == lease.owner)
        & (Connection.lease_epoch == lease.epoch)
    )


def leased(session: Session, lease: Lease) -> Connection:
    """The connection, if `lease` still holds it: a worker transaction's first read. KEY
    SHARE keeps the row from being deleted under the page (its rows' foreign keys would take
    it anyway) and blocks no other write; `fence` checks the lease again at the end."""
    connection = session.scalar(
        select(Connection).where(_held(lease)).with_for_update(read=True, key_share=True)
    )
    if connection is None:
        raise LeaseLost(f"connection {lease.connection_id} was taken over")
    return connection


def fence(session: Session, lease: Lease, *, now: datetime) -> None:
    """A worker transaction's last statement before its commit: renew the lease if it still
    holds (owner and epoch) and no new settings wait for the connection (changes.py), else
    LeaseLost and the transaction rolls back. Run it after every change to the connection
    (it flushes them first, so they too wait for the row)."""
    renewed = session.execute(
        update(Connection)
        .where(_held(lease), ~changes.settings_pending(lease.connection_id))
        .values(lease_until=now + timedelta(seconds=settings.sync_lease_seconds))
        .returning(Connection.id)
        .execution_options(synchronize_session=False)
    ).first()
    if renewed is None:
        raise LeaseLost(f"connection {lease.connection_id} was taken over")


def start_run(connection: Connection, *, now: datetime) -> None:
    connection.sync_started_at = now


def release(connection: Connection) -> None:
    connection.lease_owner = None
    connection.lease_until = None


def backoff(failures: int) -> timedelta:
    """Capped exponential backoff with full jitter."""
    ceiling = min(settings.max_backoff_seconds, 30 * 2 ** min(failures, 16))
    return timedelta(seconds=random.uniform(ceiling / 2, ceiling))


def record_success(connection: Connection, *, now: datetime) -> None:
    connection.status = ConnectionStatus.idle
    connection.last_synced_at = now
    connection.last_error = None
    connection.failures = 0
    connection.last_error_at = None
    # a sync requested while this one ran moved next_sync_at back to its request time: keep it
    requested = connection.next_sync_at is not None and connection.next_sync_at <= now
    if not requested:
        connection.next_sync_at = now + timedelta(seconds=settings.sync_interval_seconds)
    release(connection)


def record_failure(
    connection: Connection, error: Exception, *, cursor_key: str | None, now: datetime
) -> None:
    """The one place where errors become state."""
    before = connection.status
    connection.last_error_at = now
    match error:
        case AuthExpired() | SecretUnreadable():
            connection.status = ConnectionStatus.needs_reconnect
            connection.next_sync_at = None  # waits for new credentials or a manual sync
        case CursorExpired():
            connection.cursors = {k: v for k, v in connection.cursors.items() if k != cursor_key}
            connection.status = ConnectionStatus.error
            connection.next_sync_at = now
        case RateLimited(retry_after=seconds):
            connection.status = ConnectionStatus.idle
            connection.next_sync_at = now + timedelta(seconds=max(seconds, 1))
        case _:
            connection.status = ConnectionStatus.error
            connection.failures += 1
            connection.next_sync_at = now + backoff(connection.failures)
    connection.last_error = describe(error)
    release(connection)
    session = object_session(connection)
    if connection.status == ConnectionStatus.needs_reconnect != before and session is not None:
        announce_needs_reconnect(
            session,
            org_id=connection.org_id,
            connection_id=connection.id,
            user_id=connection.user_id,
            provider=connection.provider,
            reason=connection.last_error,
        )


def take_changes(session: Session, connection: Connection, *, now: datetime) -> None:
    """After a run's outcome, what was asked meanwhile while its worker held the row
    (changes.py): applied, and a run with it due now."""
    applied = changes.apply_pending(session, connection)
    if applied.settings or applied.sync:
        connection.next_sync_at = now
        waiting = (ConnectionStatus.needs_reconnect, ConnectionStatus.error)
        if applied.settings or connection.status in waiting:
            connection.status = ConnectionStatus.pending


def describe(error: Exception) -> str:
    if isinstance(error, AuthExpired):
        return f"Reconnect needed: {error}"
    if isinstance(error, SecretUnreadable):
        return "Reconnect needed: the stored credentials cannot be decrypted with the current keys"
    if isinstance(error, ConnectorError):
        return str(error)
    return f"Internal error while syncing ({type(error).__name__}); it will be retried"
