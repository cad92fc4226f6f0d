"""Slack's Events API (docs/slack.md, "Events"): what polling cannot see, at once.

Slack calls `POST /api/v1/push/slack`, signed with the app's signing secret
(TALLY_SLACK_SIGNING_SECRET; connectors/slack/events.py verifies and reads it):
- a message deleted (or a thread parent turned into a tombstone) in a channel Tally reads is
  taken back now (app.chat.forget: its conversation is derived again without it);
  polling never notices a deletion, since it reads only what is new;
- anything else posted makes the workspace's connections due now (the sync reads it with its
  sender mapped), as Google's and Microsoft's pushes do; polling stays the floor.
Answered within Slack's 3 seconds (one short transaction); a retry of the same event changes
nothing (a message forgotten twice is forgotten once).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

import structlog
from fastapi import APIRouter, Depends, Header, Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from app import ratelimit
from app.chat.forget import forget
from app.config import settings
from app.connections import service
from app.deps import SessionDep
from app.errors import BadRequest, NotFound, Unauthorized
from app.models import Connection, utcnow
from connectors.slack import events

log = structlog.get_logger(__name__)
router = APIRouter(tags=["push"])

PATH = "/push/slack"


async def _raw_body(request: Request) -> bytes:
    """The body exactly as sent: what the signature covers."""
    return await request.body()


@router.post(
    PATH,
    summary="Slack's Events API: deleted messages taken back, new ones make the workspace due",
    description="Signed by Slack with the app's signing secret (X-Slack-Signature, "
    "X-Slack-Request-Timestamp within 5 minutes): 401 otherwise, and such failures count "
    "against the client's address (429 past the limit). 404 while "
    "TALLY_SLACK_SIGNING_SECRET is unset. Answers `{challenge}` to Slack's url_verification, "
    "else `{ok: true}`, also for events of workspaces Tally does not read.",
    # failures only: Slack sends every workspace's events from shared addresses
    dependencies=[Depends(ratelimit.open_endpoint(401))],
)
def slack_events(
    session: SessionDep,
    body: Annotated[bytes, Depends(_raw_body)],
    x_slack_request_timestamp: Annotated[str | None, Header(max_length=20)] = None,
    x_slack_signature: Annotated[str | None, Header(max_length=200)] = None,
) -> dict[str, Any]:
    secret = settings.slack_signing_secret
    if secret is None:
        raise NotFound("Slack events are not taken here: TALLY_SLACK_SIGNING_SECRET is unset")
    signed = events.verified(
        secret.get_secret_value(), body, x_slack_request_timestamp, x_slack_signature
    )
    if not signed:
        raise Unauthorized("not signed by Slack with this app's signing secret, or too old")
    try:
        payload = json.loads(body)
    except ValueError:
        raise BadRequest("the body is not JSON") from None
    answer: dict[str, Any] = {"ok": True}
    for event in events.read(payload):
        if isinstance(event, events.Challenge):
            answer = {"challenge": event.value}
        elif isinstance(event, events.Deleted):
            _forget(session, event)
        else:
            _due(session, event.team)
    return answer


def _workspace(session: Session, team: str) -> list[Connection]:
    """The connections reading this workspace, in every organization (few: one per workspace
    and one per member reading their own DMs)."""
    found = session.scalars(select(Connection).where(Connection.provider == "slack"))
    return [c for c in found if c.config.get("team_id") == team]


def _forget(session: Session, event: events.Deleted) -> None:
    for org_id in sorted({c.org_id for c in _workspace(session, event.team)}):
        result = forget(
            session, org_id, source="slack", channel_id=event.channel, message_ids=[event.ts]
        )
        log.info(
            "slack_message_deleted",
            org_id=org_id,
            removed=result.activities_removed,
            added=result.activities_added,
        )


def _due(session: Session, team: str) -> None:
    now = utcnow()
    for connection in _workspace(session, team):
        service.push_due(connection, now=now)
