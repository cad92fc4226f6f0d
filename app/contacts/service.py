"""Contacts and companies: created once from what activities reveal, searched by the API."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple, cast

from sqlalchemy import Table, bindparam, delete, select, update
from sqlalchemy.orm import Session

from app.contacts import identity
from app.contacts.models import ActivityContact, Company, Contact, DealContact
from app.contacts.signature import SignatureFields
from app.db import insert_ignore, lookup, one_of
from app.models import Deal

CONTACTS = cast(Table, Contact.__table__)
COMPANIES = cast(Table, Company.__table__)


class ContactRow(NamedTuple):
    id: int
    email: str
    name: str | None
    company_id: int | None
    phones: list[str] | None
    title: str | None
    edited_fields: list[str] | None


@dataclass
class KnownContacts:
    """The contacts one sync run has read or written, so that a page revealing nothing new
    about a contact needs no look-up (a newest-first backfill meets the same people on page
    after page). It lives as long as the run: a page whose transaction fails ends the run,
    so nothing of a rolled-back transaction outlives it. A stale entry (a colleague's sync or
    a person changed the contact meanwhile) can only make a page skip an enrichment; it never
    decides a write: a contact it says needs a change is read again first."""

    rows: dict[str, ContactRow] = field(default_factory=dict)
    limit: int = 20_000  # ~5 MB: memory stays bounded however large the mailbox

    def keep(self, rows: Iterable[ContactRow]) -> None:
        for row in rows:
            if len(self.rows) >= self.limit and row.email not in self.rows:
                return
            self.rows[row.email] = row

    def id_if_unchanged(self, sighting: Sighting) -> int | None:
        """The contact's id when the sighting would change nothing on it."""
        row = self.rows.get(sighting.email)
        if row is None:
            return None
        wants_company = (
            row.company_id is None
            and "company_id" not in (row.edited_fields or ())
            and identity.company_domain(row.email) is not None
        )
        if wants_company or contact_changes(row, sighting, None):
            return None
        return row.id


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
    table = COMPANIES
    rows = [{"domain": d, "name": identity.company_name(d)} for d in domains if d not in ids]
    returning = (table.c.domain, table.c.id)
    shared = {"org_id": org_id}
    inserted = insert_ignore(
        session, table, rows, ["org_id", "domain"], returning=returning, shared=shared
    )
    ids.update({domain: company_id for domain, company_id in inserted})
    raced = domains - ids.keys()  # created meanwhile by another writer
    return ids | _company_ids(session, org_id, raced)


def _company_ids(session: Session, org_id: int, domains: set[str]) -> dict[str, int]:
    found = lookup(session, COMPANIES, ["domain", "id"], {"org_id": org_id}, "domain", domains)
    return {domain: company_id for domain, company_id in found}


def upsert_contacts(
    session: Session,
    org_id: int,
    sightings: Iterable[Sighting],
    known: KnownContacts | None = None,
) -> dict[str, int]:
    """Create missing contacts (and their companies), fill what they lack (a better name, a
    company, a phone or a title); return address -> contact id. Safe against a concurrent
    writer creating the same contact. With `known`, contacts it knows and the sightings change
    nothing on are not looked up, and what is read or written is added to it."""
    by_email = {s.email: s for s in sightings}
    quiet: dict[str, int] = {}
    if known is not None:
        for email, sighting in by_email.items():
            if (contact_id := known.id_if_unchanged(sighting)) is not None:
                quiet[email] = contact_id
        by_email = {e: s for e, s in by_email.items() if e not in quiet}
    if not by_email:
        return quiet
    table = CONTACTS
    # What the run's memory does not know is mostly new: insert first, and read only the ones
    # that turn out to exist. Without a memory, most exist: read first, insert the rest.
    existing = [] if known is not None else _contact_rows(session, org_id, by_email)
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
    rows: list[dict[str, Any]] = [
        {
            "email": email,
            "name": s.name,
            "company_id": companies.get(company_of.get(email) or ""),
            "phones": list(s.signature.phones) if s.signature else [],
            "title": s.signature.title if s.signature else None,
        }
        for email, s in by_email.items()
        if email not in ids
    ]
    shared = {"org_id": org_id, "edited_fields": []}
    returning = (table.c.email, table.c.id)
    inserted = insert_ignore(
        session, table, rows, ["org_id", "email"], returning=returning, shared=shared
    )
    ids.update({email: contact_id for email, contact_id in inserted})
    raced = [e for e in by_email if e not in ids]  # there already (or created meanwhile)
    if raced:
        existing = [*existing, *_contact_rows(session, org_id, raced)]
        ids.update({row.email: row.id for row in existing})
    changes: dict[tuple[str, ...], list[dict[str, object]]] = {}
    stored: list[ContactRow] = []  # the page's contacts as they stand after its writes
    for row in existing:
        change: dict[str, Any] = contact_changes(
            row, by_email[row.email], companies.get(company_of.get(row.email) or "")
        )
        if change:
            changes.setdefault(tuple(sorted(change)), []).append(
                {"contact_pk": row.id, **{f"new_{k}": v for k, v in change.items()}}
            )
        stored.append(row._replace(**change))
    for fields, batch in changes.items():  # one executemany per set of changed fields
        statement = (
            update(table)
            .where(table.c.id == bindparam("contact_pk"))
            .values({f: bindparam(f"new_{f}") for f in fields})
        )
        session.connection().execute(statement, batch)
    if known is not None:
        new = {email for email, _ in inserted}
        stored += [
            ContactRow(
                ids[r["email"]], r["email"], r["name"], r["company_id"], r["phones"], r["title"], []
            )
            for r in rows
            if r["email"] in new
        ]
        known.keep(stored)
    return quiet | ids


def _contact_rows(session: Session, org_id: int, emails: Iterable[str]) -> list[ContactRow]:
    rows = lookup(session, CONTACTS, ContactRow._fields, {"org_id": org_id}, "email", emails)
    return [ContactRow(*row) for row in rows]


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
    columns = ["email", "phones", "title"]
    complete = lookup(session, CONTACTS, columns, {"org_id": org_id}, "email", emails)
    return emails - {e for e, phones, title in complete if phones and title}


def forget_unlinked(session: Session, org_id: int, contact_ids: Iterable[int]) -> tuple[int, int]:
    """Of these contacts, delete those nothing holds any more: no activity link (a meeting,
    a call, an email), no deal, no field a person set. Then the companies they belonged to
    that are left with no contact and no deal. Re-evaluation calls it with the contacts it
    unlinked, so that a contact made only by mail that no longer counts goes, as it would
    never have been made under the directory as it is now. (deleted contacts, companies)"""
    ids = sorted(set(contact_ids))
    if not ids:
        return 0, 0
    linked = select(ActivityContact.contact_id).where(ActivityContact.contact_id == Contact.id)
    dealt = select(DealContact.contact_id).where(DealContact.contact_id == Contact.id)
    rows = session.execute(
        select(Contact.id, Contact.company_id, Contact.edited_fields).where(
            Contact.org_id == org_id,
            one_of(session, Contact.id, ids),
            ~linked.exists(),
            ~dealt.exists(),
        )
    ).all()
    doomed = [pk for pk, _, edited in rows if not edited]
    if not doomed:
        return 0, 0
    session.execute(delete(Contact).where(one_of(session, Contact.id, doomed)))
    companies = {company for pk, company, edited in rows if company is not None and not edited}
    if not companies:
        return len(doomed), 0
    staffed = select(Contact.id).where(Contact.company_id == Company.id)
    owned = select(Deal.id).where(Deal.company_id == Company.id)
    gone = session.execute(
        delete(Company)
        .where(
            Company.org_id == org_id,
            one_of(session, Company.id, companies),
            ~staffed.exists(),
            ~owned.exists(),
        )
        .returning(Company.id)
    ).all()
    return len(doomed), len(gone)
