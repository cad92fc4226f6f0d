"""Benchmark the manager dashboard in a real browser: a 10-rep team, from navigation to every
API call answered and its panel drawn.

    .venv/bin/python bench/dashboard.py [--reuse URL] [--loads 20] [--team ID] [--json OUT]

With `--reuse URL` (a database bench/rollups.py kept: 200 reps in 20 teams, 10 million
activities), the first team with a manager and ten reps; without it, a small organization
generated here on a throw-away SQLite database (a manager, ten reps, quotas and 200 open
deals made through the API). Tally runs as deployed (`tally api` + `tally worker` on
PostgreSQL, `tally serve` on SQLite, bench/rollups.py's tally_server); Debian's Chromium,
driven by Playwright, opens `/` with the manager's key (made directly in the database)
in its storage, `--loads` times after two warm-up loads, in one browser context (its
cache holds the versioned assets, as a manager's browser would the next morning; the API's
answers are never cached). Each load's time is the page's own `data-ready-ms`: milliseconds
from the start of the navigation to the moment the last panel is drawn. Target: p95 ≤ 1 s.
Note: `--reuse` brings the database to the latest schema first, as bench/rollups.py does.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from pathlib import Path
from typing import Any

from ingest import fresh_database, say
from rollups import Api, reused_database, tally_server
from sqlalchemy import func, select

from app.db import Database, session_scope, set_database
from app.models import Role, Team, User
from app.users import schemas
from app.users.service import create_org, create_team, create_user, issue_key

CHROMIUM = "/usr/bin/chromium"
TEAM_SIZE = 10


def percentile(samples: list[float], share: float) -> float:
    ordered = sorted(samples)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def manager_of_a_team(database: Database, team_id: int | None) -> tuple[int, str, int]:
    """(team id, a new API key of its manager, its reps): the given team, or the first with
    a manager and ten reps."""
    set_database(database)
    with session_scope() as session:
        reps = (
            select(User.team_id, func.count().label("n"))
            .where(User.role == Role.rep, User.deactivated_at.is_(None))
            .group_by(User.team_id)
            .subquery()
        )
        query = (
            select(Team, reps.c.n)
            .join(reps, reps.c.team_id == Team.id)
            .where(Team.manager_id.is_not(None))
            .order_by(Team.id)
        )
        if team_id is not None:
            query = query.where(Team.id == team_id)
        else:
            query = query.where(reps.c.n == TEAM_SIZE)
        found = session.execute(query.limit(1)).first()
        if found is None:
            raise SystemExit("no team with a manager (and ten reps) in this database")
        team, count = found
        manager = session.get_one(User, team.manager_id)
        return team.id, issue_key(session, manager), int(count)


def small_organization(database: Database) -> str:
    """A manager with a team of ten reps, made with the services; the org admin's key."""
    set_database(database)
    with session_scope() as session:
        org, admin_key = create_org(
            session,
            schemas.OrgCreate(name="Bench", domains=["bench.example"], timezone="Europe/Brussels"),
        )
        admin = session.scalars(select(User).where(User.org_id == org.id)).one()
        manager, _ = create_user(
            session,
            admin,
            schemas.UserCreate(email="mia@bench.example", name="Mia", role=Role.manager),
        )
        team = create_team(session, admin, schemas.TeamCreate(name="East", manager_id=manager.id))
        session.flush()
        for i in range(TEAM_SIZE):
            create_user(
                session,
                admin,
                schemas.UserCreate(
                    email=f"rep{i}@bench.example", name=f"Rep {i}", role=Role.rep, team_id=team.id
                ),
            )
        return admin_key


def fill_small(api: Api, admin_key: str, team_id: int) -> None:
    """Quotas for the team and each rep, and 200 open deals, through the API."""
    status, users, _ = api.call("GET", "/users", admin_key)
    reps = [u["id"] for u in users if u["team_id"] == team_id and u["role"] == "rep"]
    quotas = [("revenue", "quarter", 200000), ("emails_sent", "month", 400)]
    bodies = [{"team_id": team_id, "metric": m, "period": p, "target": t} for m, p, t in quotas]
    bodies += [
        {"user_id": rep, "metric": m, "period": p, "target": t // TEAM_SIZE}
        for rep in reps
        for m, p, t in quotas
    ]
    for body in bodies:
        status, _, _ = api.call(
            "POST", "/quotas", admin_key, {**body, "effective_from": "2020-01-01"}
        )
        assert status == 201, status
    stages = ["Qualification", "Discovery", "Proposal", "Negotiation"]
    for i in range(200):
        deal = {"name": f"Deal {i}", "owner_id": reps[i % len(reps)], "value": 1000 + i * 37,
                "stage": stages[i % 4]}  # fmt: skip
        status, _, _ = api.call("POST", "/deals", admin_key, deal)
        assert status == 201, status


def measure(port: int, key: str, team_id: int, loads: int) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    url = f"http://127.0.0.1:{port}/"
    times: list[float] = []
    calls: list[int] = []
    slowest: list[float] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM)
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        page = context.new_page()
        page.goto(url)
        page.evaluate(
            "([key, team]) => { localStorage.setItem('tally.apiKey', key);"
            " localStorage.setItem('tally.teamId', team); }",
            [key, str(team_id)],
        )
        for n in range(loads + 2):
            page.goto(url)
            page.wait_for_selector("body[data-ready='true']", timeout=120_000)
            ms = float(page.evaluate("Number(document.body.dataset.readyMs)"))
            api = page.evaluate(
                "performance.getEntriesByType('resource')"
                ".filter(e => e.name.includes('/api/v1/')).map(e => e.duration)"
            )
            if n >= 2:  # two warm-up loads
                times.append(ms)
                calls.append(len(api))
                slowest.append(max(api))
            say(
                f"  load {n + 1}: {ms:.0f} ms, {len(api)} API calls, slowest {max(api):.0f} ms",
                err=True,
            )
        unavailable = page.locator(".unavailable").all_inner_texts()
        last = page.evaluate(
            "performance.getEntriesByType('resource').filter(e => e.name.includes('/api/v1/'))"
            ".map(e => [e.name.split('/api/v1')[1], Math.round(e.startTime),"
            " Math.round(e.duration)])"
        )
        browser.close()
    return {
        "loads": loads,
        "p50_ms": percentile(times, 0.5),
        "p95_ms": percentile(times, 0.95),
        "max_ms": max(times),
        "api_calls": max(calls),
        "slowest_call_p50_ms": percentile(slowest, 0.5),
        "panels_not_available": unavailable,
        "times_ms": times,
        "last_load_calls": last,  # [path, start ms, duration ms]
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--reuse", metavar="URL", help="a database bench/rollups.py kept")
    parser.add_argument("--loads", type=int, default=20, help="measured loads (default 20)")
    parser.add_argument("--team", type=int, help="the team (default: the first of ten reps)")
    parser.add_argument("--json", metavar="OUT", help="write the figures here too")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="tally-bench-dashboard-"))
    if args.reuse:
        context = reused_database(args.reuse)
    else:
        context = fresh_database("sqlite", workdir, "dashboard")
    with context as database:
        admin_key = None if args.reuse else small_organization(database)
        team_id, key, reps = manager_of_a_team(database, args.team)
        with tally_server(database, workdir) as (port, _pid):
            if admin_key is not None:
                fill_small(Api(port), admin_key, team_id)
            say(f"team {team_id} ({reps} reps), {args.loads} loads", err=True)
            result = measure(port, key, team_id, args.loads)
    backend = "sqlite" if database.is_sqlite else "postgresql"
    result = {"backend": backend, "database": args.reuse or "small (generated)", **result}
    say(
        f"manager dashboard, team of {reps} reps, {backend}: p50 {result['p50_ms']:.0f} ms, "
        f"p95 {result['p95_ms']:.0f} ms, max {result['max_ms']:.0f} ms over {args.loads} loads; "
        f"{result['api_calls']} API calls a load; target p95 ≤ 1000 ms: "
        f"{'yes' if result['p95_ms'] <= 1000 else '**NO**'}"
    )
    if result["panels_not_available"]:
        say(f"panels not available: {result['panels_not_available']}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
