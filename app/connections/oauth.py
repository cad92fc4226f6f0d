"""OAuth consents shared by every provider: the flow kept between start and callback, and the
connections a finished consent creates or reconnects.

The provider's own library builds the flow (google-auth-oauthlib, msal); this module only
keeps it: encrypted, found by the SHA-256 of its `state`, usable once, for a few minutes.
The callback arrives from the user's browser without an API key, so the stored flow is what
ties it to the user who started it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, delete, select
from sqlalchemy.orm import Session

from app.access import require_role, visible_user
from app.connections import service
from app.connections.models import OAuthFlow
from app.errors import BadRequest, Forbidden
from app.models import Connection, ConnectionStatus, Role, User
from app.providers import CONSENTS, PROVIDERS
from app.security import SecretUnreadable, decrypt_secret, encrypt_secret

FLOW_TTL = timedelta(minutes=15)


@dataclass(frozen=True)
class PendingFlow:
    org_id: int
    user_id: int
    provider: str
    flow: dict[str, Any] | None  # None: it can no longer be decrypted (the keys changed)
    expires_at: datetime

    def usable(self, *, now: datetime) -> dict[str, Any]:
        """The flow, or BadRequest if it expired or cannot be read."""
        if self.expires_at < now:
            raise BadRequest("the consent took too long and expired: start the connection again")
        if self.flow is None:
            raise BadRequest("the consent cannot be read any more: start the connection again")
        return self.flow


def _hash(state: str) -> str:
    return hashlib.sha256(state.encode("utf-8")).hexdigest()


def consenting_user(session: Session, caller: User, user_id: int | None) -> User:
    """Who the consent is for: the caller, or (for an admin) another user of the org."""
    if user_id is None or user_id == caller.id:
        return caller
    user = visible_user(session, caller, user_id)  # 404 when not the caller's to see
    require_role(caller, Role.admin)
    return user


def keep_flow(
    session: Session, user: User, provider: str, state: str, flow: dict[str, Any], *, now: datetime
) -> None:
    """Store a started flow; expired flows of everybody are cleared on the way."""
    session.execute(delete(OAuthFlow).where(OAuthFlow.expires_at < now))
    session.add(
        OAuthFlow(
            state_hash=_hash(state),
            org_id=user.org_id,
            user_id=user.id,
            provider=provider,
            flow=encrypt_secret({"flow": json.loads(json.dumps(flow))}),
            expires_at=now + FLOW_TTL,
        )
    )


def take_flow(session: Session, provider: str, state: str | None) -> PendingFlow:
    """The flow started with `state`, removed so it cannot be used twice (check it with
    `PendingFlow.usable` once this transaction is committed, so a stale flow is gone too);
    BadRequest if the state is missing, unknown, used, or another provider's."""
    if not state:
        raise BadRequest("the callback has no state: start the connection again")
    row = session.scalar(
        select(OAuthFlow).where(OAuthFlow.state_hash == _hash(state)).with_for_update()
    )
    if row is None or row.provider != provider:
        raise BadRequest("unknown or already used consent: start the connection again")
    session.delete(row)
    try:
        flow: dict[str, Any] | None = decrypt_secret(row.flow)["flow"]
    except SecretUnreadable:
        flow = None
    return PendingFlow(row.org_id, row.user_id, provider, flow, row.expires_at)


def connect(
    session: Session,
    user: User,
    provider: str,
    *,
    account: str,
    config: dict[str, Any],
    secret: dict[str, Any],
) -> Connection:
    """The user's connection to `account` at `provider`: created, or (a reconnect) given the
    new secret and configuration, its error cleared, and due at once. Cursors are kept, so a
    reconnect resumes where the last sync stopped. An organization's account (a Slack
    workspace) goes through `_workspace` first."""
    kind = PROVIDERS.get(provider)
    key = kind.identity if kind else "account"
    config = {**config, "account": account}
    existing = _of(session, provider, key, config, Connection.user_id == user.id)
    if not existing and kind is not None and kind.workspace:
        reader = _workspace(session, user, provider, key, config, secret)
        if isinstance(reader, Connection):
            existing = [reader]
        elif reader == OWN_ONLY:
            config = {**config, "own_only": True}
    if existing:
        # a run under way holds the old tokens: stopped, or it could write a rotated one over
        # the new consent's secret; queued if a worker holds the row (changes.py)
        return service.change_settings(session, existing[0], config, secret, moved=False)
    connection = Connection(
        org_id=user.org_id,
        user_id=user.id,
        provider=provider,
        config=config,
        secret=encrypt_secret(secret),
        cursors={},
    )
    session.add(connection)
    service.requeue(connection)
    session.flush()
    return connection


def may_start(session: Session, user: User, consent: str) -> None:
    """Refuse early what the callback would refuse: a member who is not an admin starting
    the first install of an organization's account (`_workspace`), before they go through
    the provider's consent for nothing."""
    for provider in CONSENTS.get(consent, ()):
        kind = PROVIDERS[provider]
        if not kind.workspace or user.role == Role.admin:
            continue
        connections = session.scalars(
            select(Connection).where(
                Connection.org_id == user.org_id, Connection.provider == provider
            )
        )
        if not any(not c.config.get("own_only") for c in connections):
            raise Forbidden(_FIRST_INSTALL.format(provider=provider))


_FIRST_INSTALL = (
    "an admin installs {provider} for the organization first: it counts every member's "
    "conversations (docs/slack.md)"
)
OWN_ONLY = "own_only"
ALL = "all"


def _workspace(
    session: Session,
    user: User,
    provider: str,
    key: str,
    config: dict[str, Any],
    secret: dict[str, Any],
) -> Connection | str:
    """Who reads an organization's account that this user has no connection to yet. Its
    first install must be an admin's (it counts every member's shared conversations) and
    becomes the account's connection (ALL). An account already read by a working connection
    gets a second one for what this user's own token sees, their DMs (OWN_ONLY); one whose
    connection is broken (revoked, or its owner left) is taken over by the admin who
    installs again: returned, handed to them, its cursors kept, nothing read twice."""
    every = _of(session, provider, key, config, Connection.org_id == user.org_id)
    readers = [c for c in every if not c.config.get("own_only")]
    if not readers:
        if user.role != Role.admin:
            raise Forbidden(_FIRST_INSTALL.format(provider=provider))
        return ALL
    working = [c for c in readers if not _broken(session, c)]
    if working or user.role != Role.admin:
        if not secret.get("user_token"):
            raise BadRequest(
                f"this {provider} workspace is already connected; an install of your own "
                "reads your direct messages, which needs the user scopes you did not grant"
            )
        return OWN_ONLY
    broken = readers[0]
    broken.user_id = user.id
    return broken


def _of(
    session: Session,
    provider: str,
    key: str,
    config: dict[str, Any],
    whose: ColumnElement[bool],
) -> list[Connection]:
    """`whose` connections at `provider` to the account `config[key]` names."""
    found = session.scalars(select(Connection).where(whose, Connection.provider == provider))
    return [c for c in found if c.config.get(key) == config.get(key)]


def _broken(session: Session, connection: Connection) -> bool:
    owner = session.get(User, connection.user_id)
    return (
        connection.status == ConnectionStatus.needs_reconnect
        or owner is None
        or owner.deactivated_at is not None
    )
