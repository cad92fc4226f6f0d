"""Running a connector the way the sync runner does, for connector tests."""

from __future__ import annotations

from datetime import datetime

from connectors.base import Connector, Page


def pull_pages(
    connector: Connector, cursor: str | None, *, since: datetime
) -> tuple[list[Page], str | None]:
    """Every page of one pull, and the cursor the runner would store after it (the last one a
    page carried; the given one when none did)."""
    pages = list(connector.pull(cursor, since=since))
    for page in pages:
        cursor = page.cursor or cursor
    return pages, cursor
