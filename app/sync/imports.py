"""Import mailbox files for a user through the same ingest as live sync."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
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
from connectors.base import RemoteMessage
from connectors.files import FileKind, IcsFileConnector, MailFileConnector


@dataclass
class ImportTotals(IngestResult):
    messages: int = 0  # items read from the files (messages, calendar files), new or not
    concerning: int = 0  # messages from or to one of the user's addresses
    # in how many messages each address appears (sender, to, cc): when none is the user's,
    # the most frequent ones are the likely aliases
    addresses: Counter[str] = field(default_factory=Counter)

    @property
    def already_seen(self) -> int:
        """Items an earlier import (or an earlier copy in these files) already recorded: each
        is stored once per connection, so a repeat import skips them."""
        return self.messages - self.seen


def _count(totals: ImportTotals, messages: Sequence[RemoteMessage], own: frozenset[str]) -> None:
    for message in messages:
        people = {p.email for p in (message.sender, *message.to, *message.cc, *message.bcc) if p}
        totals.concerning += not people.isdisjoint(own)
        totals.addresses.update(people)


def summary(totals: ImportTotals, connector: MailFileConnector | IcsFileConnector) -> list[str]:
    """What `tally import` says when it is done: what was new, what was seen before, and
    whether the files concern the user at all."""
    if not isinstance(connector, MailFileConnector):
        return [
            f"{totals.messages} calendar files: {totals.failed} unreadable; "
            f"{totals.activities_created} new activities"
        ]
    lines = []
    if totals.messages and totals.already_seen == totals.messages:
        lines.append(
            f"{totals.messages} messages, all already seen by an earlier import: nothing new"
        )
    else:
        seen_before = f", {totals.already_seen} already seen" if totals.already_seen else ""
        lines.append(
            f"{totals.messages} messages: {totals.imported} imported, {totals.filtered} filtered, "
            f"{totals.failed} unreadable{seen_before}; {totals.activities_created} new activities"
        )
    if totals.messages and not totals.concerning:
        addresses = " or ".join(sorted(connector.own_addresses))
        lines.append(
            f"0 of {totals.messages} messages are from or to {addresses} "
            "(the user's address and aliases): check --user and the files"
        )
        frequent = ", ".join(f"{a} ({n})" for a, n in totals.addresses.most_common(3))
        if frequent:
            lines.append(f"the addresses most often in them: {frequent}")
    return lines


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
        if isinstance(connector, MailFileConnector):
            _count(totals, page.messages, connector.own_addresses)
        progress(items)
    with session_scope() as session:  # past events have ended: held meetings and calls now
        totals.activities_created += events.settle_ended(session, org_id, directory, now=utcnow())
    return totals
