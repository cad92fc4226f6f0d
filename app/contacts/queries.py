"""What the API reads: contacts and companies visible to the caller, searched and paged."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, func, or_, select
from sqlalchemy.orm import Session

from app.access import visible_user_ids
from app.errors import NotFound
from app.models import Activity, ActivityContact, Company, Contact, Role, User


def visible_contacts(session: Session, caller: User) -> Select[int]:
    """Ids of contacts the caller may see: for a rep, those reached through their own activities."""
    if caller.role == Role.admin:
        return select(Contact.id).where(Contact.org_id == caller.org_id)
    users = visible_user_ids(session, caller)
    return (
        select(ActivityContact.contact_id)
        .join(Activity, Activity.id == ActivityContact.activity_id)
        .where(Activity.user_id.in_(users), Activity.org_id == caller.org_id)
    )


def _matches(text: str, name: Any, lowered: Any) -> ColumnElement[bool]:
    """`text` anywhere in the name (any case) or in an already lower-cased column, literally:
    LIKE wildcards in `text` match themselves."""
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    pattern = f"%{escaped}%"
    return or_(func.lower(name).like(pattern, escape="\\"), lowered.like(pattern, escape="\\"))


def list_contacts(
    session: Session,
    caller: User,
    *,
    email: str | None,
    company_id: int | None,
    q: str | None,
    after: int | None,
    limit: int,
) -> Sequence[Contact]:
    query = select(Contact).where(Contact.id.in_(visible_contacts(session, caller)))
    if email is not None:
        query = query.where(Contact.email == email.strip().lower())
    if company_id is not None:
        query = query.where(Contact.company_id == company_id)
    if q:
        query = query.where(_matches(q, Contact.name, Contact.email))
    if after is not None:
        query = query.where(Contact.id > after)
    return session.scalars(query.order_by(Contact.id).limit(limit)).all()


Span = tuple[datetime | None, datetime | None]  # first and latest interaction


def contact_spans(session: Session, contact_ids: Sequence[int]) -> dict[int, Span]:
    """Each contact's first and latest activity, for everyone (read, never stored: a meeting
    cancelled or a connection purged moves them back by itself)."""
    if not contact_ids:
        return {}
    rows = session.execute(
        select(ActivityContact.contact_id, func.min(Activity.occurred_at))
        .add_columns(func.max(Activity.occurred_at))
        .join(Activity, Activity.id == ActivityContact.activity_id)
        .where(ActivityContact.contact_id.in_(contact_ids))
        .group_by(ActivityContact.contact_id)
    )
    return {contact_id: (_utc(first), _utc(last)) for contact_id, first, last in rows}


def company_latest(session: Session, company_ids: Sequence[int]) -> dict[int, datetime | None]:
    """Each company's latest activity with any of its contacts."""
    if not company_ids:
        return {}
    rows = session.execute(
        select(Contact.company_id, func.max(Activity.occurred_at))
        .join(ActivityContact, ActivityContact.contact_id == Contact.id)
        .join(Activity, Activity.id == ActivityContact.activity_id)
        .where(Contact.company_id.in_(company_ids))
        .group_by(Contact.company_id)
    )
    return {company_id: _utc(last) for company_id, last in rows if company_id is not None}


def _utc(value: datetime | None) -> datetime | None:
    """An aggregate loses the column type: SQLite hands back a naive UTC datetime."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def get_contact(session: Session, caller: User, contact_id: int) -> Contact:
    contact = session.scalar(
        select(Contact).where(
            Contact.id == contact_id, Contact.id.in_(visible_contacts(session, caller))
        )
    )
    if contact is None:
        raise NotFound(f"contact {contact_id} not found")
    return contact


def list_companies(
    session: Session,
    caller: User,
    *,
    domain: str | None,
    q: str | None,
    after: int | None,
    limit: int,
    company_id: int | None = None,
) -> list[tuple[Company, int, datetime | None]]:
    """Companies with at least one visible contact, with the visible contacts' count and
    latest interaction."""
    visible = visible_contacts(session, caller)
    query = (
        select(Company, func.count(Contact.id))
        .join(Contact, Contact.company_id == Company.id)
        .where(Company.org_id == caller.org_id, Contact.id.in_(visible))
        .group_by(Company.id)
    )
    if company_id is not None:
        query = query.where(Company.id == company_id)
    if domain is not None:
        query = query.where(Company.domain == domain.strip().lower())
    if q:
        query = query.where(_matches(q, Company.name, Company.domain))
    if after is not None:
        query = query.where(Company.id > after)
    rows = session.execute(query.order_by(Company.id).limit(limit)).all()
    latest = company_latest(session, [company.id for company, _count in rows])
    return [(company, count, latest.get(company.id)) for company, count in rows]


def update_contact(
    session: Session, caller: User, contact_id: int, changes: dict[str, object]
) -> Contact:
    contact = get_contact(session, caller, contact_id)
    for field, value in changes.items():
        setattr(contact, field, [] if field == "phones" and value is None else value)
    contact.edited_fields = sorted(set(contact.edited_fields) | set(changes))
    return contact
