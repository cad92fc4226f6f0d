"""Routes for contacts and companies."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Depends
from sqlalchemy.orm import Session

from app.contacts import queries, schemas
from app.contacts.models import Company, Contact
from app.deps import CurrentUser, SessionDep
from app.errors import NotFound
from app.pagination import Page, PageParams, decode_cursor, page_by_id, page_params, read_id
from app.schemas import id_query, text_query

router = APIRouter(tags=["contacts and companies"])


def _contacts(session: Session, rows: Sequence[Contact]) -> list[schemas.ContactRead]:
    spans = queries.contact_spans(session, [c.id for c in rows])
    return [_contact(c, spans.get(c.id, (None, None))) for c in rows]


def _contact(contact: Contact, span: queries.Span) -> schemas.ContactRead:
    return schemas.ContactRead(
        id=contact.id,
        name=contact.name,
        emails=[contact.email],
        phones=list(contact.phones),
        title=contact.title,
        company_id=contact.company_id,
        first_seen_at=span[0],
        last_interaction_at=span[1],
    )


def _company(row: tuple[Company, int, object]) -> schemas.CompanyRead:
    company, count, last = row
    return schemas.CompanyRead(
        id=company.id,
        name=company.name,
        domains=[company.domain],
        contact_count=count,
        last_interaction_at=last,
    )


@router.get("/contacts", summary="Contacts the caller can see")
def list_contacts(
    session: SessionDep,
    caller: CurrentUser,
    paging: Annotated[PageParams, Depends(page_params)],
    email: Annotated[str | None, text_query(320, "the contact's address, exactly")] = None,
    company_id: Annotated[int | None, id_query("contacts of this company")] = None,
    q: Annotated[str | None, text_query(200, "in name or address")] = None,
) -> Page[schemas.ContactRead]:
    rows = queries.list_contacts(
        session,
        caller,
        email=email,
        company_id=company_id,
        q=q,
        after=decode_cursor(paging.cursor, read_id),
        limit=paging.limit + 1,
    )
    return page_by_id(_contacts(session, rows), paging.limit)


@router.get("/contacts/{contact_id}", summary="One contact")
def read_contact(contact_id: int, session: SessionDep, caller: CurrentUser) -> schemas.ContactRead:
    return _contacts(session, [queries.get_contact(session, caller, contact_id)])[0]


@router.patch(
    "/contacts/{contact_id}",
    summary="Set a contact's name, title or phones; inference never overwrites them afterwards",
)
def update_contact(
    contact_id: int, data: schemas.ContactUpdate, session: SessionDep, caller: CurrentUser
) -> schemas.ContactRead:
    changes = data.model_dump(exclude_unset=True)
    return _contacts(session, [queries.update_contact(session, caller, contact_id, changes)])[0]


@router.get("/companies", summary="Companies of the contacts the caller can see")
def list_companies(
    session: SessionDep,
    caller: CurrentUser,
    paging: Annotated[PageParams, Depends(page_params)],
    domain: Annotated[str | None, text_query(255, "the company's domain, exactly")] = None,
    q: Annotated[str | None, text_query(200, "in name or domain")] = None,
) -> Page[schemas.CompanyRead]:
    rows = queries.list_companies(
        session,
        caller,
        domain=domain,
        q=q,
        after=decode_cursor(paging.cursor, read_id),
        limit=paging.limit + 1,
    )
    return page_by_id([_company(r) for r in rows], paging.limit)


@router.get("/companies/{company_id}", summary="One company")
def read_company(company_id: int, session: SessionDep, caller: CurrentUser) -> schemas.CompanyRead:
    rows = queries.list_companies(
        session, caller, domain=None, q=None, after=None, limit=1, company_id=company_id
    )
    if not rows:
        raise NotFound(f"company {company_id} not found")
    return _company(rows[0])
