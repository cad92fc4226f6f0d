"""Activity timelines: filtered, visible to the caller, newest first."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, and_, or_, select
from sqlalchemy.orm import Session

from app.access import team_member_ids, visible_team, visible_user, visible_user_ids
from app.models import Activity, ActivityContact, Contact


@dataclass(frozen=True)
class ActivityFilter:
    user_id: int | None = None
    team_id: int | None = None
    type: str | None = None
    contact_id: int | None = None
    company_id: int | None = None
    start: datetime | None = None
    end: datetime | None = None


def _subjects(session: Session, caller: object, criteria: ActivityFilter) -> set[int]:
    from app.models import User

    assert isinstance(caller, User)
    users = visible_user_ids(session, caller)
    if criteria.user_id is not None:
        users &= {visible_user(session, caller, criteria.user_id).id}
    if criteria.team_id is not None:
        users &= team_member_ids(session, visible_team(session, caller, criteria.team_id).id)
    return users


def _filtered(query: Select[Activity], criteria: ActivityFilter) -> Select[Activity]:
    if criteria.type is not None:
        query = query.where(Activity.type == criteria.type)
    if criteria.start is not None:
        query = query.where(Activity.occurred_at >= criteria.start)
    if criteria.end is not None:
        query = query.where(Activity.occurred_at < criteria.end)
    if criteria.contact_id is not None:
        query = query.where(
            Activity.id.in_(
                select(ActivityContact.activity_id).where(
                    ActivityContact.contact_id == criteria.contact_id
                )
            )
        )
    if criteria.company_id is not None:
        query = query.where(
            Activity.id.in_(
                select(ActivityContact.activity_id)
                .join(Contact, Contact.id == ActivityContact.contact_id)
                .where(Contact.company_id == criteria.company_id)
            )
        )
    return query


def list_for(
    session: Session,
    caller: object,
    criteria: ActivityFilter,
    *,
    after: tuple[datetime, int] | None,
    limit: int,
) -> Sequence[Activity]:
    users = _subjects(session, caller, criteria)
    query = _filtered(select(Activity).where(Activity.user_id.in_(users)), criteria)
    if after is not None:
        moment, last_id = after
        query = query.where(
            or_(
                Activity.occurred_at < moment,
                and_(Activity.occurred_at == moment, Activity.id < last_id),
            )
        )
    query = query.order_by(Activity.occurred_at.desc(), Activity.id.desc()).limit(limit)
    return session.scalars(query).all()


def links(session: Session, activity_ids: Sequence[int]) -> dict[int, tuple[list[int], list[int]]]:
    """activity id -> (contact ids, company ids)."""
    found: dict[int, tuple[list[int], list[int]]] = {i: ([], []) for i in activity_ids}
    rows = session.execute(
        select(ActivityContact.activity_id, ActivityContact.contact_id, Contact.company_id)
        .join(Contact, Contact.id == ActivityContact.contact_id)
        .where(ActivityContact.activity_id.in_(activity_ids))
        .order_by(ActivityContact.contact_id)
    )
    for activity_id, contact_id, company_id in rows:
        contact_ids, company_ids = found[activity_id]
        contact_ids.append(contact_id)
        if company_id is not None and company_id not in company_ids:
            company_ids.append(company_id)
    return found
