"""report_many (app/quotas/batch.py) gives, for every subject at once, exactly what `report`
gives one subject at a time: every metric, users and teams, today and a past date."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from app.access import team_member_ids
from app.db import Database, session_scope
from app.metrics.catalogue import Metric
from app.metrics.engine import org_frame
from app.quotas.attainment import report
from app.quotas.batch import report_many
from app.quotas.subjects import Subject
from tests.quotas.funnel import Funnel, funnel

NOW = datetime(2024, 5, 15, 12, 30, tzinfo=UTC)  # mid-day: raw edge pieces as well as days
TARGETS: dict[Metric, float | str] = {
    Metric.emails_sent: 20,
    Metric.emails_received: 10,
    Metric.meetings_scheduled: 4,
    Metric.meetings_held: 3,
    Metric.calls: 9,
    Metric.chat_conversations: 2,
    Metric.contacts_engaged: 4,
    Metric.opportunities_created: 10,
    Metric.win_rate: "0.8",
    Metric.avg_deal_value: 1000,
    Metric.sales_cycle_days: 5,
    Metric.deals_won: 3,
    Metric.revenue: 6000,
    Metric.gross_margin: 4000,
}
KINDS = [
    "email_sent",
    "email_received",
    "meeting_scheduled",
    "meeting_held",
    "call",
    "chat_conversation",
]


@pytest.fixture
def f(client: TestClient) -> Funnel:
    f = funnel(client)
    rates = {"rates": [{"currency": "USD", "rate": "0.9", "effective_from": "2024-01-01"}]}
    put = client.put("/api/v1/org/exchange-rates", json=rates, headers=f.org.as_admin())
    assert put.status_code == 200, put.text
    f.won("ann", 1500, "2024-04-30", "2024-05-10", cost=500)
    f.won("bob", 300, "2024-05-02", "2024-05-02")
    f.won("dan", 800, "2024-05-01", "2024-05-03", currency="USD")
    f.lost("bob", "2024-05-01", "2024-05-03")
    f.deal("ann", 2000, cost=400, stage="Proposal", expected_close_date="2024-05-20")
    f.deal("ann", 1000, currency="USD", stage="Negotiation", expected_close_date="2024-05-31")
    f.deal("ann", 5000, stage="Negotiation", expected_close_date="2024-06-02")  # June, Q2
    f.deal("bob", 1200, stage="Discovery", expected_close_date="2024-05-02")
    f.deal("bob", 700)  # no expected close date
    f.deal("dan", 9999, expected_close_date="2024-05-20")
    for n, (who, day) in enumerate(
        [("ann", "2024-05-02"), ("bob", "2024-05-15"), ("ann", "2024-05-15")]
    ):
        for kind in KINDS:
            f.activities(who, kind, day, 2 + n, f"c{n}@c.example", "x@c.example")
    f.activities("dan", "email_sent", "2024-05-06", 4, "d@c.example")
    for metric, target in TARGETS.items():
        for who in ("ann", "bob", "cid"):
            f.quota(metric, target, user_id=f.ids[who])
        f.quota(metric, target, team_id=f.team)
    f.quota("revenue", 20000, team_id=f.team, period="quarter")
    f.quota("emails_sent", 8, user_id=f.ids["ann"], period="week")
    f.quota("revenue", 5000, user_id=f.ids["dan"])
    f.quota("revenue", 9000, team_id=f.ids["team_b"])
    return f


def _subjects(f: Funnel) -> list[Subject]:
    with session_scope() as session:
        teams = [
            Subject(None, t, frozenset(team_member_ids(session, t)))
            for t in (f.team, f.ids["team_b"])
        ]
    users = [Subject(f.ids[w], None, frozenset({f.ids[w]})) for w in ("ann", "bob", "cid", "dan")]
    mia = Subject(f.ids["mia"], None, frozenset({f.ids["mia"]}))  # no quota
    return [*users, teams[0], mia, teams[1]]


@contextmanager
def statements(database: Database) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(*args: Any) -> None:
        seen.append(args[2])

    event.listen(database.engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(database.engine, "before_cursor_execute", count)


@pytest.mark.parametrize(
    ("now", "day"), [(NOW, None), (NOW, date(2024, 5, 10)), (NOW, date(2024, 6, 1))]
)
def test_report_many_is_report_of_each(
    f: Funnel, database: Database, now: datetime, day: date | None
) -> None:
    subjects = _subjects(f)
    with session_scope() as session:
        org = org_frame(session, f.org.id)
        one_by_one = [report(session, org, s, now=now, day=day) for s in subjects]
        with statements(database) as batched:
            many = report_many(session, org, subjects, now=now, day=day)
    assert [r.model_dump(mode="json") for r in many] == [
        r.model_dump(mode="json") for r in one_by_one
    ]
    assert many == one_by_one
    # not vacuous: every metric for users and the team, with figures
    ann, team = one_by_one[0], one_by_one[4]
    assert {i.metric for i in ann.items} == set(Metric)
    assert {i.metric for i in team.items} == set(Metric)
    if day is None:
        assert all(i.actual for i in ann.items if i.metric is not Metric.sales_cycle_days)
        revenue = next(i for i in team.items if i.metric is Metric.revenue and i.period == "month")
        assert revenue.forecast_pipeline and revenue.open_without_close_date == 1
    assert one_by_one[5].items == []  # mia
    # users: one statement per (metric, period unit) whatever their number; teams: per quota
    team_quotas = sum(len(r.items) for r in one_by_one if r.items and r in one_by_one[4::2])
    assert len(batched) <= 1 + 16 + 3 + team_quotas + 2, batched


def test_report_many_of_nobody_and_of_a_team_without_members(f: Funnel, database: Database) -> None:
    team = f.org.team("Empty")["id"]
    f.quota("revenue", 100, team_id=team)
    f.quota("emails_sent", 100, team_id=team)
    empty = Subject(None, team, frozenset())
    with session_scope() as session:
        org = org_frame(session, f.org.id)
        assert report_many(session, org, [], now=NOW) == []
        (many,) = report_many(session, org, [empty], now=NOW)
        assert many == report(session, org, empty, now=NOW)
    assert [(i.actual, i.forecast_pipeline) for i in many.items] == [(0, 0), (0, None)]


def test_team_attainment_with_members_over_the_api(f: Funnel) -> None:
    day = {"date": "2024-05-15"}
    body = f.ok("/quotas/attainment", team_id=f.team, members="true", **day)
    team = f.ok("/quotas/attainment", team_id=f.team, **day)
    assert "members" not in team  # only when asked
    assert {k: v for k, v in body.items() if k != "members"} == team
    ids = sorted(f.ids[w] for w in ("ann", "bob", "cid"))
    assert [m["user_id"] for m in body["members"]] == ids
    for member in body["members"]:
        alone = f.ok("/quotas/attainment", user_id=member["user_id"], **day)
        assert member["items"] == alone["items"] and len(alone["items"]) >= 13
    admin = f.ok("/quotas/attainment", "admin", team_id=f.team, members="true", **day)
    assert admin == body
    b = f.ok("/quotas/attainment", "max", team_id=f.ids["team_b"], members="true", **day)
    assert [m["user_id"] for m in b["members"]] == [f.ids["dan"]]


@pytest.mark.parametrize(
    ("who", "params", "status"),
    [
        ("ann", {"team_id": "team"}, 403),  # a rep, even for their own team
        ("ann", {}, 422),
        ("mia", {"team_id": "team_b"}, 404),  # not her team
        ("mia", {"team_id": 999999}, 404),
        ("mia", {}, 422),  # members of whom?
        ("mia", {"user_id": "ann"}, 422),
        ("mia", {"team_id": "team", "user_id": "ann"}, 422),
    ],
)
def test_team_attainment_with_members_refusals(
    f: Funnel, who: str, params: dict[str, Any], status: int
) -> None:
    names = {"team": f.team, "team_b": f.ids["team_b"], "ann": f.ids["ann"]}
    given = {k: names.get(v, v) if isinstance(v, str) else v for k, v in params.items()}
    response = f.get("/quotas/attainment", who, members="true", **given)
    assert response.status_code == status, response.text
    assert set(response.json()["error"]) == {"code", "message"}
