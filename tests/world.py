"""A small organization in the database, made through the services (no API)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select

from app.activities import events
from app.activities.ingest import IngestResult, ingest_page, load_directory
from app.db import session_scope
from app.models import Connection, Role, User
from app.users import schemas, service
from connectors.base import CalendarObject, Page, RemoteMessage


@dataclass
class World:
    org_id: int
    users: dict[str, int]  # local part -> user id
    connections: dict[str, int]  # local part -> imap connection id
    calendars: dict[str, int] = field(default_factory=dict)  # local part -> caldav connection

    def ingest(self, owner: str, *messages: RemoteMessage) -> IngestResult:
        with session_scope() as session:
            connection = session.get_one(Connection, self.connections[owner])
            directory = load_directory(session, self.org_id)
            return ingest_page(session, connection, Page(messages=tuple(messages)), directory)

    def calendar(self, owner: str, *objects: CalendarObject, now: datetime) -> int:
        """Sync calendar objects into the owner's calendar as of `now`; activities created."""
        with session_scope() as session:
            connection = session.get_one(Connection, self.calendars[owner])
            directory = load_directory(session, self.org_id)
            return events.ingest_calendar(session, connection, objects, directory, now=now)[1]

    def settle(self, now: datetime) -> int:
        with session_scope() as session:
            directory = load_directory(session, self.org_id)
            return events.settle_ended(session, self.org_id, directory, now=now)


def make_world(domains: tuple[str, ...] = ("acme.example",)) -> World:
    with session_scope() as session:
        org, _ = service.create_org(
            session,
            schemas.OrgCreate(name="Acme", domains=list(domains), timezone="Europe/Brussels"),
        )
        admin = session.scalars(select(User).where(User.org_id == org.id)).one()
        users, connections, calendars = {}, {}, {}
        for local, aliases in (("ana", ["a.silva@acme.example"]), ("bob", []), ("cleo", [])):
            user, _ = service.create_user(
                session,
                admin,
                schemas.UserCreate(
                    email=f"{local}@acme.example",
                    name=local.title(),
                    role=Role.rep,
                    aliases=aliases,
                ),
            )
            connection = Connection(
                org_id=org.id, user_id=user.id, provider="imap", config={}, cursors={}
            )
            calendar = Connection(
                org_id=org.id, user_id=user.id, provider="caldav", config={}, cursors={}
            )
            session.add_all([connection, calendar])
            session.flush()
            users[local], connections[local] = user.id, connection.id
            calendars[local] = calendar.id
        return World(org.id, users, connections, calendars)
