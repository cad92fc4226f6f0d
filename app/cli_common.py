"""What every `tally` command shares: the console, failing with one sentence, the checks a
command makes before it starts, progress bars, and fresh planner statistics after bulk
writes."""

from __future__ import annotations

from typing import NoReturn

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

from app import runtime

console = Console(stderr=True)
BOTH_SECRETS = ("TALLY_ADMIN_TOKEN", "TALLY_SECRET_KEYS")


def fail(message: str) -> NoReturn:
    console.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True, highlight=False)
    raise typer.Exit(2)


def require(command: str, *, secrets: tuple[str, ...] = (), database: bool = True) -> None:
    """What a command needs before it starts (secrets, a migrated database), or exit 2 with
    one sentence; nothing is created on the way."""
    try:
        if secrets:
            runtime.require_secrets(command, secrets)
        if database:
            runtime.require_database()
    except runtime.StartupError as error:
        fail(str(error))
    if database:
        # every table known before the first flush: a domain's rows point at tables declared
        # in other domains' models modules (app/tables.py); ~195 ms, so only here, not at
        # every `tally` call
        from app import tables  # noqa: F401


def say(lines: list[str]) -> None:
    for line in lines:
        console.print(line, highlight=False, markup=False, soft_wrap=True)


def columns() -> tuple[ProgressColumn, ...]:
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


def refresh_statistics(written: tuple[str, ...]) -> None:
    """After bulk writes: the planner's statistics now, not at the scheduler's next check
    (a server with autovacuum off plans team reads on a table it believes empty)."""
    from app import statistics
    from app.db import session_scope

    with session_scope() as session:
        statistics.refresh(session, written)
