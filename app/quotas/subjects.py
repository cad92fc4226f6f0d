"""Who a metric or quota is about (a user or a team, resolved against the caller's access)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date

from sqlalchemy import ColumnElement, Select, or_, select
from sqlalchemy.orm import Session

from app.access import team_member_ids, visible_team, visible_user
from app.errors import BadRequest, Unprocessable
from app.models import User
from app.quotas import schemas
from app.quotas.models import Quota


@dataclass(frozen=True, slots=True)
class Subject:
    user_id: int | None
    team_id: int | None
    member_ids: frozenset[int]  # whose activities and deals count (a team: current members)

    def read(self) -> schemas.Subject:
        if self.team_id is not None:
            return schemas.TeamSubject(team_id=self.team_id)
        assert self.user_id is not None
        return schemas.UserSubject(user_id=self.user_id)

    def owns(self) -> ColumnElement[bool]:
        if self.team_id is not None:
            return Quota.team_id == self.team_id
        return Quota.user_id == self.user_id


def resolve(session: Session, caller: User, user_id: int | None, team_id: int | None) -> Subject:
    """The user or team asked about (the caller by default); 404 unless the caller may see it."""
    if user_id is not None and team_id is not None:
        raise Unprocessable("give user_id or team_id, not both")
    if team_id is not None:
        team = visible_team(session, caller, team_id)
        return Subject(None, team.id, frozenset(team_member_ids(session, team.id)))
    user = caller if user_id is None else visible_user(session, caller, user_id)
    return Subject(user.id, None, frozenset({user.id}))


@contextmanager
def dates_in_range() -> Iterator[None]:
    # Periods near year 1 or 9999 cannot be represented; that is bad input, not a 500.
    try:
        yield
    except OverflowError as error:
        raise BadRequest("date out of range") from error


def in_force(org_id: int, day: date) -> Select[Quota]:
    return select(Quota).where(
        Quota.org_id == org_id,
        Quota.effective_from <= day,
        or_(Quota.effective_to.is_(None), Quota.effective_to >= day),
    )
