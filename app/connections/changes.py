"""Changes to a connection that must not wait for the worker holding its row.

A worker's page ends with the lease check, which holds the connection's row for writing until
the commit. A worker stopped there (SIGSTOP, a VM paused) keeps it until the server ends its
transaction (db_idle_in_transaction_seconds). PATCH /connections/{id} and POST …/sync then
append a `connection_changes` row (its foreign key takes only KEY SHARE, which a row held
FOR NO KEY UPDATE grants) and answer at once. The queue is applied in order, and emptied, by
whoever next holds the row: the worker that claims the connection, the run that ends, or the
next API write, which applies it before its own change.

A queued settings change ends the run under way as a direct one does by moving the epoch: the
lease check refuses every page while one waits (`settings_pending`), and the claim that
applies it moves the epoch. Readers see the connection as it will be (`pending_view`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, exists, select
from sqlalchemy.orm import Session

from app.connections.models import ConnectionChange
from app.models import Connection, ConnectionStatus
from app.security import decrypt_secret, encrypt_secret

SETTINGS, SYNC = "settings", "sync"


def settings_pending(connection_id: Any) -> ColumnElement[bool]:
    """Whether new settings or credentials wait for the connection: its lease is void."""
    return exists().where(
        ConnectionChange.connection_id == connection_id, ConnectionChange.kind == SETTINGS
    )


def any_pending(connection_id: Any) -> ColumnElement[bool]:
    return exists().where(ConnectionChange.connection_id == connection_id)


def credentials(connection: Connection) -> dict[str, Any]:
    return decrypt_secret(connection.secret) if connection.secret else {}


def merge_secret(connection: Connection, fresh: dict[str, Any]) -> None:
    """Store new secret fields over the old ones, encrypted with the newest key."""
    connection.secret = encrypt_secret({**credentials(connection), **fresh})


def apply_settings(
    connection: Connection, public: dict[str, Any], secret: dict[str, Any], *, moved: bool
) -> None:
    """New settings merged over the stored ones. Credentials that go elsewhere now (`moved`)
    replace the stored ones, and the cursors (they belong to the old server or account)."""
    if moved:
        connection.secret = encrypt_secret(secret)
        connection.cursors = {}
    elif secret:
        merge_secret(connection, secret)
    connection.config = {**connection.config, **public}
    connection.last_error = None
    connection.failures = 0


def queue(
    session: Session,
    connection: Connection,
    kind: str,
    *,
    public: dict[str, Any] | None = None,
    secret: dict[str, Any] | None = None,
    moved: bool = False,
) -> ConnectionChange:
    change = ConnectionChange(
        connection_id=connection.id,
        kind=kind,
        config=public or {},
        secret=encrypt_secret(secret) if secret else None,
        moved=moved,
    )
    session.add(change)
    session.flush()
    return change


@dataclass(frozen=True)
class Applied:
    settings: bool = False
    sync: bool = False


def apply_pending(session: Session, connection: Connection) -> Applied:
    """Apply the queue to the connection, whose row the caller holds, and empty it. Only the
    settings: when the next run is due is the caller's (a claim is running it now)."""
    rows = session.scalars(
        select(ConnectionChange)
        .where(ConnectionChange.connection_id == connection.id)
        .order_by(ConnectionChange.id)
    ).all()
    for row in rows:
        if row.kind == SETTINGS:
            secret = decrypt_secret(row.secret) if row.secret else {}
            apply_settings(connection, row.config, secret, moved=row.moved)
    if rows:
        session.execute(
            delete(ConnectionChange).where(ConnectionChange.id.in_([r.id for r in rows]))
        )
    return Applied(
        settings=any(r.kind == SETTINGS for r in rows), sync=any(r.kind == SYNC for r in rows)
    )


def forget(session: Session, connection_ids: Any) -> None:
    """Drop what waits for these connections (their user left: no secret is kept)."""
    session.execute(
        delete(ConnectionChange).where(ConnectionChange.connection_id.in_(connection_ids))
    )


def pending(session: Session, ids: Iterable[int]) -> dict[int, list[ConnectionChange]]:
    """What waits for each of these connections, in order: one query for a page of them."""
    found: dict[int, list[ConnectionChange]] = defaultdict(list)
    wanted = list(ids)
    if not wanted:
        return found
    for row in session.scalars(
        select(ConnectionChange)
        .where(ConnectionChange.connection_id.in_(wanted))
        .order_by(ConnectionChange.id)
    ):
        found[row.connection_id].append(row)
    return found


@dataclass(frozen=True)
class View:
    """A connection as readers see it: with what waits for it applied."""

    config: dict[str, Any]
    status: ConnectionStatus | None  # None: as the row says
    last_error: str | None
    next_sync_at: datetime | None


def pending_view(connection: Connection, waiting: Sequence[ConnectionChange]) -> View:
    config = dict(connection.config)
    status: ConnectionStatus | None = None
    last_error, next_sync_at = connection.last_error, connection.next_sync_at
    for change in waiting:
        if next_sync_at is None or change.requested_at < next_sync_at:
            next_sync_at = change.requested_at
        if change.kind == SETTINGS:
            config.update(change.config)
            status, last_error = ConnectionStatus.pending, None
        elif connection.status in (ConnectionStatus.needs_reconnect, ConnectionStatus.error):
            status = ConnectionStatus.pending
    return View(config, status, last_error, next_sync_at)
