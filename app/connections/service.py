"""Connections: create, read, secrets (encrypted, write-only), claims, and sync outcomes."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, exists, or_, select, update
from sqlalchemy.orm import Session

from app import providers
from app.access import require_role, visible_user, visible_user_ids
from app.config import settings
from app.errors import Forbidden, NotFound
from app.models import (
    Activity,
    Connection,
    ConnectionStatus,
    Message,
    Observation,
    Role,
    User,
    utcnow,
)
from app.security import SecretUnreadable, decrypt_secret, encrypt_secret
from connectors.base import AuthExpired, ConnectorError, CursorExpired, RateLimited


@dataclass(frozen=True)
class Lease:
    connection_id: int
    owner: str
    epoch: int


def split_secret(provider: str, config: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Separate the write-only secret fields from the readable configuration."""
    secret_names = providers.secret_fields(provider)
    public = {k: v for k, v in config.items() if k not in secret_names}
    secret = {k: v for k, v in config.items() if k in secret_names}
    return public, secret


def create(
    session: Session, caller: User, *, user_id: int, provider: str, config: dict[str, Any]
) -> Connection:
    if user_id != caller.id:
        require_role(caller, Role.admin)
    owner = visible_user(session, caller, user_id)
    public, secret = split_secret(provider, config)
    connection = Connection(
        org_id=owner.org_id,
        user_id=owner.id,
        provider=provider,
        status=ConnectionStatus.pending,
        config=public,
        secret=encrypt_secret(secret) if secret else None,
        cursors={},
        next_sync_at=utcnow(),
    )
    session.add(connection)
    session.flush()
    return connection


def get(session: Session, caller: User, connection_id: int) -> Connection:
    connection = session.get(Connection, connection_id)
    if (
        connection is None
        or connection.org_id != caller.org_id
        or connection.user_id not in visible_user_ids(session, caller)
    ):
        raise NotFound(f"connection {connection_id} not found")
    return connection


def list_for(
    session: Session, caller: User, *, user_id: int | None, after: int | None, limit: int
) -> Sequence[Connection]:
    visible = visible_user_ids(session, caller)
    if user_id is not None:
        visible &= {visible_user(session, caller, user_id).id}
    query = select(Connection).where(Connection.user_id.in_(visible)).order_by(Connection.id)
    if after is not None:
        query = query.where(Connection.id > after)
    return session.scalars(query.limit(limit)).all()


def update_config(
    session: Session, caller: User, connection_id: int, config: dict[str, Any]
) -> Connection:
    """Change settings or credentials (a reconnect): merged over the old ones, synced at once."""
    connection = get(session, caller, connection_id)
    if connection.user_id != caller.id and caller.role != Role.admin:
        raise Forbidden("only the owner or an admin may change a connection")
    public, secret = split_secret(connection.provider, config)
    connection.config = {**connection.config, **public}
    if secret:
        merge_secret(connection, secret)
    connection.status = ConnectionStatus.pending
    connection.last_error = None
    connection.failures = 0
    connection.next_sync_at = utcnow()
    return connection


def push_due(connection: Connection, *, now: datetime) -> bool:
    """A provider's push says the connection changed: due now, unless it waits for a
    reconnect, a Retry-After or an error backoff (push never bypasses those). Whether it was
    marked. If it is syncing now, record_success keeps a due time in the past: it runs again."""
    waiting = (
        connection.status in (ConnectionStatus.needs_reconnect, ConnectionStatus.error)
        or connection.last_error is not None
    )
    if waiting or (connection.next_sync_at is not None and connection.next_sync_at <= now):
        return False
    connection.next_sync_at = now
    return True


def request_sync(session: Session, caller: User, connection_id: int) -> Connection:
    connection = get(session, caller, connection_id)
    connection.next_sync_at = utcnow()
    if connection.status in (ConnectionStatus.needs_reconnect, ConnectionStatus.error):
        connection.status = ConnectionStatus.pending
    return connection


def remove(session: Session, caller: User, connection_id: int, *, purge: bool) -> None:
    connection = get(session, caller, connection_id)
    if connection.user_id != caller.id and caller.role != Role.admin:
        raise Forbidden("only the owner or an admin may delete a connection")
    if purge:
        _purge(session, connection)
    session.delete(connection)


def _purge(session: Session, connection: Connection) -> None:
    """Delete what no other connection has captured: the messages only this one has seen,
    with their activities, and this calendar's event copies, whose events are then
    recomputed from the copies other calendars hold (an event no other calendar holds
    loses its activities)."""
    from app.activities import events, store
    from app.activities.ingest import load_directory

    elsewhere = exists().where(
        Observation.message_pk == Message.id, Observation.connection_id != connection.id
    )
    mine = exists().where(
        Observation.message_pk == Message.id, Observation.connection_id == connection.id
    )
    only_mine = select(Message.id).where(Message.org_id == connection.org_id, mine, ~elsewhere)
    captured = select(Activity.id).where(
        Activity.org_id == connection.org_id, Activity.message_pk.in_(only_mine)
    )
    store.delete(session, connection.org_id, session.scalars(captured))
    session.execute(delete(Message).where(Message.id.in_(only_mine)))
    directory = load_directory(session, connection.org_id)
    events.forget_connection(session, connection, directory)


def credentials(connection: Connection) -> dict[str, Any]:
    return decrypt_secret(connection.secret) if connection.secret else {}


def merge_secret(connection: Connection, fresh: dict[str, Any]) -> None:
    """Store new secret fields over the old ones, encrypted with the newest key."""
    connection.secret = encrypt_secret({**credentials(connection), **fresh})


# --- claims and outcomes (the worker's side) ---------------------------------------------


def claim_due(session: Session, *, owner: str, limit: int, now: datetime) -> list[Lease]:
    """Lease up to `limit` due connections to `owner`: one worker per connection at a time.

    PostgreSQL skips rows another worker is claiming (FOR UPDATE SKIP LOCKED); SQLite has
    one writer at a time, so the single UPDATE … RETURNING is atomic there too.
    """

    due = (
        select(Connection.id)
        .where(
            Connection.next_sync_at <= now,
            Connection.provider.in_(providers.SCHEDULED),
            Connection.status != ConnectionStatus.needs_reconnect,
            or_(Connection.lease_until.is_(None), Connection.lease_until < now),
        )
        .order_by(Connection.next_sync_at)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
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
    return [Lease(connection_id, owner, epoch) for connection_id, epoch in rows]


class LeaseLost(Exception):
    """Another worker holds this connection now: stop without writing anything."""


def leased(session: Session, lease: Lease, *, now: datetime) -> Connection:
    """The connection, if `lease` still holds it (the fencing check before every write)."""
    connection = session.scalar(
        select(Connection)
        .where(
            and_(
                Connection.id == lease.connection_id,
                Connection.lease_owner == lease.owner,
                Connection.lease_epoch == lease.epoch,
            )
        )
        .with_for_update()
    )
    if connection is None:
        raise LeaseLost(f"connection {lease.connection_id} was taken over")
    connection.lease_until = now + timedelta(seconds=settings.sync_lease_seconds)
    return connection


def _release(connection: Connection) -> None:
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
    # a sync requested while this one ran moved next_sync_at back to its request time: keep it
    requested = connection.next_sync_at is not None and connection.next_sync_at <= now
    if not requested:
        connection.next_sync_at = now + timedelta(seconds=settings.sync_interval_seconds)
    _release(connection)


def record_failure(
    connection: Connection, error: Exception, *, cursor_key: str | None, now: datetime
) -> None:
    """The one place where errors become state."""
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
    _release(connection)


def describe(error: Exception) -> str:
    if isinstance(error, AuthExpired):
        return f"Reconnect needed: {error}"
    if isinstance(error, SecretUnreadable):
        return "Reconnect needed: the stored credentials cannot be decrypted with the current keys"
    if isinstance(error, ConnectorError):
        return str(error)
    return f"Internal error while syncing ({type(error).__name__}); it will be retried"
