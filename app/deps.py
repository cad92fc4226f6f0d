"""What routes inject: the session (one transaction per request) and the authenticated caller."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select
from sqlalchemy.orm import Session

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


def current_user(session: SessionDep, credentials: Credentials) -> User:
    token = _token(credentials)
    user = session.scalar(
        select(User)
        .join(ApiKey, ApiKey.user_id == User.id)
        .where(ApiKey.key_hash == hash_api_key(token), ApiKey.revoked_at.is_(None))
    )
    if user is None:
        expected = admin_token()
        if expected and same_secret(token, expected):
            raise Forbidden("the instance admin token may only create organizations")
        raise Unauthorized("invalid API key")
    return user


def instance_admin(credentials: Credentials) -> None:
    token = _token(credentials)
    expected = admin_token()
    if not expected or not same_secret(token, expected):
        raise Unauthorized("this call needs the instance admin token (TALLY_ADMIN_TOKEN)")


CurrentUser = Annotated[User, Depends(current_user)]
InstanceAdmin = Annotated[None, Depends(instance_admin)]
