"""Contacts and companies: created once from what activities reveal, searched by the API."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.contacts import identity
from app.contacts.signature import SignatureFields
from app.db import insert_ignore
from app.models import Company, Contact


@dataclass
class Sighting:
    """What one page of activities revealed about one external address."""

    email: str
    name: str | None = None
    first: datetime | None = None
    last: datetime | None = None
    signature: SignatureFields | None = None
    activity_keys: set[tuple[str, int, str]] = field(default_factory=set)

    def seen(self, name: str | None, at: datetime) -> None:
        self.name = identity.better_name(self.name, name)
        self.first = at if self.first is None or at < self.first else self.first
        self.last = at if self.last is None or at > self.last else self.last


def _upsert_companies(session: Session, org_id: int, domains: set[str]) -> dict[str, int]:
    if not domains:
        return {}
    rows = [{"org_id": org_id, "domain": d, "name": identity.company_name(d)} for d in domains]
    insert_ignore(session, Company.__table__, rows, ["org_id", "domain"])
    found = session.execute(
        select(Company.domain, Company.id).where(
            Company.org_id == org_id, Company.domain.in_(domains)
        )
    )
    return {domain: company_id for domain, company_id in found}


def upsert_contacts(session: Session, org_id: int, sightings: Iterable[Sighting]) -> dict[str, int]:
    """Create missing contacts (and their companies), refresh names and interaction times;
    return address -> contact id. Safe against a concurrent writer creating the same contact."""
    by_email = {s.email: s for s in sightings}
    if not by_email:
        return {}
    company_of = {e: identity.company_domain(e) for e in by_email}
    companies = _upsert_companies(session, org_id, {d for d in company_of.values() if d})
    rows: list[dict[str, object]] = [
        {
            "org_id": org_id,
            "email": email,
            "name": s.name,
            "company_id": companies.get(company_of[email] or ""),
            "first_seen_at": s.first,
            "last_interaction_at": s.last,
            "phones": [],
            "edited_fields": [],
        }
        for email, s in by_email.items()
    ]
    insert_ignore(session, Contact.__table__, rows, ["org_id", "email"])
    existing = session.scalars(
        select(Contact).where(Contact.org_id == org_id, Contact.email.in_(by_email))
    ).all()
    for contact in existing:
        _refresh(contact, by_email[contact.email], companies.get(company_of[contact.email] or ""))
    return {c.email: c.id for c in existing}


def _refresh(contact: Contact, seen: Sighting, company_id: int | None) -> None:
    if "name" not in contact.edited_fields:
        name = identity.better_name(contact.name, seen.name)
        if name != contact.name:
            contact.name = name
    if seen.first and (contact.first_seen_at is None or seen.first < contact.first_seen_at):
        contact.first_seen_at = seen.first
    if seen.last and (
        contact.last_interaction_at is None or seen.last > contact.last_interaction_at
    ):
        contact.last_interaction_at = seen.last
    if (
        contact.company_id is None
        and company_id is not None
        and "company_id" not in contact.edited_fields
    ):
        contact.company_id = company_id
    if seen.signature is not None:
        # signatures fill empty fields only, and never what a person set
        if not contact.phones and seen.signature.phones and "phones" not in contact.edited_fields:
            contact.phones = list(seen.signature.phones)
        if not contact.title and seen.signature.title and "title" not in contact.edited_fields:
            contact.title = seen.signature.title


def contacts_missing_details(session: Session, org_id: int, emails: Iterable[str]) -> set[str]:
    """Addresses whose contact does not exist yet or lacks a phone or a title."""
    emails = set(emails)
    if not emails:
        return set()
    complete = session.execute(
        select(Contact.email, Contact.phones, Contact.title).where(
            Contact.org_id == org_id, Contact.email.in_(emails)
        )
    )
    return emails - {e for e, phones, title in complete if phones and title}
