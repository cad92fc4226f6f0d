"""Planner statistics kept fresh on both databases, by Tally itself.

Neither database can be trusted to do it: SQLite never analyzes by itself, and a PostgreSQL
server may run with autovacuum off (the test server does) or behind a bulk load. Without
statistics the planners chose whole-organization plans: on SQLite every team query read
the whole organization (team attainment 3.0 s, 221 ms after one ANALYZE); on PostgreSQL a
team's activities were a bitmap AND over the whole organization (180 ms at 1M, 60 ms
after ANALYZE).

`refresh()` analyzes the tables that changed enough since their last analysis, and nothing
else, so calling it often is cheap. The scheduler calls it every few minutes; long imports
should call it when they finish.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

# PostgreSQL's own autovacuum rule with its defaults: 10% of the rows plus 50 changed
# (autovacuum_analyze_scale_factor, autovacuum_analyze_threshold)
_PG_SCALE, _PG_BASE = 0.1, 50
# SQLite: re-analyze when a table is a quarter larger or smaller than its statistics say
_SQLITE_GROWTH = 1.25
# SQLite analyzes whole indexes (analysis_limit 0): a limit reads only the first entries of
# each index, and with 1000 the (user_id, occurred_at) index claimed 1,001 rows per user
# where there were 5,000 (the first thousand entries are all one user's). A full ANALYZE of
# 1M activities takes 1.4 s and runs again only after the table grew by a quarter.
_SQLITE_ANALYSIS_LIMIT = 0
# one process analyzes at a time, whatever the number of workers (pg_try_advisory_xact_lock)
_LOCK_KEY = 0x7A11_57A7

_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


def refresh(session: Session, written: Sequence[str] = ()) -> list[str]:
    """Analyze every table whose statistics are missing or stale, and the `written` ones
    whatever their counters say (a bulk writer knows what it wrote, and PostgreSQL's change
    counters reach pg_stat_user_tables up to a second after the commit); the tables analyzed."""
    if session.get_bind().dialect.name == "postgresql":
        stale = _refresh_postgresql(session)
    else:
        stale = _refresh_sqlite(session)
    forced = sorted({t for t in written if _NAME.match(t)} - set(stale))
    if session.get_bind().dialect.name == "sqlite" and forced:
        session.execute(text(f"PRAGMA analysis_limit = {_SQLITE_ANALYSIS_LIMIT}"))
    for name in forced:
        session.execute(text(f'ANALYZE "{name}"'))
    return sorted({*stale, *forced})


def vacuum(engine: Engine, tables: Sequence[str]) -> list[str]:
    """PostgreSQL: VACUUM (ANALYZE) these tables, outside any transaction (VACUUM cannot run
    in one); SQLite: nothing (its VACUUM rewrites the whole file; ANALYZE is `refresh`'s).

    For commands that delete and rewrite a table wholesale (`tally rollups rebuild`): on a
    server without autovacuum the dead rows stay, and index scans visit them. At 10M
    activities after two rebuilds, a team's quarter of contact_days made 23,439 heap fetches
    (57 ms); after VACUUM it was an index-only scan (6 ms). VACUUM of the three rollup tables
    took 9 s there."""
    if engine.dialect.name != "postgresql":
        return []
    names = [t for t in tables if _NAME.match(t)]
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        for name in names:
            connection.execute(text(f'VACUUM (ANALYZE) "{name}"'))
    return names


def _refresh_postgresql(session: Session) -> list[str]:
    if not session.scalar(text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": _LOCK_KEY}):
        return []  # another process is at it
    rows = session.execute(
        text(
            "SELECT relname, n_mod_since_analyze, n_live_tup, "
            "last_analyze IS NULL AND last_autoanalyze IS NULL "
            "FROM pg_stat_user_tables WHERE schemaname = current_schema()"
        )
    ).all()
    stale = [
        name
        for name, changed, live, never in rows
        if _NAME.match(name)
        and ((changed or 0) > _PG_SCALE * (live or 0) + _PG_BASE or (never and (live or changed)))
    ]
    for name in sorted(stale):
        session.execute(text(f'ANALYZE "{name}"'))
    if stale:
        log.info("statistics refreshed", extra={"tables": stale})
    return sorted(stale)


def _refresh_sqlite(session: Session) -> list[str]:
    tables = [
        name
        for (name,) in session.execute(
            text(
                "SELECT name FROM sqlite_master WHERE type = 'table' "
                "AND name NOT LIKE 'sqlite_%' AND name != 'alembic_version'"
            )
        )
        if _NAME.match(name)
    ]
    known = _sqlite_stat_rows(session)
    stale = []
    for name in tables:
        # the largest rowid stands for the row count: one index probe, not a count(*)
        rows = session.scalar(text(f'SELECT max(rowid) FROM "{name}"')) or 0
        analyzed = known.get(name)
        if analyzed is None:
            if rows:
                stale.append(name)
        elif not analyzed / _SQLITE_GROWTH <= rows <= analyzed * _SQLITE_GROWTH:
            stale.append(name)
    if stale:
        session.execute(text(f"PRAGMA analysis_limit = {_SQLITE_ANALYSIS_LIMIT}"))
        for name in stale:
            session.execute(text(f'ANALYZE "{name}"'))
        log.info("statistics refreshed", extra={"tables": stale})
    return stale


def _sqlite_stat_rows(session: Session) -> dict[str, int]:
    """Rows each analyzed table had when analyzed (the first number of its `stat`)."""
    exists = session.scalar(
        text("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_stat1'")
    )
    if not exists:
        return {}
    found: dict[str, int] = {}
    for name, stat in session.execute(text("SELECT tbl, stat FROM sqlite_stat1")):
        head = str(stat or "").split(" ", 1)[0]
        if head.isdigit():
            found[name] = max(found.get(name, 0), int(head))
    return found
