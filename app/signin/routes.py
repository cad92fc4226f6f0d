"""Routes of the dashboard's sign-in: links an admin makes, their exchange for a key, and
sign-out."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response, status

from app import ratelimit
from app.config import settings
from app.deps import Credentials, CurrentUser, SessionDep
from app.schemas import CONFLICT_ERROR, ErrorBody
from app.signin import schemas, service
from app.users.schemas import Me

router = APIRouter(tags=["sign-in"])


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description}


def _base_url(request: Request) -> str:
    """TALLY_PUBLIC_URL when the operator set it (to anything but its default), else the
    address this request came to. Judged by value, not by pydantic's fields-set record, which
    any assignment (a test's monkeypatch undone) leaves marked."""
    if settings.public_url != type(settings).model_fields["public_url"].default:
        return settings.public_url
    return str(request.base_url)


@router.post(
    "/users/{user_id}/sign-in-links",
    status_code=status.HTTP_201_CREATED,
    summary="Make a one-time sign-in link to the dashboard for a user (admin)",
    description="The link opens the dashboard, which trades it (POST /sign-in) for a new API "
    "key of the user. It works once, within 24 hours; only its hash is stored. The address is "
    "TALLY_PUBLIC_URL when set, else the one this request came to.",
    responses={409: _error("The user is deactivated")},
)
def create_link(
    user_id: int, request: Request, session: SessionDep, caller: CurrentUser
) -> schemas.SignInLinkCreated:
    token, expires_at = service.create_link(session, caller, user_id)
    return schemas.SignInLinkCreated(
        url=service.link_url(_base_url(request), token), expires_at=expires_at
    )


@router.post(
    "/sign-in",
    summary="Trade a sign-in link's token for a new API key of its user (no key needed)",
    description="401 when the token is unknown, already used or expired. Failures count "
    "against the client's address like bad API keys (429 once over the limit).",
    dependencies=[Depends(ratelimit.open_endpoint(401))],
)
def sign_in(data: schemas.SignIn, session: SessionDep) -> schemas.SignedIn:
    user, key = service.redeem(session, data.token)
    me = Me(
        id=user.id,
        email=user.email,
        name=user.name,
        role=user.role,
        team_id=user.team_id,
        org_id=user.org_id,
    )
    return schemas.SignedIn(api_key=key, user=me)


@router.post(
    "/sign-out",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Revoke the calling key, when a sign-in link gave it",
    description="The dashboard's sign-out. A key that no sign-in link gave (one pasted, one a "
    "script uses) is not revoked: 409, and it stays valid.",
    responses={204: {"description": "the key is revoked"}, **CONFLICT_ERROR},
)
def sign_out(caller: CurrentUser, session: SessionDep, credentials: Credentials) -> Response:
    assert credentials is not None  # CurrentUser authenticated it
    service.sign_out(session, caller, credentials.credentials)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
