"""Who may see what: admins their whole organization, managers their teams, reps themselves."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.errors import Conflict, Forbidden, NotFound
from app.models import Role, Team, User


def require_role(caller: User, *roles: Role) -> None:
    if caller.role not in roles:
        raise Forbidden(f"the {caller.role} role may not do this")


def managed_team_ids(session: Session, caller: User) -> set[int]:
    if caller.role == Role.admin:
        return set(session.scalars(select(Team.id).where(Team.org_id == caller.org_id)))
    if caller.role == Role.manager:
        return set(
            session.scalars(
                select(Team.id).where(Team.org_id == caller.org_id, Team.manager_id == caller.id)
            )
        )
    return set()


def visible_user_ids(session: Session, caller: User) -> set[int]:
    """The users whose data the caller may read (always including the caller)."""
    if caller.role == Role.admin:
        return set(session.scalars(select(User.id).where(User.org_id == caller.org_id)))
    if caller.role == Role.manager:
        teams = managed_team_ids(session, caller)
        members = set(
            session.scalars(
                select(User.id).where(User.org_id == caller.org_id, User.team_id.in_(teams))
            )
        )
        return members | {caller.id}
    return {caller.id}


def visible_user(session: Session, caller: User, user_id: int) -> User:
    user = session.get(User, user_id)
    if (
        user is None
        or user.org_id != caller.org_id
        or user.id not in visible_user_ids(session, caller)
    ):
        raise NotFound(f"user {user_id} not found")
    return user


def visible_team(session: Session, caller: User, team_id: int) -> Team:
    team = session.get(Team, team_id)
    if (
        team is None
        or team.org_id != caller.org_id
        or team.id not in managed_team_ids(session, caller)
    ):
        raise NotFound(f"team {team_id} not found")
    return team


def team_member_ids(session: Session, team_id: int) -> set[int]:
    return set(session.scalars(select(User.id).where(User.team_id == team_id)))


def require_active(user: User) -> None:
    """Nothing new is given to someone who left (a connection, a sync, a role): 409."""
    if user.deactivated_at is not None:
        raise Conflict(f"user {user.id} is deactivated")
