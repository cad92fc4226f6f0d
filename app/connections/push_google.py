"""Google push notifications: a trigger that marks a connection due, nothing more.

- Gmail (`users.watch` -> Cloud Pub/Sub -> a push subscription) calls
  `POST /api/v1/push/google/gmail?token=<TALLY_GOOGLE_PUSH_TOKEN>` with
  `{"message": {"data": base64 of {"emailAddress", "historyId"}, ...}, "subscription": ...}`.
  The token is checked (403 otherwise); the gmail connections of that address are due now.
  Unknown addresses are acknowledged (204) so Pub/Sub does not redeliver them forever.
- Calendar (`events.watch` channels) calls `POST /api/v1/push/google/calendar` with the
  headers `X-Goog-Channel-ID`, `X-Goog-Channel-Token`, `X-Goog-Resource-State`. The token is
  "<connection id>.<HMAC-SHA256 of it with TALLY_GOOGLE_PUSH_TOKEN>", set by the connector
  when it opens the channel; one that does not verify is refused (403).

Push never bypasses a reconnect, a Retry-After or an error backoff, and never syncs by
itself: the worker's normal history / sync-token pass does the work, and polling every
TALLY_SYNC_INTERVAL_SECONDS stays the floor when notifications are lost.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends, Header, Query, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select

from app import ratelimit
from app.config import settings
from app.connections import push_tokens, service
from app.deps import SessionDep
from app.errors import BadRequest, Forbidden
from app.models import Connection, utcnow

log = structlog.get_logger(__name__)
router = APIRouter(tags=["push"])

GMAIL_PATH = "/push/google/gmail"
CALENDAR_PATH = "/push/google/calendar"
CHANNEL_PREFIX = "tally-"


def calendar_address() -> str:
    return f"{settings.public_url.rstrip('/')}/api/v1{CALENDAR_PATH}"


def channel_token(connection_id: int) -> str:
    """The X-Goog-Channel-Token of the connection's Calendar channels (≤ 256 characters)."""
    return push_tokens.sign("google", settings.google_push_token, connection_id)


def verified_connection(token: str | None) -> int | None:
    return push_tokens.verify("google", settings.google_push_token, token)


def _mark_due(connections: list[Connection]) -> int:
    now = utcnow()
    return sum(service.push_due(c, now=now) for c in connections)


class PubSubMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    data: str = Field("", max_length=10_000)
    messageId: str | None = None


class PubSubPush(BaseModel):
    model_config = ConfigDict(extra="allow")

    message: PubSubMessage
    subscription: str | None = None


@router.post(
    GMAIL_PATH,
    summary="Gmail push (Cloud Pub/Sub push subscription): marks the mailbox's sync due",
    description="A wrong token counts against the client's address; an address over its "
    "limit is answered 429 before the token is compared (the operator chose it).",
    # the token is the operator's choice and may be short: brake before comparing
    dependencies=[Depends(ratelimit.open_endpoint(403, ahead=True))],
    status_code=204,
    response_class=Response,
    responses={
        204: {"description": "acknowledged"},
    },
)
def gmail_push(
    body: PubSubPush,
    session: SessionDep,
    token: Annotated[str | None, Query(max_length=512)] = None,
) -> Response:
    expected = settings.google_push_token
    if (
        expected is None
        or token is None
        or not hmac.compare_digest(token.encode(), expected.get_secret_value().encode())
    ):
        log.warning("push_refused", provider="gmail")
        raise Forbidden("the push token is missing or wrong")
    try:
        padded = body.message.data + "=" * (-len(body.message.data) % 4)
        payload: Any = json.loads(base64.b64decode(padded, altchars=b"-_"))
        address = str(payload["emailAddress"]).strip().lower()
    except (binascii.Error, ValueError, KeyError, TypeError):
        raise BadRequest("message.data is not a Gmail notification") from None
    account = func.lower(Connection.config["account"].as_string())
    query = select(Connection).where(Connection.provider == "gmail", account == address)
    chosen = list(session.scalars(query))
    marked = _mark_due(chosen)
    log.info("push_received", provider="gmail", connections=len(chosen), marked=marked)
    return Response(status_code=204)


@router.post(
    CALENDAR_PATH,
    summary="Google Calendar push (events.watch channel): marks the calendar's sync due",
    description="A channel token that does not verify counts against the client's address; "
    "too many answer 429.",
    dependencies=[Depends(ratelimit.open_endpoint(403))],
    status_code=204,
    response_class=Response,
    responses={
        204: {"description": "acknowledged"},
    },
)
def calendar_push(
    session: SessionDep,
    channel_token_header: Annotated[
        str | None, Header(alias="X-Goog-Channel-Token", max_length=512)
    ] = None,
    resource_state: Annotated[
        str | None, Header(alias="X-Goog-Resource-State", max_length=64)
    ] = None,
) -> Response:
    connection_id = verified_connection(channel_token_header)
    if connection_id is None:
        log.warning("push_refused", provider="google_calendar")
        raise Forbidden("the channel token is missing or does not verify")
    if resource_state == "sync":  # the channel's first message: nothing changed yet
        return Response(status_code=204)
    connection = session.get(Connection, connection_id)
    chosen = [connection] if connection and connection.provider == "google_calendar" else []
    marked = _mark_due(chosen)
    log.info("push_received", provider="google_calendar", connections=len(chosen), marked=marked)
    return Response(status_code=204)
