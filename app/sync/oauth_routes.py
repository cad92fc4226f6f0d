"""The OAuth consent routes shared by every OAuth provider (Google, Microsoft, Slack).

`start` is called with the user's API key and answers the provider's consent URL (or
redirects there); the provider sends the browser back to `callback`, which needs no API key:
the kept flow, found by its `state` and usable once, says whose consent it is. Network calls
to the provider happen outside any transaction.
"""

from __future__ import annotations

from typing import Annotated

import structlog
from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, Field

from app import ratelimit
from app.config import settings
from app.connections import oauth
from app.connections.schemas import ConnectionRead, read
from app.db import session_scope
from app.deps import CurrentUser, SessionDep
from app.errors import BadRequest, Conflict, NotFound
from app.models import User, utcnow
from app.providers import CONSENTS
from app.schemas import ErrorBody, id_query
from app.sync.registry import oauth_client
from app.users import service as users
from connectors.base import AuthExpired, ConnectorError
from connectors.oauth import OAuthClient

log = structlog.get_logger(__name__)
router = APIRouter(tags=["connections"])


class OAuthStart(BaseModel):
    authorization_url: str = Field(description="send the user's browser here to consent")
    expires_in: int = Field(description="seconds the consent may take before it must restart")


class OAuthConnected(BaseModel):
    account: str = Field(description="the account the user consented with")
    connections: list[ConnectionRead]
    aliases_added: list[str] = Field(description="send-as addresses added to the user")


def redirect_uri(name: str) -> str:
    return f"{settings.public_url.rstrip('/')}/api/v1/connections/oauth/{name}/callback"


def _client(name: str) -> OAuthClient:
    if name not in CONSENTS:
        raise NotFound(f"no OAuth provider {name!r}: use one of {sorted(CONSENTS)}")
    client = oauth_client(name)
    if client is None:
        raise BadRequest(f"{name} is not configured on this instance (no client id)")
    return client


@router.get(
    "/connections/oauth/{name}/start",
    summary="Start connecting a Google or Microsoft account or a Slack workspace: the consent "
    "URL (or a redirect)",
    response_model=OAuthStart,
    responses={
        307: {"description": "redirect to the consent page (redirect=true)"},
        409: {"model": ErrorBody, "description": "the user is deactivated"},
    },
)
def oauth_start(
    name: str,
    session: SessionDep,
    caller: CurrentUser,
    user_id: Annotated[int | None, id_query("admin only: another user")] = None,
    redirect: Annotated[bool, Query(description="answer 307 to the consent URL")] = False,
) -> OAuthStart | RedirectResponse:
    user: User = oauth.consenting_user(session, caller, user_id)
    if user.deactivated_at is not None:
        raise Conflict(f"user {user.id} is deactivated: nothing syncs for them any more")
    client = _client(name)
    oauth.may_start(session, user, name)
    started = client.start(redirect_uri(name), login_hint=user.email)
    oauth.keep_flow(session, user, name, started.state, started.flow, now=utcnow())
    if redirect:
        return RedirectResponse(started.authorization_url, status_code=307)
    return OAuthStart(
        authorization_url=started.authorization_url,
        expires_in=int(oauth.FLOW_TTL.total_seconds()),
    )


@router.get(
    "/connections/oauth/{name}/callback",
    summary="Where the provider sends the browser back: creates (or reconnects) the connections",
    description="Needs no API key: the state proves whose consent it is. Failed callbacks "
    "(unknown, spent or expired state, refused consent) count against the client's address; "
    "too many answer 429 (docs/operations.md, Rate limits).",
    # a made-up state is a guess like a made-up key
    dependencies=[Depends(ratelimit.open_endpoint(400, 401, 403, 404))],
)
def oauth_callback(name: str, request: Request) -> OAuthConnected:
    client = _client(name)
    params = dict(request.query_params)
    with session_scope() as session:  # the flow is spent whatever happens next
        pending = oauth.take_flow(session, name, params.get("state"))
    flow = pending.usable(now=utcnow())
    try:
        consent = client.finish(flow, params, redirect_uri(name))
    except AuthExpired as error:
        raise BadRequest(f"the consent was not given: {error}") from None
    except ConnectorError as error:
        raise BadRequest(f"{name} did not complete the consent: {error}") from None
    with session_scope() as session:
        user = session.get(User, pending.user_id)
        if user is None or user.org_id != pending.org_id or user.deactivated_at is not None:
            raise NotFound("the user who started this consent no longer exists")
        connections = [
            oauth.connect(
                session,
                user,
                provider,
                account=consent.account,
                # a consent's deviations are its mail's: a calendar of it counts exactly
                config={
                    k: v
                    for k, v in consent.config.items()
                    if k != "deviations" or provider != "google_calendar"
                },
                secret=dict(consent.secret),
            )
            for provider in consent.providers
        ]
        added = users.learn_addresses(session, user, [consent.account, *consent.aliases])
        answer = OAuthConnected(
            account=consent.account,
            connections=read(session, connections),
            aliases_added=added,
        )
    log.info("oauth_connected", provider=name, user_id=pending.user_id, account=answer.account)
    return answer
