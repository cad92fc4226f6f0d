"""Reconciliation and the quota plan through the API, with figures worked out by hand (§9).

The question is asked on 15 May 2024 by month: the window is January to April 2024.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.api import make_org
from tests.quotas.funnel import Funnel, funnel

ASK = {"period": "month", "date": "2024-05-15"}


@pytest.fixture
def f(client: TestClient) -> Funnel:
    f = funnel(client)
    # Ann, from January: won 1000 (Feb), 2000 (Mar), 3000 (Apr); lost three; two still open.
    f.won("ann", 1000, "2024-01-10", "2024-02-10")
    f.won("ann", 2000, "2024-02-10", "2024-03-10")
    f.won("ann", 3000, "2024-03-10", "2024-04-10")
    for created, closed in (
        ("2024-01-05", "2024-01-20"),
        ("2024-02-05", "2024-03-01"),
        ("2024-03-05", "2024-04-01"),
    ):
        f.lost("ann", created, closed)
    f.deal("ann", 800, created_at="2024-04-02T10:00:00+00:00", expected_close_date="2024-06-01")
    f.deal("ann", 900, created_at="2024-04-03T10:00:00+00:00")
    f.activities("ann", "email_sent", "2024-02-01", 30, "x@c.example", "y@c.example")
    f.activities("ann", "email_sent", "2024-03-01", 20, "z@c.example")
    f.activities("ann", "call", "2024-03-02", 12, "w@c.example", "v@c.example")
    f.activities(
        "ann", "meeting_held", "2024-04-02", 7, "u@c.example", "t@c.example", "x@c.example"
    )
    # outside the window: must not count
    f.won("ann", 50000, "2023-11-01", "2023-12-20")
    f.won("ann", 50000, "2024-05-01", "2024-05-02")
    f.activities("ann", "email_sent", "2024-05-03", 40, "s@c.example")
    # Bob starts in March (an email), wins 800 in April
    f.activities("bob", "email_sent", "2024-03-20", 1)
    f.won("bob", 800, "2024-04-01", "2024-04-20")
    # Cid: nothing at all
    return f


def test_plan_reads_the_funnel_backwards(f: Funnel) -> None:
    body = f.ok("/quotas/plan", target=9000, user_id=f.ids["ann"], **ASK)
    assert (body["period_start"], body["period_end"], body["target"]) == (
        "2024-05-01",
        "2024-05-31",
        9000,
    )
    assert body["basis"] == {
        "avg_deal_value": 2000,  # (1000 + 2000 + 3000) / 3
        "win_rate": 0.5,  # 3 won / 6 closed
        "window_start": "2024-01-01",
        "window_end": "2024-04-30",
    }
    # deals ⌈9000 / 2000⌉ = 5; opportunities ⌈5 / 0.5⌉ = 10; created in the window: 8
    # (3 won + 3 lost + 2 open); each input ⌈10 × total / 8⌉
    assert body["needed"] == {
        "deals_won": 5,
        "opportunities_created": 10,
        "emails_sent": 63,  # 50 -> 62.5
        "meetings_scheduled": 0,
        "meetings_held": 9,  # 7 -> 8.75
        "calls": 15,  # 12 -> 15
        "chat_conversations": 0,  # no chat in this history
        "contacts_engaged": 9,  # x y z w v u t: 7 distinct over the window -> 8.75
    }
    assert body["missing"] == []


def test_plan_for_a_team_pools_its_members(f: Funnel) -> None:
    body = f.ok("/quotas/plan", target=9000, team_id=f.team, **ASK)
    # won 1000 + 2000 + 3000 + 800 over 4 deals: A = 1700; W = 4 / 7; created 9
    assert body["basis"]["avg_deal_value"] == 1700
    assert body["basis"]["win_rate"] == pytest.approx(4 / 7)
    needed = body["needed"]
    assert (needed["deals_won"], needed["opportunities_created"]) == (6, 11)  # ⌈5.29⌉, ⌈10.5⌉
    assert needed["emails_sent"] == 63  # ⌈11 × 51 / 9⌉ = ⌈62.33⌉


@pytest.mark.parametrize(
    ("who", "missing"),
    [
        ("cid", ["avg_deal_value", "win_rate", "opportunities_created"]),
        ("bob", []),  # one won of one: A 800, W 1; created 1
    ],
)
def test_plan_says_what_is_missing(f: Funnel, who: str, missing: list[str]) -> None:
    body = f.ok("/quotas/plan", target=1000, user_id=f.ids[who], **ASK)
    assert body["missing"] == missing
    if missing:
        assert set(body["needed"].values()) == {None}
        assert body["basis"]["avg_deal_value"] is None
    else:
        assert body["needed"]["deals_won"] == 2  # ⌈1000 / 800⌉
        assert body["needed"]["emails_sent"] == 2  # ⌈2 × 1 / 1⌉


def test_plan_with_only_lost_deals(f: Funnel) -> None:
    f.lost("dan", "2024-02-01", "2024-02-02")
    body = f.ok("/quotas/plan", "admin", target=1000, user_id=f.ids["dan"], **ASK)
    assert body["missing"] == ["avg_deal_value", "win_rate"]
    assert body["basis"]["win_rate"] == 0


def test_reconciliation_of_a_sum(f: Funnel) -> None:
    f.quota("revenue", 10000, team_id=f.team)
    f.quota("revenue", 6000, user_id=f.ids["ann"])
    f.quota("revenue", 500, user_id=f.ids["dan"])  # another team
    body = f.ok("/quotas/reconciliation", team_id=f.team, metric="revenue", **ASK)
    members = {m["user_id"]: m for m in body["members"]}
    assert body["period_start"] == "2024-05-01"
    assert (body["team_target"], body["members_target_sum"], body["gap"]) == (10000, 6000, 4000)
    assert members[f.ids["ann"]] == {"user_id": f.ids["ann"], "target": 6000, "suggested": 1500}
    # Bob's history starts in March: (0 + 800) / 2
    assert members[f.ids["bob"]] == {"user_id": f.ids["bob"], "target": None, "suggested": 400}
    assert members[f.ids["cid"]] == {"user_id": f.ids["cid"], "target": None, "suggested": None}
    assert body["suggested_sum"] == 1900


def test_reconciliation_of_a_ratio_adds_nothing(f: Funnel) -> None:
    f.quota("win_rate", "0.6", user_id=f.ids["ann"])
    body = f.ok("/quotas/reconciliation", team_id=f.team, metric="win_rate", **ASK)
    assert body["team_target"] is None
    assert (body["members_target_sum"], body["gap"], body["suggested_sum"]) == (None, None, None)
    suggested = {m["user_id"]: (m["target"], m["suggested"]) for m in body["members"]}
    assert suggested == {
        f.ids["ann"]: (0.6, 0.5),
        f.ids["bob"]: (None, 1),
        f.ids["cid"]: (None, None),
    }


def test_reconciliation_counts_and_distinct(f: Funnel) -> None:
    emails = f.ok("/quotas/reconciliation", team_id=f.team, metric="emails_sent", **ASK)
    by_user = {m["user_id"]: m["suggested"] for m in emails["members"]}
    assert by_user[f.ids["ann"]] == 12.5  # (0 + 30 + 20 + 0) / 4
    assert by_user[f.ids["bob"]] == 0.5  # March and April: (1 + 0) / 2
    assert emails["members_target_sum"] == 0  # no member has a target yet
    assert emails["gap"] is None  # nor the team
    engaged = f.ok("/quotas/reconciliation", team_id=f.team, metric="contacts_engaged", **ASK)
    assert engaged["members_target_sum"] is None  # distinct counts overlap: no sum
    # distinct per month: 0, {x, y}, {z, w, v}, {u, t, x} -> 8 / 4
    assert {m["user_id"]: m["suggested"] for m in engaged["members"]}[f.ids["ann"]] == 2


@pytest.mark.parametrize(
    ("path", "params", "status"),
    [
        ("/quotas/plan", {"target": 0}, 422),
        ("/quotas/plan", {"target": -5}, 422),
        ("/quotas/plan", {"target": "nan"}, 422),
        ("/quotas/plan", {"target": "1e20"}, 422),
        ("/quotas/plan", {"target": 10, "period": "fortnight"}, 422),
        ("/quotas/plan", {"target": 10, "date": "0001-01-15"}, 400),
        ("/quotas/plan", {"target": 10, "user_id": 1, "team_id": 1}, 422),
        ("/quotas/reconciliation", {"metric": "revenue"}, 422),  # no team
        ("/quotas/reconciliation", {"metric": "emails", "team_id": 1}, 422),
        ("/quotas/reconciliation", {"metric": "revenue", "team_id": 10**9}, 404),
        ("/quotas/reconciliation", {"metric": "revenue", "team_id": 1, "date": "0001-01-15"}, 400),
    ],
)
def test_bad_input(f: Funnel, path: str, params: dict[str, Any], status: int) -> None:
    response = f.get(path, "admin", **{"period": "month", **params})
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] in {"bad_request", "validation_error", "not_found"}


def test_who_may_ask(f: Funnel, client: TestClient) -> None:
    team_b = {"team_id": f.ids["team_b"], "metric": "revenue", **ASK}
    assert f.get("/quotas/reconciliation", "mia", **team_b).status_code == 404
    assert f.get("/quotas/reconciliation", "max", **team_b).status_code == 200
    assert (
        f.get("/quotas/reconciliation", "ann", team_id=f.team, metric="revenue", **ASK).status_code
        == 404
    )
    plan = {"target": 100, **ASK}
    assert f.get("/quotas/plan", "ann", **plan).status_code == 200  # their own
    assert f.get("/quotas/plan", "ann", user_id=f.ids["bob"], **plan).status_code == 404
    assert f.get("/quotas/plan", "mia", user_id=f.ids["dan"], **plan).status_code == 404
    assert f.get("/quotas/plan", "mia", team_id=f.ids["team_b"], **plan).status_code == 404
    assert client.get("/api/v1/quotas/plan", params=plan).status_code == 401
    other = make_org(client, name="Globex", domains=("globex.example",)).as_admin()
    foreign = {"team_id": f.team, "metric": "revenue", **ASK}
    assert (
        client.get("/api/v1/quotas/reconciliation", params=foreign, headers=other).status_code
        == 404
    )
    params = {"user_id": f.ids["ann"], **plan}
    assert client.get("/api/v1/quotas/plan", params=params, headers=other).status_code == 404
