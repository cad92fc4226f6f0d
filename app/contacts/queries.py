"""What the API reads: contacts and companies visible to the caller, searched and paged."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Integer, ScalarSelect, any_, cast, exists, func, or_, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import QueryableAttribute, Session, aliased

from app.access import visible_user_ids
from app.contacts.models import Company, Contact, ContactDay, UserContact
from app.db import one_of
from app.errors import NotFound
from app.models import Role, User, aggregated_utc


def visible(session: Session, caller: User) -> list[ColumnElement[bool]]:
    """Conditions on `Contact` for the contacts the caller may see: the organization's for an
    admin; for a rep or a manager, those linked to an activity of a user they see.

    The link is read from `user_contacts` (one row per user and contact while links exist,
    kept with the activities), probed by its (contact_id, user_id) index: a contact's
    visibility costs one index look-up instead of a walk through its whole history (a rep's
    search made 279,000 activity look-ups at 10M activities)."""
    found = [Contact.org_id == caller.org_id]
    if caller.role != Role.admin:
        users = visible_user_ids(session, caller)
        theirs = one_of(session, UserContact.user_id, users)
        found.append(
            exists().where(UserContact.contact_id == Contact.id, theirs).correlate(Contact)
        )
    return found


def _matches(text: str, *columns: Any) -> ColumnElement[bool]:
    """`text` anywhere in any of the columns, in any case, literally: LIKE wildcards in `text`
    match themselves. Written as `lower(column) LIKE pattern`, the expressions the search
    indexes hold (migration 0007: trigrams on PostgreSQL)."""
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    pattern = f"%{escaped}%"
    return or_(*(func.lower(column).like(pattern, escape="\\") for column in columns))


def _search_page(
    session: Session, caller: User, q: str, conditions: list[Any], limit: int
) -> Sequence[int] | None:
    """On PostgreSQL, the ids of a page of a search's visible matches, in one statement. None
    where there are no trigrams (texts under three characters) or no trigram index (SQLite).

    A rep or a manager: the contacts of the users they see (`user_contacts`), in id order,
    checked for the text until the page is full; what that reads is bounded by their own
    history. An admin: the trigram index's matches (materialized, so the planner cannot trade
    the index for a walk of the contacts in id order), sorted. Checking every trigram match
    for visibility instead grew with the organization: a manager's `berg` at 10M activities
    probed 1,986 of 16,783 matches (49.6 ms, 2.5x its figure at 100k)."""
    if len(q) < 3 or session.get_bind().dialect.name != "postgresql":
        return None
    if caller.role != Role.admin:
        users = visible_user_ids(session, caller)
        return _own_contacts_page(session, caller.org_id, users, q, conditions, limit)
    matches = (
        select(Contact.id.label("id"))
        .where(Contact.org_id == caller.org_id, _matches(q, Contact.name, Contact.email))
        .where(*conditions)
        .cte("matches")
        .prefix_with("MATERIALIZED")
    )
    return session.scalars(select(matches.c.id).order_by(matches.c.id).limit(limit)).all()


def _own_contacts_page(
    session: Session, org_id: int, users: set[int], q: str, conditions: list[Any], limit: int
) -> Sequence[int]:
    """The page of matches among the contacts of these users: their ids from the primary
    key of `user_contacts` (a rep's few thousand, a team's tens of thousands at 10M
    activities) as one array, which the contacts' primary key is then probed with in id
    order until the page is full."""
    # an array, not a join: with a join the planner walked every contact instead, misjudging
    # how many match (220 ms)
    theirs = cast(
        select(func.array_agg(UserContact.contact_id.distinct()))
        .where(one_of(session, UserContact.user_id, users))
        .scalar_subquery(),
        ARRAY(Integer),
    )
    query = select(Contact.id).where(
        Contact.id == any_(theirs),
        Contact.org_id == org_id,
        _matches(q, Contact.name, Contact.email),
        *conditions,
    )
    return session.scalars(query.order_by(Contact.id).limit(limit)).all()


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
    conditions: list[Any] = []
    if email is not None:
        conditions.append(Contact.email == email.strip().lower())
    if company_id is not None:
        conditions.append(Contact.company_id == company_id)
    if after is not None:
        conditions.append(Contact.id > after)
    found = _search_page(session, caller, q, conditions, limit) if q else None
    if found is not None:
        query = select(Contact).where(one_of(session, Contact.id, list(found)))
    else:
        query = select(Contact).where(*conditions, *visible(session, caller))
        if q:
            query = query.where(_matches(q, Contact.name, Contact.email))
    return session.scalars(query.order_by(Contact.id).limit(limit)).all()


Span = tuple[datetime | None, datetime | None]  # first and latest interaction


def edge_moment(
    contact_id: ColumnElement[int] | QueryableAttribute[int], *, latest: bool
) -> ScalarSelect[Any]:
    """The contact's first (or latest) activity, for everyone, from `contact_days`: the
    earliest `first_at` of its first local day (the latest `last_at` of its last), two probes
    of the (contact_id, day) index. Read from the rollup the store keeps, never stored on the
    contact: a meeting cancelled or a connection purged moves it back by itself. Reading the
    activities instead walked the contact's whole history (~125 links per contact at 10M
    activities: 130-180 ms a page of 100 contacts, 2 s a page of companies)."""
    rows, edge = aliased(ContactDay), aliased(ContactDay)
    # ORDER BY day LIMIT 1 per contact: the planner probes the index for each contact
    # instead of hashing all of their rows
    day = (
        select(edge.day)
        .where(edge.contact_id == contact_id)
        .order_by(edge.day.desc() if latest else edge.day)
        .limit(1)
        .correlate_except(edge)  # to the contact's row two levels up
        .scalar_subquery()
    )
    moment = func.max(rows.last_at) if latest else func.min(rows.first_at)
    found = select(moment).where(rows.contact_id == contact_id, rows.day == day)
    return found.correlate_except(rows).scalar_subquery()


def contact_spans(session: Session, contact_ids: Sequence[int]) -> dict[int, Span]:
    """Each contact's first and latest activity (contacts with none are left out)."""
    if not contact_ids:
        return {}
    rows = session.execute(
        select(
            Contact.id,
            edge_moment(Contact.id, latest=False),
            edge_moment(Contact.id, latest=True),
        ).where(Contact.id.in_(contact_ids))
    )
    return {
        contact_id: (aggregated_utc(first), aggregated_utc(last))
        for contact_id, first, last in rows
        if first is not None
    }


def company_latest(session: Session, company_ids: Sequence[int]) -> dict[int, datetime | None]:
    """Each company's latest activity with any of its contacts (companies with none are left
    out): the latest of its contacts', each two index probes."""
    if not company_ids:
        return {}
    latest = edge_moment(Contact.id, latest=True).label("latest")
    per_contact = (
        select(Contact.company_id, latest).where(Contact.company_id.in_(company_ids)).subquery()
    )
    rows = session.execute(
        select(per_contact.c.company_id, func.max(per_contact.c.latest)).group_by(
            per_contact.c.company_id
        )
    )
    return {
        company_id: aggregated_utc(last)
        for company_id, last in rows
        if company_id is not None and last is not None
    }


def get_contact(session: Session, caller: User, contact_id: int) -> Contact:
    contact = session.scalar(
        select(Contact).where(Contact.id == contact_id, *visible(session, caller))
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
    latest interaction.

    The page is chosen first (companies in id order that have a visible contact: one probe
    each, stopping at `limit`), then its counts, so a page never groups the whole org."""
    seen = visible(session, caller)
    query = select(Company).where(
        Company.org_id == caller.org_id,
        exists().where(Contact.company_id == Company.id, *seen).correlate(Company),
    )
    if company_id is not None:
        query = query.where(Company.id == company_id)
    if domain is not None:
        query = query.where(Company.domain == domain.strip().lower())
    if q:
        query = query.where(_matches(q, Company.name, Company.domain))
    if after is not None:
        query = query.where(Company.id > after)
    companies = session.scalars(query.order_by(Company.id).limit(limit)).all()
    if not companies:
        return []
    ids = [company.id for company in companies]
    counts = dict(
        session.execute(
            select(Contact.company_id, func.count())
            .where(one_of(session, Contact.company_id, ids), *seen)
            .group_by(Contact.company_id)
        ).all()
    )
    latest = company_latest(session, ids)
    return [(c, counts.get(c.id, 0), latest.get(c.id)) for c in companies]


def update_contact(
    session: Session, caller: User, contact_id: int, changes: dict[str, object]
) -> Contact:
    contact = get_contact(session, caller, contact_id)
    for field, value in changes.items():
        setattr(contact, field, [] if field == "phones" and value is None else value)
    contact.edited_fields = sorted(set(contact.edited_fields) | set(changes))
    return contact
