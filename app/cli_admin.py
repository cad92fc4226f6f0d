"""The `tally` commands an operator runs now and then: rotate-keys, rollups rebuild, and the
instance operator's organization recovery (orgs list, orgs make-admin)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import Progress

from app import runtime, statistics
from app.cli_common import ACTIVITY_TABLES, columns, console, refresh_statistics, require
from app.db import get_database

rollups_cli = typer.Typer(no_args_is_help=True, help="The stored activity rollups.")


def rotate_keys() -> None:
    """Re-encrypt every stored credential with the newest key in TALLY_SECRET_KEYS."""
    from sqlalchemy import select

    from app.db import session_scope
    from app.models import Connection
    from app.security import rotate_secret

    shared = not runtime.is_embedded(runtime.database_url())  # the key must be everyone's
    require("rotate-keys", secrets=("TALLY_SECRET_KEYS",) if shared else ())
    count = 0
    with session_scope() as session:
        for connection in session.scalars(select(Connection).where(Connection.secret.is_not(None))):
            assert connection.secret is not None
            connection.secret = rotate_secret(connection.secret)
            count += 1
    console.print(f"re-encrypted {count} connection secrets with the newest key")


@rollups_cli.command("rebuild")
def rollups_rebuild(
    org: Annotated[int | None, typer.Option(help="only this organization")] = None,
) -> None:
    """Recount activity_days, contact_days and user_contacts from the activities, one
    organization per transaction (after restoring some tables from a backup, say)."""
    from sqlalchemy import select

    from app.activities import store
    from app.db import session_scope
    from app.models import Organization

    require("rollups rebuild")
    with session_scope() as session:
        query = select(Organization.id).order_by(Organization.id)
        orgs = list(session.scalars(query if org is None else query.where(Organization.id == org)))
    if org is not None and not orgs:
        console.print(f"[red]error:[/red] no organization {org}")
        raise typer.Exit(2)
    days = contacts = pairs = 0
    with Progress(*columns(), console=console, transient=False) as bar:
        task = bar.add_task("rebuilding rollups", total=len(orgs))
        for org_id in orgs:
            with session_scope() as session:
                rebuilt = store.rebuild(session, org_id)
            days, contacts = days + rebuilt.activity_days, contacts + rebuilt.contact_days
            pairs += rebuilt.user_contacts
            bar.advance(task)
    # the old rows are dead now: vacuumed at once on PostgreSQL, or reads visit them until
    # autovacuum comes (if it runs at all)
    statistics.vacuum(get_database().engine, ("activity_days", "contact_days", "user_contacts"))
    refresh_statistics(ACTIVITY_TABLES)
    console.print(
        f"{len(orgs)} organizations: {days} activity_days rows, {contacts} contact_days rows, "
        f"{pairs} user_contacts rows"
    )


# --- organizations: the instance operator's recovery (docs/operations.md) ----------------------

orgs_cli = typer.Typer(no_args_is_help=True, help="Organizations (instance operator).")


def _instance_operator(token: str | None) -> None:
    """The instance admin token, from TALLY_ADMIN_TOKEN or typed at the prompt."""
    from app.security import admin_token, same_secret

    expected = admin_token()
    if not expected:
        console.print("[red]error:[/red] this instance has no admin token: set TALLY_ADMIN_TOKEN")
        raise typer.Exit(2)
    given = token if token is not None else typer.prompt("instance admin token", hide_input=True)
    if not same_secret(given, expected):
        console.print("[red]error:[/red] that is not the instance admin token")
        raise typer.Exit(2)


AdminToken = Annotated[
    str | None,
    typer.Option(
        envvar="TALLY_ADMIN_TOKEN",
        show_envvar=True,
        help="the instance admin token (prompted for when not given)",
    ),
]


@orgs_cli.command("list")
def orgs_list(admin_token: AdminToken = None) -> None:
    """Every organization with its active admins."""
    from sqlalchemy import select

    from app.db import session_scope
    from app.models import Organization
    from app.users.lifecycle import active_admin_emails

    require("orgs list")
    _instance_operator(admin_token)
    with session_scope() as session:
        for org in session.scalars(select(Organization).order_by(Organization.id)):
            admins = ", ".join(active_admin_emails(session, org.id)) or "NO ACTIVE ADMIN"
            typer.echo(f"{org.id}\t{org.name}\t{admins}")


@orgs_cli.command("make-admin")
def orgs_make_admin(
    org: Annotated[int, typer.Option(help="the organization's id (`tally orgs list`)")],
    email: Annotated[str, typer.Option(help="the user's email address")],
    admin_token: AdminToken = None,
) -> None:
    """Make a user an active admin of their organization (reactivating them if they had
    left) and print a new API key for them, shown once."""
    from app.db import session_scope
    from app.users.lifecycle import make_admin
    from app.users.service import issue_key

    require("orgs make-admin")
    _instance_operator(admin_token)
    try:
        with session_scope() as session:
            user, reactivated = make_admin(session, org, email)
            key = issue_key(session, user)
            user_id = user.id
    except LookupError as error:
        console.print(f"[red]error:[/red] {escape(str(error))}")
        raise typer.Exit(2) from None
    console.print(
        f"user {user_id} ({escape(email)}) is an admin of organization {org}"
        + (" again, reactivated" if reactivated else "")
        + "; their new API key, shown once:"
    )
    typer.echo(key)


def register(cli: typer.Typer) -> None:
    cli.command("rotate-keys")(rotate_keys)
    cli.add_typer(rollups_cli, name="rollups")
    cli.add_typer(orgs_cli, name="orgs")
