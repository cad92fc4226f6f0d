"""Connections: create, read, change, queue a sync, delete and purge; secrets (encrypted,
write-only). A worker's leases and the outcomes of its runs are in leases.py."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import delete, exists, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from app import providers
from app.access import require_active, require_role, visible_user, visible_user_ids
from app.activities.models import Activity, Message, MessageAddress, Observation
from app.config import settings
from app.connections import changes
from app.connections.leases import release
from app.connections.schemas import config_defaults
from app.dbtimeouts import allow_statements, lock_refused, lock_wait
from app.errors import Conflict, Forbidden, NotFound, Unprocessable
from app.models import Connection, ConnectionStatus, Role, User, utcnow
from app.security import encrypt_secret
from app.webhooks.outbox import announce_needs_reconnect


def split_secret(provider: str, config: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Separate the write-only secret fields from the readable configuration."""
    secret_names = providers.secret_fields(provider)
    public = {k: v for k, v in config.items() if k not in secret_names}
    secret = {k: v for k, v in config.items() if k in secret_names}
    return public, secret


def create(
    session: Session, caller: User, *, user_id: int, provider: str, config: dict[str, Any]
) -> Connection:
    kind = providers.PROVIDERS.get(provider)
    if user_id != caller.id or (kind is not None and kind.workspace):
        # a workspace's bot token reads every member's shared conversations: an admin's
        require_role(caller, Role.admin)
    owner = visible_user(session, caller, user_id)
    require_active(owner)
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


def _locked(
    session: Session, connection: Connection, *, wait: float, delete: bool = False
) -> Connection:
    """The connection's row, locked for this request's write and read afresh, without
    queueing behind a sync: a worker's page holds the row with KEY SHARE (what its rows'
    foreign keys take) until its last statements, and FOR NO KEY UPDATE does not wait for
    that; a delete must (FOR UPDATE). Waiting longer than `wait` seconds means a worker
    stopped while it held the row: 503 with Retry-After (app/dbtimeouts.py)."""
    query = (
        select(Connection)
        .where(Connection.id == connection.id)
        .with_for_update(key_share=not delete)
        .execution_options(populate_existing=True)
    )
    with lock_wait(session, wait):
        locked = session.scalars(query).one_or_none()
    if locked is None:
        raise NotFound(f"connection {connection.id} not found")
    return locked


def moved_endpoint(provider: str, stored: dict[str, Any], given: dict[str, Any]) -> list[str]:
    """The endpoint fields (providers.endpoint_fields) `given` changes, defaults counted."""
    before = {**config_defaults(provider), **stored}
    return [
        f for f in providers.endpoint_fields(provider) if f in given and given[f] != before.get(f)
    ]


def update_config(
    session: Session, caller: User, connection_id: int, config: dict[str, Any]
) -> Connection:
    """Change settings or credentials (a reconnect): merged over the old ones, synced at once.

    A stored secret is only ever sent to the endpoint it was given for: changing where it
    goes (providers.endpoint_fields) needs every secret field again, and replaces the
    secret and the cursors (they belong to the old server or account). If a worker holds the
    row, the change is queued for it (changes.py) rather than waited for."""
    connection = get(session, caller, connection_id)
    if connection.user_id != caller.id and caller.role != Role.admin:
        raise Forbidden("only the owner or an admin may change a connection")
    require_active(session.get_one(User, connection.user_id))
    public, secret = split_secret(connection.provider, config)
    current = changes.pending_view(
        connection, changes.pending(session, [connection.id])[connection.id]
    ).config
    moved = moved_endpoint(connection.provider, current, public)
    missing = [f for f in providers.secret_fields(connection.provider) if f not in secret]
    if moved and missing:
        raise Unprocessable(
            f"config: changing {', '.join(moved)} needs the {' and '.join(missing)} again: "
            "stored credentials are only ever sent to the server and account they were "
            "given for"
        )
    return change_settings(session, connection, public, secret, moved=bool(moved))


def change_settings(
    session: Session,
    connection: Connection,
    public: dict[str, Any],
    secret: dict[str, Any],
    *,
    moved: bool,
) -> Connection:
    """Apply new settings and a run with them, or queue them if a worker holds the row."""
    held = _hold(session, connection)
    if held is None:
        changes.queue(
            session, connection, changes.SETTINGS, public=public, secret=secret, moved=moved
        )
        return connection
    changes.apply_settings(held, public, secret, moved=moved)
    requeue(held)
    return held


def window_start(config: dict[str, Any], *, now: datetime) -> date:
    """The first day a connection's sync reads: `config.history_from` once widened, else
    `backfill_days` before today (UTC), as app/sync/runner.py computes it."""
    widened = config.get("history_from")
    if isinstance(widened, str):
        return date.fromisoformat(widened)
    return (now - timedelta(days=settings.backfill_days)).date()


def widen_history(session: Session, caller: User, connection_id: int, start: date) -> Connection:
    """Reach further back: the window starts on `start` from now on, and a run is due at once
    that fetches only the stretch not read yet. Guarded like a settings change, and saved as
    one (`config.history_from`), so it too is queued if a worker holds the row."""
    connection = get(session, caller, connection_id)
    if connection.user_id != caller.id and caller.role != Role.admin:
        raise Forbidden("only the owner or an admin may widen a connection's window")
    require_active(session.get_one(User, connection.user_id))
    able = providers.widens(connection.provider)
    if not able:
        raise Conflict(
            f"{connection.provider} connections have no window: nothing is fetched"
            if able is None
            else f"{connection.provider} connections cannot reach further back yet: their "
            "connector cannot fetch only the older stretch (docs/operations.md, Reaching "
            "further back)"
        )
    now = utcnow()
    config = changes.pending_view(
        connection, changes.pending(session, [connection.id])[connection.id]
    ).config
    if config.get("history_from") == start.isoformat():
        return connection  # asked again (a retried request): nothing to change
    if start > now.date():
        raise Conflict(f"from: {start} is in the future (today is {now.date()} in UTC)")
    current = window_start(config, now=now)
    if start >= current:
        raise Conflict(
            f"from: the window already starts on {current}; a backfill only reaches further "
            "back, to an earlier day"
        )
    return change_settings(
        session, connection, {"history_from": start.isoformat()}, {}, moved=False
    )


def _hold(session: Session, connection: Connection) -> Connection | None:
    """The connection's row held for this request, with what was queued for it applied; or
    None if a worker holds it (not granted within db_connection_lock_seconds): the caller
    queues its change then. Only a savepoint is undone then: the request goes on."""
    try:
        with session.begin_nested():
            held = _locked(session, connection, wait=settings.db_connection_lock_seconds)
            if changes.apply_pending(session, held).settings:
                requeue(held)
    except OperationalError as error:
        if not lock_refused(error):
            raise
        session.refresh(connection)
        return None
    return held


def requeue(connection: Connection) -> None:
    """New settings or credentials: a run with them is due now, and a run under way (it read
    the old ones) is stopped: its next lease check fails, so none of its writes lands."""
    connection.status = ConnectionStatus.pending
    connection.last_error = None
    connection.failures = 0
    connection.next_sync_at = utcnow()
    if connection.lease_owner is not None:
        connection.lease_epoch += 1
        release(connection)


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


def _queued(connection: Connection, now: datetime) -> bool:
    waiting = connection.status in (ConnectionStatus.needs_reconnect, ConnectionStatus.error)
    return not waiting and connection.next_sync_at is not None and connection.next_sync_at <= now


def request_sync(session: Session, caller: User, connection_id: int) -> Connection:
    """Due now; during a run, the next run starts right after it (record_success keeps it).
    If a worker holds the row, the request is queued for it (changes.py)."""
    connection = get(session, caller, connection_id)
    require_active(session.get_one(User, connection.user_id))
    if _queued(connection, utcnow()):
        return connection  # already due: nothing to write, no row to wait for
    held = _hold(session, connection)
    if held is None:
        if not _queued(connection, utcnow()):  # the holder may have queued a run meanwhile
            changes.queue(session, connection, changes.SYNC)
        return connection
    held.next_sync_at = utcnow()
    if held.status in (ConnectionStatus.needs_reconnect, ConnectionStatus.error):
        held.status = ConnectionStatus.pending
    return held


def remove(session: Session, caller: User, connection_id: int, *, purge: bool) -> None:
    connection = get(session, caller, connection_id)
    if connection.user_id != caller.id and caller.role != Role.admin:
        raise Forbidden("only the owner or an admin may delete a connection")
    connection = _locked(session, connection, wait=settings.db_lock_timeout_seconds, delete=True)
    if purge:  # as much as a worker writes: the worker's statement timeout
        allow_statements(session, settings.db_worker_statement_timeout_seconds)
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
    session.execute(
        delete(MessageAddress).where(
            MessageAddress.org_id == connection.org_id, MessageAddress.message_id.in_(only_mine)
        )
    )
    session.execute(delete(Message).where(Message.id.in_(only_mine)))
    directory = load_directory(session, connection.org_id)
    events.forget_connection(session, connection, directory)


# --- claims and outcomes (the worker's side) ---------------------------------------------
#
def stop_for_user(session: Session, user_id: int) -> int:
    """A deactivated user's connections never sync again (app/users/lifecycle.py): secrets
    erased, never due (claim_due wants a next_sync_at and skips needs_reconnect, push_due
    skips it too), and the lease's owner and epoch changed, so a worker syncing one right now
    fails its next lease check and writes nothing more. How many were stopped."""
    changes.forget(session, select(Connection.id).where(Connection.user_id == user_id))
    newly = session.execute(
        select(Connection.id, Connection.org_id, Connection.provider).where(
            Connection.user_id == user_id, Connection.status != ConnectionStatus.needs_reconnect
        )
    ).all()
    result = session.execute(
        update(Connection)
        .where(Connection.user_id == user_id)
        .values(
            secret=None,
            status=ConnectionStatus.needs_reconnect,
            next_sync_at=None,
            last_error="Stopped for good: the user was deactivated",
            lease_owner=None,
            lease_until=None,
            lease_epoch=Connection.lease_epoch + 1,
        )
        .execution_options(synchronize_session=False)
    )
    for connection_id, org_id, provider in newly:
        announce_needs_reconnect(
            session,
            org_id=org_id,
            connection_id=connection_id,
            user_id=user_id,
            provider=provider,
            reason="Stopped for good: the user was deactivated",
        )
    return int(getattr(result, "rowcount", 0) or 0)
