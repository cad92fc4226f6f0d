"""An organization for chat tests, made directly in the database, and what it holds."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.activities.models import Activity, ActivityDay
from app.contacts.models import ActivityContact, Company, Contact, ContactDay, UserContact
from app.models import Organization, User, UserAddress
from connectors.chat import ChatMessage

T0 = datetime(2024, 5, 14, 9, 0, tzinfo=UTC)
JOE, SUE = "joe@northwind.example", "sue@southwind.example"


@dataclass
class ChatOrg:
    id: int
    ana: int
    bob: int


def make_chat_org(session: Session) -> ChatOrg:
    org = Organization(name="Acme", domains=["acme.example"], timezone="Europe/Brussels")
    session.add(org)
    session.flush()
    ids = []
    for name, addresses in (("ana", ["ana", "a.silva"]), ("bob", ["bob"])):
        user = User(org_id=org.id, email=f"{name}@acme.example", name=name, role="rep")
        session.add(user)
        session.flush()
        for i, local in enumerate(addresses):
            email = f"{local}@acme.example"
            session.add(UserAddress(org_id=org.id, user_id=user.id, email=email, is_primary=i == 0))
        ids.append(user.id)
    session.flush()
    return ChatOrg(org.id, ids[0], ids[1])


def message(message_id: str, sender: str | None, minutes: float) -> ChatMessage:
    return ChatMessage(message_id, sender, T0 + timedelta(minutes=minutes), 12)


def snapshot(session: Session, org_id: int) -> dict[str, Any]:
    """Everything the activities of an organization amount to, ids left out: the activities
    with their contacts, the rollups, the contacts and companies."""
    query = select(Contact.id, Contact.email).where(Contact.org_id == org_id)
    email = {pk: address for pk, address in session.execute(query)}
    links: dict[int, set[str]] = {}
    for activity_id, contact_id in session.execute(
        select(ActivityContact.activity_id, ActivityContact.contact_id)
        .join(Activity, Activity.id == ActivityContact.activity_id)
        .where(Activity.org_id == org_id)
    ):
        links.setdefault(activity_id, set()).add(email[contact_id])
    activities = sorted(
        (a.user_id, a.type, a.occurred_at, a.subject or "", sorted(links.get(a.id, ())))
        for a in session.scalars(select(Activity).where(Activity.org_id == org_id))
    )
    users = select(User.id).where(User.org_id == org_id)
    days = sorted(
        (d.user_id, d.day, d.type, d.count)
        for d in session.scalars(select(ActivityDay).where(ActivityDay.user_id.in_(users)))
    )
    contact_days = sorted(
        (d.user_id, d.day, email[d.contact_id], d.count, d.first_at, d.last_at)
        for d in session.scalars(select(ContactDay).where(ContactDay.user_id.in_(users)))
    )
    user_contacts = sorted(
        (u.user_id, email[u.contact_id], u.count)
        for u in session.scalars(select(UserContact).where(UserContact.user_id.in_(users)))
    )
    companies = sorted(session.scalars(select(Company.domain).where(Company.org_id == org_id)))
    return {
        "activities": activities,
        "days": days,
        "contact_days": contact_days,
        "user_contacts": user_contacts,
        "contacts": sorted(email.values()),
        "companies": companies,
    }
