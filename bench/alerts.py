"""Benchmark the alert evaluation of the whole 200-rep organization of bench/rollups.py.

    .venv/bin/python bench/alerts.py [--reuse URL] [--backend postgresql|sqlite]
                                     [--activities N] [--deals N] [--rounds 3]

With `--reuse URL`: a database `bench/rollups.py --keep` made (10 million activities),
brought to the latest schema as that bench does. Without: a throw-away database holding a
smaller organization generated the same way (`--activities`, default 100,000).

Every rep gets quotas on six metrics (e-mails, calls and new opportunities a month, meetings
held and revenue a quarter, deals won a month) and every team one on revenue a quarter, each
target drawn around the organization's average per rep in the period before, so that some are
behind and some ahead. Then `evaluate` (app/alerts/evaluate.py) runs for the organization at
noon UTC on 20 November 2026 (inside the generated history), each round in a transaction of its
own as the alert job runs it: the first round opens the alerts, the next ones find them open.
The organization's alerts are deleted before and after, and the bench's quotas after (a kept
database's servers run the alert job too: it opens its own again). Target: the whole
organization in ≤ 10 s.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from random import Random

from ingest import fresh_database, say
from orggen import Shape, Staff
from rollups import SQLITE_DIR, generate, load_staff, reused_database
from sqlalchemy import delete, func, select, text
from sqlalchemy.orm import Session

from app.alerts.evaluate import evaluate
from app.alerts.models import Alert, QuotaAttainment
from app.db import Database, session_scope, set_database
from app.metrics.catalogue import Metric
from app.metrics.engine import measure, org_frame
from app.quotas.models import Quota

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
TARGET_SECONDS = 10.0
APPLICATION = "tally_bench_alerts"
# metric -> period unit of the quota every rep gets
REP_QUOTAS = {
    Metric.emails_sent: "month",
    Metric.calls: "month",
    Metric.opportunities_created: "month",
    Metric.deals_won: "month",
    Metric.meetings_held: "quarter",
    Metric.revenue: "quarter",
}


def give_quotas(session: Session, staff: Staff) -> int:
    """Quotas for every rep and team, in force on NOW; how many."""
    org = org_frame(session, staff.org_id)
    rng = Random(13)
    reps = staff.reps
    count = 0
    for metric, unit in REP_QUOTAS.items():
        period = org.calendar.containing(NOW.date(), unit)
        previous = org.calendar.containing(date.fromordinal(period.start.toordinal() - 1), unit)
        (total,) = measure(session, org, reps, metric, [org.calendar.bounds(previous)])
        average = max(Decimal(1), Decimal(total or 0) / len(reps))
        for rep in reps:
            target = (average * Decimal(str(0.6 + 0.8 * rng.random()))).quantize(Decimal("0.01"))
            session.add(_quota(staff.org_id, metric, unit, target, user_id=rep))
            count += 1
        if metric is Metric.revenue:
            for team, members in zip(staff.team_ids, staff.rep_ids, strict=True):
                target = (average * len(members)).quantize(Decimal("0.01"))
                session.add(_quota(staff.org_id, metric, unit, target, team_id=team))
                count += 1
    session.flush()
    return count


def _quota(
    org_id: int,
    metric: Metric,
    unit: str,
    target: Decimal,
    *,
    user_id: int | None = None,
    team_id: int | None = None,
) -> Quota:
    return Quota(
        org_id=org_id,
        metric=metric.value,
        period=unit,
        target=max(target, Decimal("0.01")),
        user_id=user_id,
        team_id=team_id,
        effective_from=date(2026, 1, 1),
    )


def open_by_kind(session: Session, org_id: int) -> dict[str, int]:
    rows = session.execute(
        select(Alert.kind, func.count())
        .where(Alert.org_id == org_id, Alert.resolved_at.is_(None))
        .group_by(Alert.kind)
    )
    return dict(sorted((kind, n) for kind, n in rows))


class CpuClock:
    """CPU seconds (user + system, from /proc) of this process and of the PostgreSQL backends
    of its pool: what an evaluation costs the machine, whatever else shares its cores. The
    backends are those open when the clock is made (the pool keeps them from round to round:
    round 1's figure misses the connections it opened)."""

    def __init__(self, database: Database) -> None:
        self.pids: list[int] = []
        if not database.is_sqlite:
            with database.engine.connect() as connection:
                self.pids = list(
                    connection.scalars(
                        text(
                            "SELECT pid FROM pg_stat_activity WHERE application_name = "
                            ":name AND pid <> pg_backend_pid()"
                        ),
                        {"name": APPLICATION},
                    )
                )
        self.ticks = os.sysconf("SC_CLK_TCK")

    def __call__(self) -> float:
        total = 0
        for pid in self.pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += int(fields[11]) + int(fields[12])
        return time.process_time() + total / self.ticks


def forget(session: Session, org_id: int, quota_ids: list[int]) -> None:
    """The organization's alerts and attained periods, and the bench's quotas: gone."""
    session.execute(delete(Alert).where(Alert.org_id == org_id))
    session.execute(delete(QuotaAttainment).where(QuotaAttainment.org_id == org_id))
    if quota_ids:
        session.execute(delete(Quota).where(Quota.id.in_(quota_ids)))


def bench(database: Database, rounds: int) -> list[float]:
    set_database(database)
    staff = load_staff(database)
    times: list[float] = []
    quota_ids: list[int] = []
    try:
        # as if never evaluated (a kept database may hold alerts its servers' job opened)
        with session_scope() as session:
            forget(session, staff.org_id, [])
            before = set(session.scalars(select(Quota.id).where(Quota.org_id == staff.org_id)))
            count = give_quotas(session, staff)
            quota_ids = sorted(
                set(session.scalars(select(Quota.id).where(Quota.org_id == staff.org_id))) - before
            )
        say(f"quotas in force: {count} ({len(staff.reps)} reps, {len(staff.team_ids)} teams)")
        for number in range(1, rounds + 1):
            # as the job runs it: one transaction, committed (the reads on connections of
            # their own see what is committed)
            cpu = CpuClock(database)
            with session_scope() as session:
                t0, c0 = time.perf_counter(), cpu()
                summary = evaluate(session, staff.org_id, now=NOW)
                times.append(time.perf_counter() - t0)
            spent = cpu() - c0
            say(
                f"round {number}: {times[-1]:.2f} s ({spent:.1f} CPU s: this process and its "
                f"database backends) — opened {summary.opened}, "
                f"updated {summary.updated}, resolved {summary.resolved}, "
                f"unchanged {summary.still_open}, quota periods attained {summary.attained}"
            )
            say(f"  seconds per part: {summary.seconds}")
        with session_scope() as session:
            say(f"open alerts by kind: {open_by_kind(session, staff.org_id)}")
    finally:
        with session_scope() as session:  # a kept database keeps none of it
            forget(session, staff.org_id, quota_ids)
    return times


def named(url: str) -> str:
    """The URL with an application name its backends are found by (PostgreSQL)."""
    if url.startswith("sqlite"):
        return url
    return f"{url}{'&' if '?' in url else '?'}application_name={APPLICATION}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--reuse", metavar="URL", help="a database bench/rollups.py --keep made")
    parser.add_argument("--backend", choices=("postgresql", "sqlite"), default="postgresql")
    parser.add_argument("--activities", type=int, default=100_000)
    parser.add_argument("--deals", type=int, help="default: activities / 20")
    parser.add_argument("--rounds", type=int, default=3, help="evaluations, the first opens")
    args = parser.parse_args(argv)
    try:
        if args.reuse:
            with reused_database(named(args.reuse)) as database:
                times = bench(database, args.rounds)
        else:
            shape = Shape(args.activities, args.deals or args.activities // 20)
            with fresh_database(args.backend, SQLITE_DIR, "alerts") as database:
                result = generate(database, args.backend, shape, "auto")
                say(f"generated: {result.rows}")
                times = bench(database, args.rounds)
    finally:
        set_database(None)
    worst = max(times)
    verdict = "ok" if worst <= TARGET_SECONDS else "OVER"
    say(
        f"evaluation of the organization: worst {worst:.2f} s of {len(times)} rounds "
        f"({verdict}, target ≤ {TARGET_SECONDS:.0f} s)"
    )
    return 0 if worst <= TARGET_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
