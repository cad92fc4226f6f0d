"""An organization whose directory changes between imports, and what it ends up storing.

`Town` is made through the services: users ana and bob with a mailbox and a calendar each,
and admin. Its directory (ana's aliases, whether the colleague cleo is a user, the internal
domains) changes through the same service calls the API makes. `snapshot` is what a person
would compare: every activity with its user, time, subject and linked contacts, every
contact with its company, every company.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select

from app.activities import events
from app.activities.ingest import ingest_page, load_directory
from app.activities.models import Activity
from app.contacts.models import ActivityContact, Company, Contact
from app.db import session_scope
from app.models import Connection, Role, User
from app.users import schemas, service
from connectors.base import CalendarObject, Page, RemoteMessage

MAILBOXES = ("ana", "bob")


@dataclass
class Directory:
    """What the test sets: ana's aliases, whether cleo is a user, the internal domains."""

    aliases: tuple[str, ...] = ()
    cleo: bool = False
    domains: tuple[str, ...] = ("acme.example",)


@dataclass
class Town:
    org_id: int
    users: dict[str, int]  # primary address -> user id
    mailboxes: dict[str, int] = field(default_factory=dict)  # local part -> imap connection
    calendars: dict[str, int] = field(default_factory=dict)

    @classmethod
    def make(cls, directory: Directory) -> Town:
        with session_scope() as session:
            org, _ = service.create_org(
                session,
                schemas.OrgCreate(
                    name="Acme", domains=list(directory.domains), timezone="Europe/Brussels"
                ),
            )
            admin = session.scalars(select(User).where(User.org_id == org.id)).one()
            town = cls(org.id, {admin.email: admin.id})
            for local in MAILBOXES:
                aliases = list(directory.aliases) if local == "ana" else []
                user = town._add_user(session, admin, f"{local}@acme.example", aliases)
                for provider, boxes in (("imap", town.mailboxes), ("caldav", town.calendars)):
                    connection = Connection(
                        org_id=org.id, user_id=user.id, provider=provider, config={}, cursors={}
                    )
                    session.add(connection)
                    session.flush()
                    boxes[local] = connection.id
            if directory.cleo:
                town._add_user(session, admin, "cleo@acme.example", [])
            return town

    def _add_user(self, session: Any, admin: User, email: str, aliases: list[str]) -> User:
        user, _ = service.create_user(
            session,
            admin,
            schemas.UserCreate(
                email=email, name=email.split("@")[0].title(), role=Role.rep, aliases=aliases
            ),
        )
        self.users[email] = user.id
        return user

    def _admin(self, session: Any) -> User:
        return session.scalars(  # type: ignore[no-any-return]
            select(User).where(User.org_id == self.org_id, User.role == Role.admin)
        ).one()

    # -- directory changes, as the API makes them ------------------------------------------

    def set_aliases(self, aliases: Iterable[str]) -> None:
        with session_scope() as session:
            service.update_user(
                session,
                self._admin(session),
                self.users["ana@acme.example"],
                schemas.UserUpdate(aliases=list(aliases)),
            )

    def add_cleo(self) -> None:
        with session_scope() as session:
            self._add_user(session, self._admin(session), "cleo@acme.example", [])

    def set_domains(self, domains: Iterable[str]) -> None:
        with session_scope() as session:
            service.update_org(
                session, self._admin(session), schemas.OrgUpdate(domains=list(domains))
            )

    # -- capture ---------------------------------------------------------------------------

    def ingest(self, owner: str, *messages: RemoteMessage) -> None:
        with session_scope() as session:
            connection = session.get_one(Connection, self.mailboxes[owner])
            directory = load_directory(session, self.org_id)
            ingest_page(session, connection, Page(messages=tuple(messages)), directory)

    def calendar(self, owner: str, item: CalendarObject, *, now: datetime) -> None:
        with session_scope() as session:
            connection = session.get_one(Connection, self.calendars[owner])
            directory = load_directory(session, self.org_id)
            events.ingest_calendar(session, connection, [item], directory, now=now)

    # -- what a person compares ------------------------------------------------------------

    def snapshot(self) -> tuple[set[tuple[Any, ...]], dict[str, str | None], set[str]]:
        with session_scope() as session:
            email_of: dict[int, str] = dict(
                session.execute(select(User.id, User.email).where(User.org_id == self.org_id)).all()
            )
            linked: dict[int, set[str]] = {}
            for activity_id, email in session.execute(
                select(ActivityContact.activity_id, Contact.email)
                .join(Contact, Contact.id == ActivityContact.contact_id)
                .where(Contact.org_id == self.org_id)
            ):
                linked.setdefault(activity_id, set()).add(email)
            activities = {
                (
                    a.source_key,
                    email_of[a.user_id],
                    a.type,
                    a.occurred_at,
                    a.subject,
                    frozenset(linked.get(a.id, ())),
                )
                for a in session.scalars(select(Activity).where(Activity.org_id == self.org_id))
            }
            domains: dict[int, str] = dict(
                session.execute(
                    select(Company.id, Company.domain).where(Company.org_id == self.org_id)
                ).all()
            )
            contacts = {
                c.email: domains.get(c.company_id) if c.company_id else None
                for c in session.scalars(select(Contact).where(Contact.org_id == self.org_id))
            }
        return activities, contacts, set(domains.values())
