"""Microsoft Graph change notifications: a trigger that marks a connection due, nothing more.

Graph calls `POST /api/v1/push/microsoft` (docs/microsoft.md):
- with `?validationToken=…` when a subscription is created or renewed: the token is echoed
  back as text/plain (the handshake that proves this URL wants the notifications);
- with `{"value": [notification…]}` for changes and for lifecycle events (answered 200, empty)
  (`reauthorizationRequired`, `subscriptionRemoved`, `missed`). Each notification carries the
  `clientState` the connector subscribed with: "<connection id>.<HMAC-SHA256 of it with
  TALLY_MICROSOFT_PUSH_SECRET>". A valid one makes its connection due now (unless it waits
  for a reconnect, a Retry-After or an error backoff: push never bypasses those); a lifecycle
  event also asks the next sync to renew the connection's subscriptions. Notifications whose
  clientState does not verify are ignored; a request with none that verifies is refused (403).

The sync itself (delta queries) does the work; polling every TALLY_SYNC_INTERVAL_SECONDS stays
the floor when notifications are lost.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Body, Depends, Query
from fastapi.responses import PlainTextResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from app import ratelimit
from app.config import settings
from app.connections import push_tokens, service
from app.deps import SessionDep
from app.errors import Forbidden
from app.models import Connection, utcnow

log = structlog.get_logger(__name__)
router = APIRouter(tags=["push"])

PATH = "/push/microsoft"
LIFECYCLE_KEY = "microsoft_lifecycle"  # in Connection.cursors: when a renewal was asked for
_REFUSED = "no notification of this request carries a valid clientState"


def notification_url() -> str:
    return f"{settings.public_url.rstrip('/')}/api/v1{PATH}"


def client_state(connection_id: int) -> str:
    """What the connection's subscriptions carry (at most 128 characters for Graph)."""
    return push_tokens.sign("microsoft", settings.microsoft_push_secret, connection_id)


def verified_connection(state: str | None) -> int | None:
    """The connection id a clientState was made for, None when it does not verify."""
    return push_tokens.verify("microsoft", settings.microsoft_push_secret, state)


class Notification(BaseModel):
    model_config = ConfigDict(extra="allow")

    subscriptionId: str | None = None
    clientState: str | None = None
    changeType: str | None = None
    resource: str | None = None
    lifecycleEvent: str | None = None


class Notifications(BaseModel):
    model_config = ConfigDict(extra="allow")

    value: list[Notification] = Field(default_factory=list, max_length=1000)


_NONE = Notifications()  # the validation handshake comes without a body


@router.post(
    PATH,
    summary="Microsoft Graph change notifications (validation handshake, changes, lifecycle)",
    description="A request with no verifying clientState counts against the client's "
    "address; too many answer 429.",
    # failures only: Graph sends every tenant's notifications from shared addresses
    dependencies=[Depends(ratelimit.open_endpoint(403))],
    response_class=Response,
    responses={
        200: {
            "description": "the validation token echoed; empty for notifications (accepted: "
            "the connections concerned are due now)",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        },
    },
)
def microsoft_notifications(
    session: SessionDep,
    body: Annotated[Notifications, Body()] = _NONE,
    validation_token: Annotated[str | None, Query(alias="validationToken", max_length=1024)] = None,
) -> PlainTextResponse:
    if validation_token is not None:
        return PlainTextResponse(validation_token, status_code=200)
    due: dict[int, bool] = {}  # connection id -> a lifecycle event asked for a renewal
    for notification in body.value:
        connection_id = verified_connection(notification.clientState)
        if connection_id is None:
            continue
        due[connection_id] = due.get(connection_id, False) or bool(notification.lifecycleEvent)
    if not due:
        log.warning("push_refused", provider="microsoft")
        raise Forbidden(_REFUSED)
    now = utcnow()
    connections = session.scalars(
        select(Connection).where(Connection.id.in_(due), Connection.provider == "microsoft")
    )
    for connection in connections:
        if due[connection.id]:  # reassign: JSON columns do not track in-place edits
            connection.cursors = {**connection.cursors, LIFECYCLE_KEY: now.isoformat()}
        service.push_due(connection, now=now)
    log.info("push_received", provider="microsoft", connections=len(due))
    return PlainTextResponse("", status_code=200)


def renewal_requested(cursors: dict[str, Any]) -> datetime | None:
    """When a lifecycle event last asked for the connection's subscriptions to be renewed."""
    try:
        return datetime.fromisoformat(str(cursors[LIFECYCLE_KEY]))
    except (KeyError, ValueError):
        return None
