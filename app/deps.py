"""What routes inject: the session (one transaction per request) and the authenticated caller."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select
from sqlalchemy.orm import Session

from app import ratelimit
from app.db import get_session
from app.errors import Forbidden, Unauthorized
from app.models import ApiKey, User
from app.security import admin_token, hash_api_key, same_secret

bearer = HTTPBearer(auto_error=False, description="an API key, or the instance admin token")

SessionDep = Annotated[Session, Depends(get_session, scope="function")]
Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


def _token(credentials: HTTPAuthorizationCredentials | None) -> str:
    if credentials is None or not credentials.credentials:
        raise Unauthorized("missing bearer token")
    return credentials.credentials


def current_user(request: Request, session: SessionDep, credentials: Credentials) -> User:
    token = _token(credentials)
    user = session.scalar(
        select(User)
        .join(ApiKey, ApiKey.user_id == User.id)
        .where(
            ApiKey.key_hash == hash_api_key(token),
            ApiKey.revoked_at.is_(None),
            User.deactivated_at.is_(None),  # the keys go too; this holds if one was missed
        )
    )
    if user is None:
        expected = admin_token()
        if expected and same_secret(token, expected):
            raise Forbidden("the instance admin token may only create organizations")
        ratelimit.failed(ratelimit.auth_subjects(request, token), "authentications")
        raise Unauthorized("invalid API key")
    return user


def instance_admin(request: Request, credentials: Credentials) -> None:
    # an operator may choose a short token: an address over its limit is refused before
    # the comparison, so a right guess does not get through either
    subjects = ratelimit.auth_subjects(request, None)
    ratelimit.refuse_if_over(subjects, "authentications")
    token = _token(credentials)
    expected = admin_token()
    if not expected or not same_secret(token, expected):
        ratelimit.failed(subjects, "authentications")
        raise Unauthorized("this call needs the instance admin token (TALLY_ADMIN_TOKEN)")


CurrentUser = Annotated[User, Depends(current_user)]
InstanceAdmin = Annotated[None, Depends(instance_admin)]
