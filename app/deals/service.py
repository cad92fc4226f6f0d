"""Writing deals. The engine (create_deal, update_deal, delete_deal, find_by_external_id) takes
no caller: the API wraps it with the access checks (the *_for functions), and the CSV import
calls it directly. Engine errors are AppErrors (404, 409, 422) whose message names the cause.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from app import jobs
from app.access import visible_user, visible_user_ids
from app.contacts.models import Company, Contact, DealContact
from app.deals import history, pipeline, rates, schemas
from app.deals.currency import RateBook, load_rates
from app.deals.queries import contact_ids_of, read_deals
from app.deals.rules import TRACKED, DealRuleError, State, diff, settle, snapshot
from app.errors import Conflict, Forbidden, NotFound, Unprocessable
from app.models import Deal, DealStatus, Organization, Role, User, utcnow
from app.webhooks.outbox import announce

Change = tuple[str, Any, Any]  # (field, old, new) as the history keeps them

# ---- the engine: no caller ----


@dataclass(frozen=True, slots=True)
class OrgTerms:
    """What every deal write of an organization reads: its stages' probabilities, its rates and
    its zone. A bulk writer (the CSV import) loads them once per batch; a request per write."""

    probabilities: dict[str, Decimal]
    book: RateBook
    tz: ZoneInfo


def org_terms(session: Session, org_id: int) -> OrgTerms:
    return OrgTerms(
        pipeline.probabilities(session, org_id),
        load_rates(session, org_id),
        rates.org_zone(session, org_id),
    )


def find_by_external_id(session: Session, org_id: int, external_id: str) -> Deal | None:
    return session.scalar(
        select(Deal).where(Deal.org_id == org_id, Deal.external_id == external_id)
    )


def state_of(session: Session, deal: Deal) -> State:
    state: State = {name: getattr(deal, name) for name in TRACKED if name != "contact_ids"}
    state["contact_ids"] = contact_ids_of(session, [deal.id])[deal.id]
    return state


def create_deal(
    session: Session,
    org_id: int,
    data: schemas.DealCreate,
    *,
    by_user_id: int | None,
    terms: OrgTerms | None = None,
) -> Deal:
    """A new deal of the organization, its creation kept in the history."""
    org = session.get_one(Organization, org_id)
    terms = terms or org_terms(session, org_id)
    given = data.model_dump(exclude_none=True)
    given.setdefault("currency", org.currency)
    now = utcnow()
    state = _settle(terms, None, given, now)
    _check_references(session, org_id, state, set(TRACKED))
    _check_external_id(session, org_id, state.get("external_id"), None)
    deal = Deal(org_id=org_id, updated_at=now)
    _store(terms, deal, state, set(TRACKED))
    session.add(deal)
    session.flush()
    session.add_all(DealContact(deal_id=deal.id, contact_id=c) for c in state["contact_ids"])
    history.record(
        session, deal, [(history.CREATED, None, snapshot(state))], by_user_id=by_user_id, at=now
    )
    session.flush()
    return deal


def update_deal(
    session: Session, deal: Deal, data: schemas.DealUpdate, *, by_user_id: int | None
) -> Deal:
    """Apply the fields `data` sets; see apply_update for the changes themselves."""
    apply_update(session, deal, data, by_user_id=by_user_id)
    return deal


def apply_update(
    session: Session,
    deal: Deal,
    data: schemas.DealUpdate,
    *,
    by_user_id: int | None,
    terms: OrgTerms | None = None,
) -> list[Change]:
    """The changes written (one history row each); [] when `data` changes nothing."""
    terms = terms or org_terms(session, deal.org_id)
    current = state_of(session, deal)
    now = utcnow()
    state = _settle(terms, current, data.model_dump(exclude_unset=True), now)
    changes = diff(current, state)
    if not changes:
        return []
    changed = {field for field, _, _ in changes}
    _check_references(session, deal.org_id, state, changed)
    if "external_id" in changed:
        _check_external_id(session, deal.org_id, state.get("external_id"), deal.id)
    _store(terms, deal, state, changed)
    deal.updated_at = now
    if "contact_ids" in changed:
        _set_contacts(session, deal, state["contact_ids"])
    history.record(session, deal, changes, by_user_id=by_user_id, at=now)
    session.flush()
    return changes


def delete_deal(session: Session, deal: Deal, *, by_user_id: int | None) -> None:
    """The deal goes; its history stays, ending with the state it had."""
    history.record(
        session,
        deal,
        [(history.DELETED, snapshot(state_of(session, deal)), None)],
        by_user_id=by_user_id,
    )
    session.delete(deal)
    session.flush()


def _settle(terms: OrgTerms, current: State | None, given: dict[str, Any], now: datetime) -> State:
    try:
        return settle(current, given, now=now, stages=terms.probabilities)
    except DealRuleError as error:
        raise Unprocessable(str(error)) from error


def _check_references(session: Session, org_id: int, state: State, changed: set[str]) -> None:
    if "owner_id" in changed:
        owner = session.get(User, state["owner_id"])
        if owner is None or owner.org_id != org_id:
            raise NotFound(f"user {state['owner_id']} not found")
    company_id = state.get("company_id")
    if "company_id" in changed and company_id is not None:
        company = session.get(Company, company_id)
        if company is None or company.org_id != org_id:
            raise NotFound(f"company {company_id} not found")
    wanted = set(state["contact_ids"])
    if "contact_ids" in changed and wanted:
        found = set(
            session.scalars(
                select(Contact.id).where(Contact.org_id == org_id, Contact.id.in_(wanted))
            )
        )
        if wanted - found:
            missing = ", ".join(str(i) for i in sorted(wanted - found)[:10])
            raise NotFound(f"contacts not found: {missing}")


def _check_external_id(
    session: Session, org_id: int, external_id: str | None, deal_id: int | None
) -> None:
    if external_id is None:
        return
    other = find_by_external_id(session, org_id, external_id)
    if other is not None and other.id != deal_id:
        raise Conflict(f"external_id {external_id!r} already belongs to deal {other.id}")


def _store(terms: OrgTerms, deal: Deal, state: State, changed: set[str]) -> None:
    for name in changed & set(TRACKED) - {"contact_ids"}:
        setattr(deal, name, state[name])
    tz = terms.tz
    deal.value_base, deal.cost_base = rates.base_amounts(
        terms.book,
        tz,
        status=state["status"],
        value=state["value"],
        cost=state.get("cost"),
        currency=state["currency"],
        closed_at=state.get("closed_at"),
        today=rates.local_day(utcnow(), tz),
    )


def _set_contacts(session: Session, deal: Deal, contact_ids: Sequence[int]) -> None:
    session.execute(delete(DealContact).where(DealContact.deal_id == deal.id))
    session.add_all(DealContact(deal_id=deal.id, contact_id=c) for c in contact_ids)


# ---- the API's side: access checks around the engine ----


def visible_deal(session: Session, caller: User, deal_id: int) -> Deal:
    """The deal, if the caller manages its owner (themself, their teams, the org); else 404."""
    deal = session.get(Deal, deal_id)
    if (
        deal is None
        or deal.org_id != caller.org_id
        or deal.owner_id not in visible_user_ids(session, caller)
    ):
        raise NotFound(f"deal {deal_id} not found")
    return deal


def _may_own(session: Session, caller: User, owner_id: int) -> None:
    """A rep writes deals only for themself (403); a manager for their teams' members and
    themself, an admin for anyone in the org (404 for a user they cannot see)."""
    if caller.role == Role.rep and owner_id != caller.id:
        raise Forbidden("a rep manages only their own deals")
    visible_user(session, caller, owner_id)


def _announce_closing(session: Session, deal: Deal, before: str | None, caller: User) -> None:
    """deal.won / deal.lost when the API closes a deal (created closed, or its status changed
    to won or lost), in the request's transaction. The CSV import announces nothing: it loads
    history, and a receiver would hear of every deal closed before Tally knew it."""
    if deal.status == before or deal.status not in (DealStatus.won, DealStatus.lost):
        return
    data = {"deal": read_deals(session, [deal])[0].model_dump(mode="json"), "by_user_id": caller.id}
    announce(session, deal.org_id, f"deal.{deal.status}", data)


def create_for(session: Session, caller: User, data: schemas.DealCreate) -> Deal:
    _may_own(session, caller, data.owner_id)
    deal = create_deal(session, caller.org_id, data, by_user_id=caller.id)
    jobs.mark_due(session, caller.org_id, jobs.ALERTS)  # alerts follow within a minute
    _announce_closing(session, deal, None, caller)
    return deal


def update_for(session: Session, caller: User, deal_id: int, data: schemas.DealUpdate) -> Deal:
    deal = visible_deal(session, caller, deal_id)
    if data.owner_id is not None and data.owner_id != deal.owner_id:
        _may_own(session, caller, data.owner_id)
    before = deal.status
    update_deal(session, deal, data, by_user_id=caller.id)
    jobs.mark_due(session, caller.org_id, jobs.ALERTS)
    _announce_closing(session, deal, before, caller)
    return deal


def delete_for(session: Session, caller: User, deal_id: int) -> None:
    delete_deal(session, visible_deal(session, caller, deal_id), by_user_id=caller.id)
    jobs.mark_due(session, caller.org_id, jobs.ALERTS)
