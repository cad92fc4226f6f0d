"""The `tally` command: serve, api, worker, migrate, import, rotate-keys."""

from __future__ import annotations

import signal
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

from app.config import settings
from app.runtime import settle_heap

cli = typer.Typer(no_args_is_help=True, help="Tally: automatic sales-activity capture.")
import_cli = typer.Typer(no_args_is_help=True, help="Import mailbox files for a user.")
cli.add_typer(import_cli, name="import")
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


def _import(kind: Kind, user: str, paths: list[Path], org: int | None) -> None:
    from app.errors import AppError
    from app.sync.imports import prepare, run_import

    try:
        connection_id, connector = prepare(user, paths, kind.value, org_id=org)
    except (AppError, FileNotFoundError) as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(2) from None
    settle_heap()
    columns = (
        *Progress.get_default_columns()[:1],
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=False) as bar:
        total = len(connector.files()) if kind == Kind.ics else connector.count()  # type: ignore[union-attr]
        task = bar.add_task(f"importing {kind.value}", total=total)
        totals = run_import(connection_id, connector, progress=lambda n: bar.advance(task, n))
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


def main() -> None:
    cli(prog_name="tally")


if __name__ == "__main__":  # pragma: no cover
    main()
