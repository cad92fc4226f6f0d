"""People who leave, and the organization's last admin (docs/operations.md "People leaving and
the last admin").

An organization always keeps an active admin: the last one can be neither demoted nor
deactivated (409). Every change that could remove an admin first locks the organization's
row (SELECT … FOR UPDATE; on SQLite a write, which takes its single write lock), so two
admins demoting each other at once are serialized and the second sees the first's change.

Deactivating keeps the user's row, team, addresses, activities and deals (past periods of
the team do not change) and ends everything that acts for them: API keys revoked, pending
OAuth consents dropped, connections stopped for good with their secrets erased, phone numbers
released (new calls on them are no longer theirs), teams they managed left without a manager.
"""

from __future__ import annotations

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from app.access import require_active, require_role, visible_user
from app.connections.models import OAuthFlow
from app.connections.service import stop_for_user
from app.errors import Conflict, Forbidden
from app.models import ApiKey, Organization, Role, Team, User, utcnow

LAST_ADMIN = (
    "user {id} is the last admin of the organization: make another user admin first "
    "(an instance operator can also recover an organization with `tally orgs make-admin`)"
)


def active_admin_ids(session: Session, org_id: int) -> list[int]:
    return list(
        session.scalars(
            select(User.id)
            .where(User.org_id == org_id, User.role == Role.admin, User.deactivated_at.is_(None))
            .order_by(User.id)
        )
    )


def active_admin_emails(session: Session, org_id: int) -> list[str]:
    return list(
        session.scalars(
            select(User.email)
            .where(User.org_id == org_id, User.role == Role.admin, User.deactivated_at.is_(None))
            .order_by(User.email)
        )
    )


def lock_admins(session: Session, caller: User) -> None:
    """Serialize every change that may remove an admin of the caller's organization, then
    check again that the caller still is one (another admin may just have demoted them)."""
    if session.get_bind().dialect.name == "sqlite":
        # pysqlite runs reads outside a transaction until the first write: writing first
        # takes SQLite's one write lock, so what follows reads after any other admin change
        session.execute(
            update(Organization)
            .where(Organization.id == caller.org_id)
            .values(id=Organization.id)
            .execution_options(synchronize_session=False)
        )
    else:
        session.execute(
            select(Organization.id).where(Organization.id == caller.org_id).with_for_update()
        )
    session.refresh(caller)
    if caller.role != Role.admin or caller.deactivated_at is not None:
        raise Forbidden("the caller is no longer an active admin")


def _keep_an_admin(session: Session, caller: User, user: User) -> None:
    """After taking the lock: refuse when `user` is the organization's only active admin."""
    lock_admins(session, caller)
    session.refresh(user)
    others = [i for i in active_admin_ids(session, user.org_id) if i != user.id]
    if user.role == Role.admin and user.deactivated_at is None and not others:
        raise Conflict(LAST_ADMIN.format(id=user.id))


def change_role(session: Session, caller: User, user: User, role: Role) -> None:
    if role == user.role:
        return
    require_active(user)
    if user.role == Role.admin:
        _keep_an_admin(session, caller, user)
    user.role = role


def deactivate(session: Session, caller: User, user_id: int) -> User:
    """DELETE /users/{id}: idempotent; the user is kept, everything acting for them ends."""
    require_role(caller, Role.admin)
    user = visible_user(session, caller, user_id)
    if user.deactivated_at is not None:
        return user
    _keep_an_admin(session, caller, user)
    now = utcnow()
    user.deactivated_at = now
    user.phones = []
    session.execute(
        update(ApiKey)
        .where(ApiKey.user_id == user.id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    session.execute(delete(OAuthFlow).where(OAuthFlow.user_id == user.id))
    session.execute(update(Team).where(Team.manager_id == user.id).values(manager_id=None))
    stop_for_user(session, user.id)
    session.flush()
    return user


def make_admin(session: Session, org_id: int, email: str) -> tuple[User, bool]:
    """The instance operator's recovery (`tally orgs make-admin`): the user with this
    address becomes an active admin. Whether they were deactivated."""
    user = session.scalar(
        select(User).where(User.org_id == org_id, func.lower(User.email) == email.strip().lower())
    )
    if user is None:
        raise LookupError(f"organization {org_id} has no user {email!r}")
    was_deactivated = user.deactivated_at is not None
    user.role = Role.admin
    user.deactivated_at = None
    session.flush()
    return user, was_deactivated
