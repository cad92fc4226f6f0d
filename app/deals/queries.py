"""Reading deals: lists with filters, their timelines, and the Deal the API returns."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Subquery, and_, func, or_, select, union_all
from sqlalchemy.orm import Session

from app.access import team_member_ids, visible_team, visible_user, visible_user_ids
from app.activities.models import Activity
from app.contacts.models import ActivityContact, Contact, DealContact
from app.contacts.queries import edge_moment
from app.deals import pipeline, schemas
from app.deals.rules import probability
from app.models import Deal, DealStatus, User, aggregated_utc


@dataclass(frozen=True)
class DealFilter:
    owner_id: int | None = None
    team_id: int | None = None
    status: DealStatus | None = None
    stage: str | None = None
    company_id: int | None = None


def list_for(
    session: Session, caller: User, criteria: DealFilter, *, after: int | None, limit: int
) -> list[Deal]:
    """The caller's visible deals matching `criteria`, by id (404 for an owner or a team the
    caller cannot see, as GET /activities does)."""
    owners = visible_user_ids(session, caller)
    if criteria.owner_id is not None:
        owners &= {visible_user(session, caller, criteria.owner_id).id}
    if criteria.team_id is not None:
        owners &= team_member_ids(session, visible_team(session, caller, criteria.team_id).id)
    query = select(Deal).where(Deal.org_id == caller.org_id, Deal.owner_id.in_(owners))
    if criteria.status is not None:
        query = query.where(Deal.status == criteria.status)
    if criteria.stage is not None:
        query = query.where(Deal.stage == criteria.stage)
    if criteria.company_id is not None:
        query = query.where(Deal.company_id == criteria.company_id)
    if after is not None:
        query = query.where(Deal.id > after)
    return list(session.scalars(query.order_by(Deal.id).limit(limit)))


def _linked_contacts(deal_ids: Sequence[int]) -> Subquery:
    """(deal id, contact id): the deal's own contacts, or its company's when it has none."""
    own = select(DealContact.deal_id, DealContact.contact_id).where(
        DealContact.deal_id.in_(deal_ids)
    )
    has_contacts = select(DealContact.deal_id).where(DealContact.deal_id == Deal.id).exists()
    company = (
        select(Deal.id.label("deal_id"), Contact.id.label("contact_id"))
        .join(Contact, Contact.company_id == Deal.company_id)
        .where(Deal.id.in_(deal_ids), ~has_contacts)
    )
    return union_all(own, company).subquery()


def last_activity(session: Session, deal_ids: Sequence[int]) -> dict[int, datetime]:
    """deal id -> its latest captured activity with its contacts, for a whole page at once.
    Every activity of the organization counts (a deal's freshness does not depend on who
    asks); the activities themselves are listed only to those who may see them."""
    if not deal_ids:
        return {}
    links = _linked_contacts(deal_ids)
    # each contact's latest from contact_days (two index probes), not its whole history
    latest = edge_moment(links.c.contact_id, latest=True).label("latest")
    per_contact = select(links.c.deal_id, latest).subquery()
    rows = session.execute(
        select(per_contact.c.deal_id, func.max(per_contact.c.latest)).group_by(
            per_contact.c.deal_id
        )
    )
    return {d: aggregated_utc(at) for d, at in rows if at is not None}


def deal_activities(
    session: Session,
    caller: User,
    deal: Deal,
    *,
    after: tuple[datetime, int] | None,
    limit: int,
) -> list[Activity]:
    """The deal's timeline, newest first: activities of users the caller can see."""
    links = _linked_contacts([deal.id])
    activity_ids = select(ActivityContact.activity_id).where(
        ActivityContact.contact_id.in_(select(links.c.contact_id))
    )
    query = select(Activity).where(
        Activity.id.in_(activity_ids),
        Activity.user_id.in_(visible_user_ids(session, caller)),
    )
    if after is not None:
        moment, last_id = after
        older: ColumnElement[bool] = or_(
            Activity.occurred_at < moment,
            and_(Activity.occurred_at == moment, Activity.id < last_id),
        )
        query = query.where(older)
    order = (Activity.occurred_at.desc(), Activity.id.desc())
    return list(session.scalars(query.order_by(*order).limit(limit)))


def contact_ids_of(session: Session, deal_ids: Sequence[int]) -> dict[int, list[int]]:
    found: dict[int, list[int]] = {i: [] for i in deal_ids}
    rows = session.execute(
        select(DealContact.deal_id, DealContact.contact_id)
        .where(DealContact.deal_id.in_(deal_ids))
        .order_by(DealContact.contact_id)
    )
    for deal_id, contact_id in rows:
        found[deal_id].append(contact_id)
    return found


def read_deals(session: Session, deals: Sequence[Deal]) -> list[schemas.DealRead]:
    if not deals:
        return []
    ids = [d.id for d in deals]
    contacts = contact_ids_of(session, ids)
    latest = last_activity(session, ids)
    stages = pipeline.probabilities(session, deals[0].org_id)
    return [
        schemas.DealRead(
            id=d.id,
            name=d.name,
            owner_id=d.owner_id,
            company_id=d.company_id,
            contact_ids=contacts[d.id],
            value=d.value,
            cost=d.cost,
            currency=d.currency,
            stage=d.stage,
            status=DealStatus(d.status),
            probability=probability(d.status, d.stage, stages),
            expected_close_date=d.expected_close_date,
            created_at=d.created_at,
            closed_at=d.closed_at,
            external_id=d.external_id,
            last_activity_at=latest.get(d.id),
        )
        for d in deals
    ]
