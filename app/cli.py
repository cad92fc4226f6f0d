"""The `tally` command: serve, api, worker, migrate, import, rotate-keys."""

from __future__ import annotations

import signal
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TimeRemainingColumn,
)

from app.config import settings
from app.runtime import settle_heap

cli = typer.Typer(no_args_is_help=True, help="Tally: automatic sales-activity capture.")
import_cli = typer.Typer(no_args_is_help=True, help="Import mail, calendars or deals.")
cli.add_typer(import_cli, name="import")
rollups_cli = typer.Typer(no_args_is_help=True, help="The stored activity rollups.")
cli.add_typer(rollups_cli, name="rollups")
console = Console(stderr=True)

Host = Annotated[str, typer.Option(help="address to listen on")]
Port = Annotated[int, typer.Option(help="port to listen on")]


def migrate_database() -> None:
    from app.db import get_database, upgrade

    upgrade(get_database())


def _announce_embedded() -> None:
    from app.security import ADMIN_TOKEN_FILE, KEY_FILE, admin_token, encryption_keys

    encryption_keys()
    admin_token()
    data = settings.data_dir.resolve()
    console.print(f"[bold]Tally[/bold] embedded: database {settings.resolved_database_url}")
    if settings.secret_keys is None:
        console.print(
            f"  encryption key kept in {data / KEY_FILE} "
            "(back it up; set TALLY_SECRET_KEYS to manage it yourself)"
        )
    if settings.admin_token is None:
        console.print(f"  instance admin token kept in {data / ADMIN_TOKEN_FILE}")


@cli.command()
def serve(host: Host = "127.0.0.1", port: Port = 8000) -> None:
    """API, scheduler and sync worker in one process (the embedded default, on SQLite)."""
    import uvicorn

    from app import observability
    from app.main import create_app
    from app.scheduler import background
    from app.sync.worker import SyncWorker

    observability.configure_logging()
    migrate_database()
    _announce_embedded()
    settle_heap()
    worker = SyncWorker(settings.sync_workers)
    scheduler = background(worker)
    scheduler.start()
    try:
        uvicorn.run(create_app(), host=host, port=port, log_level=settings.log_level.lower())
    finally:
        scheduler.shutdown(wait=False)
        worker.shutdown()


@cli.command()
def api(
    host: Host = "127.0.0.1",
    port: Port = 8000,
    workers: Annotated[int, typer.Option(help="uvicorn worker processes")] = 1,
) -> None:
    """The API only (production: run `tally worker` processes beside it)."""
    import uvicorn

    from app import observability

    observability.configure_logging()
    uvicorn.run(
        "app.main:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=settings.log_level.lower(),
    )


@cli.command()
def worker() -> None:
    """A sync worker: claims due connections and syncs them (run as many as you like)."""
    from app import observability
    from app.scheduler import blocking
    from app.sync.worker import SyncWorker

    observability.configure_logging()
    settle_heap()
    sync_worker = SyncWorker(settings.sync_workers)
    scheduler = blocking(sync_worker)
    signal.signal(signal.SIGTERM, lambda *_: scheduler.shutdown(wait=False))
    console.print(f"worker {sync_worker.owner} started with {settings.sync_workers} threads")
    try:
        scheduler.start()
    finally:
        sync_worker.shutdown()


@cli.command()
def migrate() -> None:
    """Apply every database migration (same as `alembic upgrade head`)."""
    migrate_database()
    console.print("database is at the latest schema")


class Kind(StrEnum):
    mbox = "mbox"
    maildir = "maildir"
    ics = "ics"


def _columns() -> tuple[ProgressColumn, ...]:
    return (
        *Progress.get_default_columns()[:1],
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )


ACTIVITY_TABLES = (
    "activities",
    "activity_contacts",
    "activity_days",
    "contact_days",
    "user_contacts",
)
MAIL_TABLES = (*ACTIVITY_TABLES, "messages", "observations", "contacts", "companies")
DEAL_TABLES = ("deals", "deal_contacts", "deal_changes")


def _refresh_statistics(written: tuple[str, ...]) -> None:
    """After bulk writes: the planner's statistics now, not at the scheduler's next check
    (a server with autovacuum off plans team reads on a table it believes empty)."""
    from app import statistics
    from app.db import session_scope

    with session_scope() as session:
        statistics.refresh(session, written)


def _import(kind: Kind, user: str, paths: list[Path], org: int | None) -> None:
    from app.errors import AppError
    from app.sync.imports import prepare, run_import

    try:
        connection_id, connector = prepare(user, paths, kind.value, org_id=org)
    except (AppError, FileNotFoundError) as error:
        console.print(f"[red]error:[/red] {escape(str(error))}")
        raise typer.Exit(2) from None
    settle_heap()
    with Progress(*_columns(), console=console, transient=False) as bar:
        total = len(connector.files()) if kind == Kind.ics else connector.count()  # type: ignore[union-attr]
        task = bar.add_task(f"importing {kind.value}", total=total)
        totals = run_import(connection_id, connector, progress=lambda n: bar.advance(task, n))
    _refresh_statistics(MAIL_TABLES)
    if kind == Kind.ics:
        console.print(
            f"{totals.messages} calendar files: {totals.failed} unreadable; "
            f"{totals.activities_created} new activities"
        )
        return
    console.print(
        f"{totals.messages} messages: {totals.imported} imported, {totals.filtered} filtered, "
        f"{totals.failed} unreadable; {totals.activities_created} new activities"
    )


User = Annotated[str, typer.Option("--user", help="the user's email address (or an alias)")]
Paths = Annotated[list[Path], typer.Argument(exists=True, help="files or folders to import")]
Org = Annotated[int | None, typer.Option(help="organization id, when the address is ambiguous")]


@import_cli.command("mbox")
def import_mbox(user: User, paths: Paths, org: Org = None) -> None:
    """Import mbox files (a Google Takeout export, say); importing twice changes nothing."""
    _import(Kind.mbox, user, paths, org)


@import_cli.command("maildir")
def import_maildir(user: User, paths: Paths, org: Org = None) -> None:
    """Import maildir folders; importing twice changes nothing."""
    _import(Kind.maildir, user, paths, org)


@import_cli.command("ics")
def import_ics(user: User, paths: Paths, org: Org = None) -> None:
    """Import calendar files (.ics, or folders of them); importing twice changes nothing."""
    _import(Kind.ics, user, paths, org)


def _column(field: str, what: str) -> Any:
    return typer.Option(f"--{field.replace('_', '-')}-column", help=f"column of the {what}")


@import_cli.command("deals")
def import_deals(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="a CSV export")],
    org: Annotated[int | None, typer.Option(help="organization id (needed if several)")] = None,
    mapping: Annotated[Path | None, typer.Option(exists=True, help="TOML or JSON file")] = None,
    id_column: Annotated[str | None, _column("id", "opportunity id (external_id)")] = None,
    owner_column: Annotated[str | None, _column("owner", "owner: e-mail or name")] = None,
    name_column: Annotated[str | None, _column("name", "deal's name")] = None,
    value_column: Annotated[str | None, _column("value", "value")] = None,
    cost_column: Annotated[str | None, _column("cost", "cost")] = None,
    stage_column: Annotated[str | None, _column("stage", "stage or status")] = None,
    created_column: Annotated[str | None, _column("created", "creation date")] = None,
    closed_column: Annotated[str | None, _column("closed", "close date")] = None,
    expected_close_column: Annotated[
        str | None, _column("expected_close", "expected close date")
    ] = None,
    currency_column: Annotated[str | None, _column("currency", "currency code")] = None,
    product_column: Annotated[str | None, _column("product", "product (price list)")] = None,
    currency: Annotated[str | None, typer.Option(help="every row's (default: org's)")] = None,
    stage: Annotated[
        list[str] | None, typer.Option(help="SOURCE=won|lost|open|PIPELINE STAGE, repeatable")
    ] = None,
    date_format: Annotated[str | None, typer.Option(help="strptime format (default ISO)")] = None,
    delimiter: Annotated[str | None, typer.Option(help="cell separator (default ,)")] = None,
    create_stages: Annotated[bool, typer.Option(help="add mapped stages to the pipeline")] = False,
    dry_run: Annotated[bool, typer.Option(help="check every row, write nothing")] = False,
) -> None:
    """Import deals from another CRM or a spreadsheet (docs/import.md); twice changes nothing."""
    import csv

    from app.deals.imports import count_rows, import_deals, summary
    from app.deals.mapping import MappingError, resolve

    options = {k: v for k, v in locals().items() if k.endswith("_column")}
    try:
        plan = resolve(
            mapping,
            file.parent,
            stage_map=stage,
            currency=currency and currency.upper(),
            date_format=date_format,
            delimiter=delimiter,
            **options,
        )
        with Progress(*_columns(), console=console) as bar:
            task = bar.add_task("importing deals", total=count_rows(file, plan.delimiter))
            report = import_deals(
                file,
                plan,
                org_id=org,
                dry_run=dry_run,
                create_stages=create_stages,
                progress=lambda n: bar.advance(task, n),
            )
    except (MappingError, UnicodeDecodeError, csv.Error) as error:  # the file is read first
        console.print(f"[red]error:[/red] {escape(str(error))}", soft_wrap=True, highlight=False)
        raise typer.Exit(2) from None
    if not dry_run:
        _refresh_statistics(DEAL_TABLES)
    for line in summary(report, dry_run=dry_run):
        console.print(line, highlight=False, markup=False, soft_wrap=True)
    if report.refused:
        raise typer.Exit(1)


@cli.command("rotate-keys")
def rotate_keys() -> None:
    """Re-encrypt every stored credential with the newest key in TALLY_SECRET_KEYS."""
    from sqlalchemy import select

    from app.db import session_scope
    from app.models import Connection
    from app.security import rotate_secret

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

    with session_scope() as session:
        query = select(Organization.id).order_by(Organization.id)
        orgs = list(session.scalars(query if org is None else query.where(Organization.id == org)))
    if org is not None and not orgs:
        console.print(f"[red]error:[/red] no organization {org}")
        raise typer.Exit(2)
    days = contacts = pairs = 0
    with Progress(*_columns(), console=console, transient=False) as bar:
        task = bar.add_task("rebuilding rollups", total=len(orgs))
        for org_id in orgs:
            with session_scope() as session:
                rebuilt = store.rebuild(session, org_id)
            days, contacts = days + rebuilt.activity_days, contacts + rebuilt.contact_days
            pairs += rebuilt.user_contacts
            bar.advance(task)
    _refresh_statistics(ACTIVITY_TABLES)
    console.print(
        f"{len(orgs)} organizations: {days} activity_days rows, {contacts} contact_days rows, "
        f"{pairs} user_contacts rows"
    )


def main() -> None:
    cli(prog_name="tally")


if __name__ == "__main__":  # pragma: no cover
    main()
