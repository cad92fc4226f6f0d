"""One organization's alert evaluation: every condition of §10 for every subject, from the
metric engine's numbers, then reconciled with the open alerts (app/alerts/reconcile.py).

It writes in the caller's transaction and reads no clock: `now` is given. Per subject, the
reads are the engine's own (one statement per metric and window), so the cost follows the
number of quotas, users and open deals, never the number of activities.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TypeVar

from sqlalchemy import and_, select
from sqlalchemy.orm import Session

from app.alerts import reconcile, rules, store
from app.alerts.reconcile import Finding, Summary
from app.db import session_scope
from app.deals.models import PipelineStage
from app.deals.queries import last_activity
from app.metrics.catalogue import Metric
from app.metrics.engine import OrgFrame, measure_each, org_frame
from app.metrics.periods import local_midnight
from app.models import Connection, ConnectionStatus, Deal, DealStatus, Team, User
from app.quotas.batch import report_many
from app.quotas.models import Quota
from app.quotas.schemas import AttainmentItem
from app.quotas.subjects import Subject, in_force

DEFAULT_ROTTEN_DAYS = 14  # a deal whose stage is not in the pipeline (pipeline_stages' default)
DEAL_BATCH = 1000  # deals per last-activity read
T = TypeVar("T")
QUOTA_READERS = range(1)  # connections for the quotas (2 measured no faster on 2 busy CPUs)
ACTIVITY = (Metric.emails_sent, Metric.meetings_held, Metric.calls)


@dataclass(frozen=True, slots=True)
class People:
    names: dict[int, str]  # every user of the organization
    active: list[int]  # not deactivated
    teams: dict[int, tuple[str, frozenset[int]]]  # team -> name, current members


def _people(session: Session, org_id: int) -> People:
    users = session.execute(
        select(User.id, User.name, User.team_id, User.deactivated_at).where(User.org_id == org_id)
    ).all()
    members: dict[int, set[int]] = {}
    for user_id, _name, team_id, _gone in users:
        if team_id is not None:
            members.setdefault(team_id, set()).add(user_id)
    teams = session.execute(select(Team.id, Team.name).where(Team.org_id == org_id)).all()
    return People(
        names={u.id: u.name for u in users},
        active=sorted(u.id for u in users if u.deactivated_at is None),
        teams={t: (name, frozenset(members.get(t, ()))) for t, name in teams},
    )


def evaluate(session: Session, org_id: int, *, now: datetime) -> Summary:
    """Judge every condition now and bring the open alerts in line (in the caller's
    transaction: commit it to publish them and their webhook events together).

    The quotas and the open deals are read on connections of their own meanwhile, in
    transactions that write nothing, so what is judged is what is committed (at 10M
    activities, each alone: 1,233 quota items ~1 s in 65 statements (5.5-5.9 s in 2,554 a
    subject at a time), 36,000 open deals ~2.5-3 s, the users' windows under 1 s;
    bench/alerts.py)."""
    clock = _Clock()
    org = org_frame(session, org_id)
    thresholds = store.settings_of(session, org_id).thresholds()
    people = _people(session, org_id)
    owners = _quota_owners(session, org, people, now)
    findings: list[Finding] = []
    with ThreadPoolExecutor(max_workers=len(QUOTA_READERS) + 1) as pool:
        deals = pool.submit(_apart, lambda s: list(_deal_findings(s, org_id, people, now)))
        quotas = [
            pool.submit(_apart, lambda s, part=part: list(_quota_items(s, org, part, now)))
            for part in (owners[i :: len(QUOTA_READERS)] for i in QUOTA_READERS)
        ]
        findings += _opportunity_findings(session, org, people, thresholds, now)
        clock.lap("opportunities")
        findings += _activity_findings(session, org, people, thresholds, now)
        clock.lap("activity")
        findings += _connection_findings(session, org_id, people, thresholds, now)
        clock.lap("connections")
        items: list[tuple[Subject, AttainmentItem]] = []
        for number, future in enumerate(quotas, 1):
            part, clock.laps[f"quotas {number}/{len(quotas)} (apart)"] = future.result()
            items += part
        deal_findings, clock.laps["deals (apart)"] = deals.result()
        clock.lap("waited")
    attained: list[tuple[AttainmentItem, Subject]] = []
    for subject, item in items:
        findings += _quota_findings(subject, item, people, thresholds)
        if item.attainment is not None and item.attainment >= 1:
            attained.append((item, subject))
    findings += deal_findings
    summary = reconcile.alerts(session, org_id, findings, now=now)
    summary.attained = reconcile.attained(session, org_id, attained, now=now)
    clock.lap("reconcile")
    summary.seconds = clock.laps
    return summary


def _apart(read: Callable[[Session], list[T]]) -> tuple[list[T], float]:
    """`read` in a transaction of its own (it writes nothing); how long it took."""
    start = time.perf_counter()
    with session_scope() as session:
        found = read(session)
    return found, round(time.perf_counter() - start, 3)


@dataclass
class _Clock:
    """Seconds per part of a run, for the job's log line and the bench."""

    laps: dict[str, float] = field(default_factory=dict)
    _last: float = field(default_factory=time.perf_counter)

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.laps[name] = round(now - self._last, 3)
        self._last = now


def _quota_owners(session: Session, org: OrgFrame, people: People, now: datetime) -> list[Subject]:
    """Whose quotas are in force today: teams, and users who have not left (nobody is chased
    about the quota of someone who left)."""
    today = now.astimezone(org.tz).date()
    owners = session.execute(
        in_force(org.id, today).with_only_columns(Quota.user_id, Quota.team_id).distinct()
    ).all()
    subjects: list[Subject] = []
    active = set(people.active)
    for user_id, team_id in sorted(owners, key=lambda o: (o[0] or 0, o[1] or 0)):
        if team_id is not None:
            subjects.append(Subject(None, team_id, people.teams[team_id][1]))
        elif user_id in active:
            subjects.append(Subject(user_id, None, frozenset({user_id})))
    return subjects


def _quota_items(
    session: Session, org: OrgFrame, subjects: list[Subject], now: datetime
) -> Iterator[tuple[Subject, AttainmentItem]]:
    """Every quota of these subjects in force today, as GET /quotas/attainment shows it: all
    read together (`report_many`: one statement per metric and period for the users, one per
    team quota, two for the open deals), not a subject at a time."""
    today = now.astimezone(org.tz).date()
    for subject, read in zip(
        subjects, report_many(session, org, subjects, now=now, day=today), strict=True
    ):
        for item in read.items:
            yield subject, item


def _name(subject: Subject, people: People) -> str:
    if subject.team_id is not None:
        return f"Team {people.teams[subject.team_id][0]}"
    assert subject.user_id is not None
    return people.names[subject.user_id]


def _quota_findings(
    subject: Subject, item: AttainmentItem, people: People, t: rules.Thresholds
) -> list[Finding]:
    name = _name(subject, people)
    where = {"user_id": subject.user_id, "team_id": subject.team_id, "quota_id": item.quota_id}
    key = f"quota:{item.quota_id}"
    found: list[Finding] = []
    pace = rules.PaceFacts(
        name, item.metric, item.period, item.target, item.actual, item.elapsed_share, item.pace
    )
    if (opening := rules.behind_pace(pace, t)) is not None:
        found.append(Finding(rules.Kind.behind_pace, key, where, opening))
    if item.metric is Metric.revenue and item.coverage is not None:
        actual = Decimal(item.actual or 0)
        open_expected = (item.coverage * (item.target - actual)).quantize(Decimal("0.01"))
        facts = rules.CoverageFacts(name, item.period, item.target, actual, open_expected)
        if (opening := rules.low_coverage(facts, t)) is not None:
            found.append(Finding(rules.Kind.low_coverage, key, where, opening))
    return found


def _deal_findings(
    session: Session, org_id: int, people: People, now: datetime
) -> Iterator[Finding]:
    stage = and_(PipelineStage.org_id == Deal.org_id, PipelineStage.name == Deal.stage)
    rows = session.execute(
        select(
            Deal.id,
            Deal.name,
            Deal.owner_id,
            Deal.stage,
            Deal.created_at,
            PipelineStage.rotten_days,
        )
        .outerjoin(PipelineStage, stage)
        .where(Deal.org_id == org_id, Deal.status == DealStatus.open)
        .order_by(Deal.id)
    ).all()
    for start in range(0, len(rows), DEAL_BATCH):
        batch = rows[start : start + DEAL_BATCH]
        latest = last_activity(session, [r.id for r in batch])
        for deal_id, name, owner_id, stage_name, created_at, rotten in batch:
            facts = rules.DealFacts(
                name,
                people.names.get(owner_id, f"user {owner_id}"),
                stage_name,
                DEFAULT_ROTTEN_DAYS if rotten is None else rotten,
                created_at,
                latest.get(deal_id),
                now,
            )
            if (opening := rules.deal_going_cold(facts)) is not None:
                where = {"user_id": owner_id, "deal_id": deal_id}
                yield Finding(rules.Kind.deal_going_cold, f"deal:{deal_id}", where, opening)


def _windows(
    now: datetime, recent: timedelta, before: timedelta
) -> list[tuple[datetime, datetime]]:
    """[baseline, recent]: sorted and disjoint, as the engine takes them."""
    return [(now - recent - before, now - recent), (now - recent, now)]


def _opportunity_findings(
    session: Session, org: OrgFrame, people: People, t: rules.Thresholds, now: datetime
) -> Iterator[Finding]:
    owners = set(session.scalars(select(Deal.owner_id).where(Deal.org_id == org.id).distinct()))
    bounds = _windows(
        now,
        timedelta(days=t.opportunities_recent_days),
        timedelta(days=t.opportunities_baseline_days),
    )
    judged = [u for u in people.active if u in owners]
    counts = measure_each(session, org, judged, Metric.opportunities_created, bounds)
    for user_id in judged:
        baseline, recent = counts[user_id]
        facts = rules.OpportunityFacts(people.names[user_id], int(recent or 0), int(baseline or 0))
        if (opening := rules.few_new_opportunities(facts, t)) is not None:
            kind = rules.Kind.few_new_opportunities
            yield Finding(kind, f"user:{user_id}", {"user_id": user_id}, opening)


def _activity_findings(
    session: Session, org: OrgFrame, people: People, t: rules.Thresholds, now: datetime
) -> Iterator[Finding]:
    """The recent window is whole local days, today's so far included (the last 7 days: today
    and the 6 before), and the baseline the weeks before it: bounds at local midnights read
    only the day rollups (raw edge pieces made the 600 reads of the 10M bench 2.5 s)."""
    today = now.astimezone(org.tz).date()
    first = today - timedelta(days=t.activity_recent_days - 1)
    start = first - timedelta(weeks=t.activity_baseline_weeks)
    edges = [local_midnight(d, org.tz) for d in (start, first, today + timedelta(days=1))]
    bounds = [(edges[0], edges[1]), (edges[1], edges[2])]
    # one statement per metric for every user (engine.measure_each)
    read = [measure_each(session, org, people.active, metric, bounds) for metric in ACTIVITY]
    for user_id in people.active:
        totals = [sum(int(each[user_id][i] or 0) for each in read) for i in range(2)]
        facts = rules.ActivityFacts(people.names[user_id], totals[1], totals[0])
        if (opening := rules.activity_drop(facts, t)) is not None:
            kind = rules.Kind.activity_drop
            yield Finding(kind, f"user:{user_id}", {"user_id": user_id}, opening)


def failing_since(connection: Connection) -> datetime | None:
    """When a failing connection last worked (its last successful sync, else its creation);
    None when it is not failing. A retry in progress (syncing, the error still recorded)
    counts as failing, so the alert does not blink while the worker tries again."""
    failing = connection.status == ConnectionStatus.error or (
        connection.status == ConnectionStatus.syncing and connection.last_error is not None
    )
    if not failing:
        return None
    return connection.last_synced_at or connection.created_at


def _connection_findings(
    session: Session, org_id: int, people: People, t: rules.Thresholds, now: datetime
) -> Iterator[Finding]:
    active = set(people.active)
    rows = session.scalars(
        select(Connection).where(Connection.org_id == org_id).order_by(Connection.id)
    )
    for c in rows:
        if c.user_id not in active:
            continue
        facts = rules.ConnectionFacts(
            people.names[c.user_id], c.provider, c.status, failing_since(c), c.last_error, now
        )
        if (opening := rules.connection_broken(facts, t)) is not None:
            where = {"user_id": c.user_id, "connection_id": c.id}
            yield Finding(rules.Kind.connection_broken, f"connection:{c.id}", where, opening)
