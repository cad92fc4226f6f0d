"""Import mailbox files for a user through the same ingest as live sync."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from sqlalchemy import select

from app.activities import events
from app.activities.ingest import IngestResult, ingest_page, load_directory
from app.contacts.service import KnownContacts
from app.db import session_scope
from app.errors import BadRequest, NotFound
from app.models import Connection, ConnectionStatus, User, UserAddress, utcnow
from connectors.files import FileKind, IcsFileConnector, MailFileConnector


@dataclass
class ImportTotals(IngestResult):
    messages: int = 0  # items read from the files (messages, calendar files), new or not


def _import_connection(user_email: str, org_id: int | None) -> tuple[int, frozenset[str]]:
    """The user's "import" connection (made on first use) and their addresses."""
    with session_scope() as session:
        query = (
            select(User)
            .join(UserAddress, UserAddress.user_id == User.id)
            .where(UserAddress.email == user_email.strip().lower())
        )
        if org_id is not None:
            query = query.where(User.org_id == org_id)
        users = session.scalars(query).all()
        if not users:
            raise NotFound(f"no user with the address {user_email}")
        if len(users) > 1:
            raise BadRequest(f"{user_email} is a user in several organizations: pass --org")
        user = users[0]
        connection = session.scalar(
            select(Connection).where(Connection.user_id == user.id, Connection.provider == "import")
        )
        if connection is None:
            connection = Connection(
                org_id=user.org_id,
                user_id=user.id,
                provider="import",
                status=ConnectionStatus.idle,
                config={},
                cursors={},
            )
            session.add(connection)
            session.flush()
        addresses = session.scalars(select(UserAddress.email).where(UserAddress.user_id == user.id))
        return connection.id, frozenset(addresses)


def prepare(
    user_email: str,
    paths: Sequence[Path],
    kind: FileKind | Literal["ics"],
    *,
    org_id: int | None = None,
) -> tuple[int, MailFileConnector | IcsFileConnector]:
    connection_id, own = _import_connection(user_email, org_id)
    connector: MailFileConnector | IcsFileConnector
    if kind == "ics":
        connector = IcsFileConnector(paths)
    else:
        connector = MailFileConnector(paths, kind=kind, own_addresses=own)
    connector.check()
    return connection_id, connector


def run_import(
    connection_id: int,
    connector: MailFileConnector | IcsFileConnector,
    *,
    progress: Callable[[int], None] = lambda _n: None,
) -> ImportTotals:
    totals = ImportTotals()
    with session_scope() as session:
        org_id = session.get_one(Connection, connection_id).org_id
        directory = load_directory(session, org_id)
    known = KnownContacts()
    for page in connector.pull(None, since=datetime.min.replace(tzinfo=UTC)):
        with session_scope() as session:
            connection = session.get_one(Connection, connection_id)
            result = ingest_page(session, connection, page, directory, known)
            connection.last_synced_at = utcnow()
        items = len(page.messages) + len(page.failures) + len(page.calendar)
        totals.add(result)
        totals.messages += items
        progress(items)
    with session_scope() as session:  # past events have ended: held meetings and calls now
        totals.activities_created += events.settle_ended(session, org_id, directory, now=utcnow())
    return totals
