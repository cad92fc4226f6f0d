"""Contacts and companies: created once from what activities reveal, searched by the API."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, bindparam, select, update
from sqlalchemy.orm import Session

from app.contacts import identity
from app.contacts.signature import SignatureFields
from app.db import insert_ignore, one_of
from app.models import Company, Contact

CONTACTS = cast(Table, Contact.__table__)


@dataclass
class Sighting:
    """What one page of activities revealed about one external address."""

    email: str
    name: str | None = None
    signature: SignatureFields | None = None

    def seen(self, name: str | None) -> None:
        self.name = identity.better_name(self.name, name)


def _upsert_companies(session: Session, org_id: int, domains: set[str]) -> dict[str, int]:
    """domain -> company id, creating the missing ones (most pages only look them up)."""
    ids = _company_ids(session, org_id, domains)
    table = Company.__table__
    rows = [
        {"org_id": org_id, "domain": d, "name": identity.company_name(d)}
        for d in domains
        if d not in ids
    ]
    inserted = insert_ignore(
        session, table, rows, ["org_id", "domain"], returning=(table.c.domain, table.c.id)
    )
    ids.update({domain: company_id for domain, company_id in inserted})
    raced = domains - ids.keys()  # created meanwhile by another writer
    return ids | _company_ids(session, org_id, raced)


def _company_ids(session: Session, org_id: int, domains: set[str]) -> dict[str, int]:
    if not domains:
        return {}
    found = session.execute(
        select(Company.domain, Company.id).where(
            Company.org_id == org_id, one_of(session, Company.domain, domains)
        )
    )
    return {domain: company_id for domain, company_id in found}


def upsert_contacts(session: Session, org_id: int, sightings: Iterable[Sighting]) -> dict[str, int]:
    """Create missing contacts (and their companies), fill what they lack (a better name, a
    company, a phone or a title); return address -> contact id. Safe against a concurrent
    writer creating the same contact."""
    by_email = {s.email: s for s in sightings}
    if not by_email:
        return {}
    table = CONTACTS
    existing = _contact_rows(session, org_id, by_email)
    ids = {row.email: row.id for row in existing}
    # companies are looked up only for contacts that need one: new, or still without one
    # (once a mailbox's people are known, most pages need none)
    lacking = [e for e in by_email if e not in ids]
    lacking += [
        row.email
        for row in existing
        if row.company_id is None and "company_id" not in (row.edited_fields or ())
    ]
    company_of = {e: identity.company_domain(e) for e in lacking}
    companies = _upsert_companies(session, org_id, {d for d in company_of.values() if d})
    rows: list[dict[str, object]] = [
        {
            "org_id": org_id,
            "email": email,
            "name": s.name,
            "company_id": companies.get(company_of.get(email) or ""),
            "phones": list(s.signature.phones) if s.signature else [],
            "title": s.signature.title if s.signature else None,
            "edited_fields": [],
        }
        for email, s in by_email.items()
        if email not in ids
    ]
    inserted = insert_ignore(
        session, table, rows, ["org_id", "email"], returning=(table.c.email, table.c.id)
    )
    ids.update({email: contact_id for email, contact_id in inserted})
    raced = [e for e in by_email if e not in ids]  # created meanwhile by another writer
    if raced:
        existing = [*existing, *_contact_rows(session, org_id, raced)]
        ids.update({row.email: row.id for row in existing})
    changes: dict[tuple[str, ...], list[dict[str, object]]] = {}
    for row in existing:
        change = contact_changes(
            row, by_email[row.email], companies.get(company_of.get(row.email) or "")
        )
        if change:
            changes.setdefault(tuple(sorted(change)), []).append(
                {"contact_pk": row.id, **{f"new_{k}": v for k, v in change.items()}}
            )
    for fields, batch in changes.items():  # one executemany per set of changed fields
        statement = (
            update(table)
            .where(table.c.id == bindparam("contact_pk"))
            .values({f: bindparam(f"new_{f}") for f in fields})
        )
        session.connection().execute(statement, batch)
    return ids


def _contact_rows(session: Session, org_id: int, emails: Iterable[str]) -> list[Any]:
    table = CONTACTS
    columns = (
        table.c.id,
        table.c.email,
        table.c.name,
        table.c.company_id,
        table.c.phones,
        table.c.title,
        table.c.edited_fields,
    )
    query = select(*columns).where(table.c.org_id == org_id, one_of(session, table.c.email, emails))
    return list(session.execute(query).all())


def contact_changes(row: Any, seen: Sighting, company_id: int | None) -> dict[str, object]:
    """What a sighting changes on a stored contact: a better name, an empty company, phone or
    title filled. Never a field a person set."""
    edited = set(row.edited_fields or ())
    change: dict[str, object] = {}
    if "name" not in edited and (name := identity.better_name(row.name, seen.name)) != row.name:
        change["name"] = name
    if row.company_id is None and company_id is not None and "company_id" not in edited:
        change["company_id"] = company_id
    if seen.signature is not None:
        if not row.phones and seen.signature.phones and "phones" not in edited:
            change["phones"] = list(seen.signature.phones)
        if not row.title and seen.signature.title and "title" not in edited:
            change["title"] = seen.signature.title
    return change


def contacts_missing_details(session: Session, org_id: int, emails: Iterable[str]) -> set[str]:
    """Addresses whose contact does not exist yet or lacks a phone or a title."""
    emails = set(emails)
    if not emails:
        return set()
    complete = session.execute(
        select(Contact.email, Contact.phones, Contact.title).where(
            Contact.org_id == org_id, one_of(session, Contact.email, emails)
        )
    )
    return emails - {e for e, phones, title in complete if phones and title}
