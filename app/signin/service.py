"""Sign-in links: an admin makes one for a user of the organization; the dashboard trades it,
once and before it expires, for a new API key of that user. Tokens are stored hashed."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from app.access import require_active, require_role, visible_user
from app.errors import Conflict, Unauthorized
from app.models import ApiKey, Role, User, utcnow
from app.security import hash_api_key
from app.signin.models import SignInLink
from app.users.service import issue_key

# Long enough to reach someone the next morning, short enough that a forwarded or
# forgotten mail is soon worth nothing.
LINK_LIFETIME = timedelta(hours=24)
# the dashboard reads the token from the URL's fragment, which browsers never send to a server
FRAGMENT = "#sign-in="


def link_url(base: str, token: str) -> str:
    return f"{base.rstrip('/')}/{FRAGMENT}{token}"


def create_link(
    session: Session, caller: User, user_id: int, *, now: datetime | None = None
) -> tuple[str, datetime]:
    """A new link's token and expiry (admin, for an active user of the organization)."""
    require_role(caller, Role.admin)
    user = visible_user(session, caller, user_id)
    require_active(user)
    now = now or utcnow()
    # links past their expiry are worth nothing: forgotten as new ones are made
    session.execute(
        delete(SignInLink).where(SignInLink.org_id == caller.org_id, SignInLink.expires_at < now)
    )
    token = secrets.token_urlsafe(32)
    expires_at = now + LINK_LIFETIME
    session.add(
        SignInLink(
            org_id=user.org_id,
            user_id=user.id,
            created_by_id=caller.id,
            token_hash=hash_api_key(token),
            created_at=now,
            expires_at=expires_at,
        )
    )
    return token, expires_at


def redeem(session: Session, token: str, *, now: datetime | None = None) -> tuple[User, str]:
    """The user and a new API key for a link used for the first time before its expiry; a
    401 for anything else, the same whatever the reason, so a guess learns nothing."""
    now = now or utcnow()
    link = session.scalar(select(SignInLink).where(SignInLink.token_hash == hash_api_key(token)))
    refused = Unauthorized("this sign-in link is unknown, used or expired; ask for a new one")
    if link is None or link.used_at is not None or link.expires_at <= now:
        raise refused
    user = session.get(User, link.user_id)
    if user is None or user.deactivated_at is not None:
        raise refused
    # single use under concurrency: only the request whose update finds it unused goes on
    claimed = session.execute(
        update(SignInLink)
        .where(SignInLink.id == link.id, SignInLink.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    )
    if int(getattr(claimed, "rowcount", 0) or 0) != 1:
        raise refused
    key = issue_key(session, user)
    session.flush()
    key_id = session.scalar(select(ApiKey.id).where(ApiKey.key_hash == hash_api_key(key)))
    session.execute(
        update(SignInLink)
        .where(SignInLink.id == link.id)
        .values(api_key_id=key_id)
        .execution_options(synchronize_session=False)
    )
    return user, key


def sign_out(session: Session, caller: User, token: str, *, now: datetime | None = None) -> None:
    """Revoke the calling key when a sign-in link gave it; any other key is the holder's to
    keep (a pasted key may serve scripts too): 409, nothing changes."""
    key = session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_api_key(token)))
    given = key is not None and session.scalar(
        select(SignInLink.id).where(SignInLink.api_key_id == key.id)
    )
    if key is None or key.user_id != caller.id or not given:
        raise Conflict("this key was not given by a sign-in link; it stays valid")
    key.revoked_at = now or utcnow()
