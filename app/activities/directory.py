"""The directory as writers read it: loaded with its version, and made current under a lock
that every change of it waits for.

A change of users, aliases or internal domains increments the organization's
`directory_versions` row in its own transaction (`bump`, called by app/activities/
reevaluate.py `record_change`). Every transaction that infers (an ingest page, an event
recomputation, a re-evaluation page) first calls `current`: it takes a share lock of that
row (PostgreSQL FOR SHARE, which the change's UPDATE waits for; on SQLite a write, which takes
its one write lock) and reloads the directory if the version moved. So a change either
commits before the writer looks (the writer infers with it) or after the writer committed
(the change's re-evaluation then finds what the writer stored): nothing is ever stored under
a directory that no longer holds without being re-derived.

The row is nothing else's: an update of the organization (its name, its zone) or the job's
progress never waits for a writer's lock. Two changes at once queue on the row's UPDATE.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.activities.inference import Directory
from app.activities.models import DirectoryVersion
from app.models import Organization, UserAddress


def load_directory(session: Session, org_id: int) -> Directory:
    # columns, not the ORM object: a session's cached organization may predate the change
    domains = session.scalars(select(Organization.domains).where(Organization.id == org_id)).one()
    version = session.scalar(
        select(DirectoryVersion.version).where(DirectoryVersion.org_id == org_id)
    )
    addresses = session.execute(
        select(UserAddress.email, UserAddress.user_id).where(UserAddress.org_id == org_id)
    )
    return Directory(
        internal_domains=frozenset(d.lower() for d in domains),
        user_by_address={email.lower(): user_id for email, user_id in addresses},
        version=version or 0,
    )


def _postgresql(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _create(session: Session, org_id: int) -> None:
    """The organization's row, if nobody made it yet (an insert that meets a concurrent one
    waits for it, then does nothing)."""
    conflict = "ON CONFLICT (org_id) DO NOTHING"
    mark = "%s" if _postgresql(session) else "?"
    session.connection().exec_driver_sql(
        f"INSERT INTO directory_versions (org_id, version) VALUES ({mark}, 0) {conflict}",
        (org_id,),
    )


def locked_version(session: Session, org_id: int) -> int:
    """The organization's directory version, read under a lock held to the end of the
    transaction that a change of the directory waits for. Straight to the driver, as
    store._zone: it runs once per ingest page."""
    connection = session.connection()
    if _postgresql(session):
        sql = "SELECT version FROM directory_versions WHERE org_id = %s FOR SHARE"
        found = connection.exec_driver_sql(sql, (org_id,)).scalar()
        if found is None:
            _create(session, org_id)
            found = connection.exec_driver_sql(sql, (org_id,)).scalar_one()
        return int(found)
    # pysqlite reads outside a transaction until the first write: write first
    _create(session, org_id)
    connection.exec_driver_sql(
        "UPDATE directory_versions SET version = version WHERE org_id = ?", (org_id,)
    )
    sql = "SELECT version FROM directory_versions WHERE org_id = ?"
    return int(connection.exec_driver_sql(sql, (org_id,)).scalar_one())


def bump(session: Session, org_id: int) -> None:
    """A change of the directory: the version moves on, after every writer holding the old
    one committed (the UPDATE waits for their share locks)."""
    _create(session, org_id)
    mark = "%s" if _postgresql(session) else "?"
    session.connection().exec_driver_sql(
        f"UPDATE directory_versions SET version = version + 1 WHERE org_id = {mark}", (org_id,)
    )


def current(session: Session, org_id: int, directory: Directory | None) -> Directory:
    """`directory` if it is still the organization's, else the directory as it is now; either
    way under the lock of `locked_version` (call it before inferring anything)."""
    version = locked_version(session, org_id)
    if directory is not None and directory.version == version:
        return directory
    return load_directory(session, org_id)
