"""The `tally` command: serve, api, worker, migrate, info, import; the operator's commands
(rotate-keys, rollups, orgs) are in app/cli_admin.py."""

from __future__ import annotations

import signal
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import Progress

from app import cli_admin, runtime
from app.cli_common import (
    BOTH_SECRETS,
    DEAL_TABLES,
    MAIL_TABLES,
    columns,
    console,
    fail,
    refresh_statistics,
    require,
    say,
)
from app.config import settings
from app.runtime import settle_heap

cli = typer.Typer(
    no_args_is_help=True,
    help=(
        "Tally: automatic sales-activity capture. "
        f"Data directory: {settings.data_dir} ({runtime.data_dir_source()}); "
        "`tally info` tells where the database is and whether it is ready."
    ),
)
import_cli = typer.Typer(no_args_is_help=True, help="Import mail, calendars or deals.")
cli.add_typer(import_cli, name="import")
cli_admin.register(cli)

Host = Annotated[str, typer.Option(help="address to listen on")]
Port = Annotated[int, typer.Option(help="port to listen on")]


@cli.command()
def serve(host: Host = "127.0.0.1", port: Port = 8000) -> None:
    """API, scheduler and sync worker in one process (the embedded default, on SQLite)."""
    import uvicorn

    from app import health, observability
    from app.main import create_app
    from app.scheduler import background
    from app.sync.worker import SyncWorker

    if not runtime.is_embedded(runtime.database_url()):  # then other processes share it
        require("serve", secrets=BOTH_SECRETS, database=False)
    observability.configure_logging()
    runtime.migrate()
    say(runtime.serving(f"http://{host}:{port}/docs"))
    settle_heap()
    worker = SyncWorker(settings.sync_workers)
    scheduler = background(worker)
    health.schedule(scheduler, worker.owner)
    scheduler.start()
    try:
        uvicorn.run(create_app(), host=host, port=port, log_level=settings.log_level.lower())
    finally:
        scheduler.shutdown(wait=False)
        worker.shutdown()
        health.forget(worker.owner)


@cli.command()
def api(
    host: Host = "127.0.0.1",
    port: Port = 8000,
    workers: Annotated[int, typer.Option(help="uvicorn worker processes")] = 1,
) -> None:
    """The API only (production: run `tally worker` processes beside it)."""
    import uvicorn

    from app import observability

    require("api", secrets=BOTH_SECRETS)
    observability.configure_logging()
    say(runtime.started(f"API, docs at http://{host}:{port}/docs"))
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
    from app import health, observability
    from app.scheduler import blocking
    from app.sync.worker import SyncWorker

    # a worker decrypts credentials and never reads the admin token
    require("worker", secrets=("TALLY_SECRET_KEYS",))
    observability.configure_logging()
    settle_heap()
    sync_worker = SyncWorker(settings.sync_workers)
    scheduler = blocking(sync_worker)
    health.schedule(scheduler, sync_worker.owner)
    signal.signal(signal.SIGTERM, lambda *_: scheduler.shutdown(wait=False))
    say(runtime.started(f"worker {sync_worker.owner} with {settings.sync_workers} threads"))
    try:
        scheduler.start()
    finally:
        sync_worker.shutdown()
        health.forget(sync_worker.owner)


@cli.command()
def migrate() -> None:
    """Create the database or bring it to the latest schema (as `alembic upgrade head`)."""
    runtime.migrate()
    say([f"{runtime.shown_url(runtime.database_url())} is at the latest schema"])


@cli.command()
def info() -> None:
    """Where the data directory and the database are, and whether the database is ready."""
    out = Console()  # stdout: `tally info` is read by people and by scripts
    for line in runtime.info():
        out.print(line, highlight=False, soft_wrap=True, markup=False)


class Kind(StrEnum):
    mbox = "mbox"
    maildir = "maildir"
    ics = "ics"


def _import(kind: Kind, user: str, paths: list[Path], org: int | None) -> None:
    from app.errors import AppError
    from app.sync.imports import prepare, run_import, summary

    require(f"import {kind.value}")
    try:
        connection_id, connector = prepare(user, paths, kind.value, org_id=org)
    except (AppError, FileNotFoundError) as error:
        fail(str(error))
    settle_heap()
    with Progress(*columns(), console=console, transient=False) as bar:
        total = len(connector.files()) if kind == Kind.ics else connector.count()  # type: ignore[union-attr]
        task = bar.add_task(f"importing {kind.value}", total=total)
        totals = run_import(connection_id, connector, progress=lambda n: bar.advance(task, n))
    refresh_statistics(MAIL_TABLES)
    for line in summary(totals, connector):
        console.print(line, highlight=False, markup=False, soft_wrap=True)


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
    require("import deals")
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
        with Progress(*columns(), console=console) as bar:
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
        fail(str(error))
    if not dry_run:
        refresh_statistics(DEAL_TABLES)
    for line in summary(report, dry_run=dry_run):
        console.print(line, highlight=False, markup=False, soft_wrap=True)
    if report.refused:
        raise typer.Exit(1)


def main() -> None:
    cli(prog_name="tally")


if __name__ == "__main__":  # pragma: no cover
    main()
