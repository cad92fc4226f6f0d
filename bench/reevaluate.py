"""Re-evaluation after a change of the directory: adding one alias to a user whose mailbox
of N messages (bench/mailgen.py) was imported before the alias was known.

    .venv/bin/python bench/reevaluate.py                      # 100,000 messages, PostgreSQL
    .venv/bin/python bench/reevaluate.py --messages 20000 --backend sqlite --check

The mailbox owner (Dana Reyes) is made a user under another address (d.reyes@acme.example)
with none of her real addresses, the mailbox is imported through `ingest_page` (untimed),
the tables are analyzed, and then her address dana.reyes@acme.example becomes her alias
through the user service, as PATCH /users/{id} makes it. Timed: that change, and the
re-evaluation job (`reevaluate.drain`) until it is done. `--check` imports the same mailbox
into a second database where the alias was there from the start and compares activities,
links, contacts and companies. Results as Markdown on stdout, progress on stderr.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ingest import ServerClock, _parse, fresh_database, say
from mailgen import ORG_DOMAIN, ORG_NAME, ORG_TIMEZONE, USERS, Mailbox
from sqlalchemy import func, select, text

from app.activities import reevaluate
from app.activities.ingest import ingest_page, load_directory
from app.activities.models import Activity, MessageAddress
from app.contacts.models import ActivityContact, Company, Contact
from app.contacts.service import KnownContacts
from app.db import Database, commit_without_waiting, session_scope, set_database
from app.models import Connection, ConnectionStatus, Role, User, utcnow
from app.users import schemas
from app.users.service import create_org, create_user, update_user
from connectors.base import Failure, Page, RemoteMessage

OWNER_AS_USER = "d.reyes@acme.example"  # the address the owner's user is made under
ALIAS = USERS[0][1]  # dana.reyes@acme.example: the alias added afterwards


def setup(database: Database, *, alias_known: bool) -> tuple[int, int, int]:
    """Acme with its users; the owner without her real addresses unless `alias_known`.
    (org id, owner id, connection id)"""
    set_database(database)
    admin_name, admin_email, _ = USERS[1]
    with session_scope() as session:
        org, _ = create_org(
            session,
            schemas.OrgCreate(
                name=ORG_NAME,
                domains=[ORG_DOMAIN],
                timezone=ORG_TIMEZONE,
                admin_email=admin_email,
                admin_name=admin_name,
            ),
        )
        admin = session.scalars(select(User).where(User.email == admin_email)).one()
        owner_id = 0
        for index, (name, email, aliases) in enumerate(USERS):
            if email == admin_email:
                continue
            if index == 0:
                email, aliases = OWNER_AS_USER, ((ALIAS,) if alias_known else ())
            user, _ = create_user(
                session,
                admin,
                schemas.UserCreate(email=email, name=name, role=Role.rep, aliases=list(aliases)),
            )
            owner_id = owner_id or user.id
        connection = Connection(
            org_id=org.id,
            user_id=owner_id,
            provider="imap",
            status=ConnectionStatus.idle,
            config={},
            cursors={},
        )
        session.add(connection)
        session.flush()
        return org.id, owner_id, connection.id


def pages(mailbox: Mailbox, size: int) -> Iterator[Page]:
    for generated in mailbox.pages(size):
        parsed = [_parse(g) for g in generated]
        yield Page(
            messages=tuple(m for m in parsed if isinstance(m, RemoteMessage)),
            failures=tuple(f for f in parsed if isinstance(f, Failure)),
        )


def analyze(database: Database) -> None:
    if not database.is_sqlite:
        with database.engine.begin() as connection:
            connection.execute(text("ANALYZE"))


def import_mailbox(database: Database, args: argparse.Namespace, org: tuple[int, int, int]) -> None:
    org_id, _, connection_id = org
    with session_scope() as session:
        directory = load_directory(session, org_id)
    known = KnownContacts()
    done = 0
    for number, page in enumerate(pages(Mailbox(args.seed, args.messages), args.page_size)):
        with session_scope() as session:
            connection = session.get_one(Connection, connection_id)
            ingest_page(session, connection, page, directory, known)
            commit_without_waiting(session)
        done += len(page.messages) + len(page.failures)
        if number in (0, 4) or done % 20_000 < args.page_size:
            analyze(database)  # what autovacuum would do while a mailbox grows
            say(f"  imported {done:,} messages", err=True)
    analyze(database)


def counts(org_id: int) -> dict[str, object]:
    with session_scope() as session:

        def number(query: Any) -> int:
            return int(session.scalar(query) or 0)

        activities = select(Activity.id).where(Activity.org_id == org_id)
        by_type = dict(
            session.execute(
                select(Activity.type, func.count())
                .where(Activity.org_id == org_id)
                .group_by(Activity.type)
            ).all()
        )
        return {
            "activities": by_type,
            "links": number(
                select(func.count())
                .select_from(ActivityContact)
                .where(ActivityContact.activity_id.in_(activities))
            ),
            "contacts": number(
                select(func.count()).select_from(Contact).where(Contact.org_id == org_id)
            ),
            "companies": number(
                select(func.count()).select_from(Company).where(Company.org_id == org_id)
            ),
            "index rows": number(
                select(func.count())
                .select_from(MessageAddress)
                .where(MessageAddress.org_id == org_id)
            ),
        }


@dataclass
class Result:
    change_s: float = 0.0  # the alias added (the user service's transaction)
    reevaluate_s: float = 0.0  # the job, from the change to the end of its run
    cpu_s: float = 0.0  # this process's CPU during the job
    server_s: float = 0.0  # PostgreSQL's backends' CPU during the job
    items: int = 0  # messages and events the job derived again
    counts: dict[str, dict[str, object]] = field(default_factory=dict)


def bench(args: argparse.Namespace, workdir: Path) -> Result:
    result = Result()
    with fresh_database(args.backend, workdir, "reeval") as database:
        org = setup(database, alias_known=False)
        say(f"[{args.backend}] importing {args.messages:,} messages", err=True)
        import_mailbox(database, args, org)
        result.counts["before"] = counts(org[0])
        clock = ServerClock(database)
        s0, t0 = clock(), time.perf_counter()
        with session_scope() as session:
            admin = session.scalars(select(User).where(User.email == USERS[1][1])).one()
            update_user(session, admin, org[1], schemas.UserUpdate(aliases=[ALIAS]))
        t1 = time.perf_counter()
        say(f"[{args.backend}] alias added; re-evaluating", err=True)
        c0 = time.process_time()
        reevaluate.drain()
        t2, c2, s2 = time.perf_counter(), time.process_time(), clock()
        with session_scope() as session:
            status = reevaluate.status(session, org[0], now=utcnow())
        result.counts["after"] = counts(org[0])
    result.change_s, result.reevaluate_s = t1 - t0, t2 - t1
    result.cpu_s, result.server_s, result.items = c2 - c0, s2 - s0, status.total
    if args.check:
        with fresh_database(args.backend, workdir, "once") as database:
            org = setup(database, alias_known=True)
            say(f"[{args.backend}] --check: importing with the alias known", err=True)
            import_mailbox(database, args, org)
            result.counts["once"] = counts(org[0])
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--backend", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--page-size", type=int, default=1000, help="import page size")
    parser.add_argument("--seed", type=int, default=20250106)
    parser.add_argument(
        "--check",
        action="store_true",
        help="compare with an import made with the alias known (a second database)",
    )
    args = parser.parse_args(argv)
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="tally-reeval-") as tmp:
        found = bench(args, Path(tmp))
    say(
        f"\n{args.messages:,} messages, {args.backend}, seed {args.seed}; "
        f"2 CPUs, load average {load:.1f} before, {os.getloadavg()[0]:.1f} after\n"
    )
    say(
        "| backend | messages | affected messages | change ms | re-evaluation s "
        "| µs/affected | client CPU s | server CPU s |"
    )
    say("|---|---:|---:|---:|---:|---:|---:|---:|")
    per_item = found.reevaluate_s / max(found.items, 1) * 1e6
    say(
        f"| {args.backend} | {args.messages:,} | {found.items:,} | {found.change_s * 1000:.0f} "
        f"| {found.reevaluate_s:.1f} | {per_item:.0f} | {found.cpu_s:.1f} "
        f"| {found.server_s:.1f} |"
    )
    say()
    for label, figures in found.counts.items():
        say(f"- {label}: {figures}")
    if "once" in found.counts:
        mine, once = found.counts["after"], found.counts["once"]
        same = all(mine[k] == once[k] for k in once if k != "index rows")
        say(f"- after re-evaluation == imported with the alias known: {same}")
        return 0 if same else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
