"""Deal metrics on /metrics and as quotas: attainment with the pipeline view (semantics §7-§8)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.quotas.funnel import Funnel, funnel

MAY = {"date": "2024-05-15"}


@pytest.fixture
def f(client: TestClient) -> Funnel:
    f = funnel(client)
    rates = {"rates": [{"currency": "USD", "rate": "0.9", "effective_from": "2024-01-01"}]}
    put = client.put("/api/v1/org/exchange-rates", json=rates, headers=f.org.as_admin())
    assert put.status_code == 200, put.text
    # Ann in May: one won (created 30 April, cycle 10 days), open deals in and out of May
    f.won("ann", 1500, "2024-04-30", "2024-05-10", cost=500)
    f.deal("ann", 2000, cost=400, stage="Proposal", expected_close_date="2024-05-20")  # x 0.5
    f.deal("ann", 1000, currency="USD", stage="Negotiation", expected_close_date="2024-05-31")
    f.deal("ann", 5000, stage="Negotiation", expected_close_date="2024-06-02")  # June
    f.deal("ann", 700)  # no expected close date
    f.deal("dan", 9999, expected_close_date="2024-05-20")  # another team
    f.lost("bob", "2024-05-01", "2024-05-03")
    f.won("bob", 300, "2024-05-02", "2024-05-02")  # cycle 0
    return f


def test_deal_metric_series(f: Funnel) -> None:
    params = {"period": "month", "start": "2024-04-01", "end": "2024-06-30", "team_id": f.team}

    def series(metric: str, **extra: object) -> list[object]:
        body = f.ok("/metrics", metric=metric, **{**params, **extra})
        return [p["value"] for p in body["series"]]

    assert series("opportunities_created") == [1, 6, 0]
    assert series("deals_won") == [0, 2, 0]
    assert series("revenue") == [0, 1800, 0]
    assert series("gross_margin") == [0, 1300, 0]
    assert series("avg_deal_value") == [None, 900, None]
    assert series("sales_cycle_days") == [None, 5, None]  # (10 + 0) / 2
    assert series("win_rate") == [None, pytest.approx(2 / 3), None]
    assert series("win_rate", team_id=None, user_id=f.ids["bob"]) == [None, 0.5, None]
    assert series("win_rate", team_id=None, user_id=f.ids["cid"]) == [None, None, None]
    assert series("revenue", team_id=None, user_id=f.ids["cid"]) == [0, 0, 0]


def test_attainment_on_every_metric_with_the_pipeline(f: Funnel) -> None:
    ann = {"user_id": f.ids["ann"]}
    targets = {
        "revenue": 6000,
        "deals_won": 3,
        "gross_margin": 4000,
        "win_rate": "0.8",
        "sales_cycle_days": 5,
        "avg_deal_value": 1000,
        "opportunities_created": 10,
        "emails_sent": 20,
        "contacts_engaged": 4,
    }
    ids = {metric: f.quota(metric, target, **ann) for metric, target in targets.items()}
    f.activities("ann", "email_sent", "2024-05-02", 5, "x@c.example")
    items = {i["metric"]: i for i in f.ok("/quotas/attainment", "ann", **MAY)["items"]}
    assert {i["quota_id"] for i in items.values()} == set(ids.values())
    revenue = items["revenue"]
    assert (revenue["actual"], revenue["target"]) == (1500, 6000)
    assert revenue["attainment"] == 0.25
    # won so far 1500 + 2000 x 0.5 + (1000 USD x 0.9) x 0.75
    assert revenue["forecast_pipeline"] == 3175
    assert revenue["open_without_close_date"] == 1
    assert revenue["coverage"] == pytest.approx((2000 + 900) / (6000 - 1500))
    assert revenue["elapsed_share"] == pytest.approx(15 / 31)
    assert revenue["forecast"] == pytest.approx(1500 * 31 / 15)
    won = items["deals_won"]
    assert (won["actual"], won["forecast_pipeline"], won["coverage"]) == (1, 2.25, None)
    margin = items["gross_margin"]
    assert (margin["actual"], margin["forecast_pipeline"]) == (1000, 1000 + 800 + 675)
    rate = items["win_rate"]
    assert (rate["actual"], rate["attainment"], rate["pace"]) == (1, 1.25, 1.25)
    assert rate["forecast"] == 1  # a ratio does not grow with time
    assert rate["forecast_pipeline"] is None
    cycle = items["sales_cycle_days"]
    assert (cycle["actual"], cycle["attainment"]) == (10, 0.5)  # target / actual
    assert items["opportunities_created"]["actual"] == 4  # the won one was created in April
    assert items["emails_sent"]["actual"] == 5
    assert items["contacts_engaged"]["actual"] == 1
    for item in items.values():
        assert item["members_target_sum"] is None  # a user's quota


def test_team_attainment_adds_members_targets_only_for_counts_and_sums(f: Funnel) -> None:
    team = {"team_id": f.team}
    for metric, target in (("revenue", 5000), ("win_rate", "0.5"), ("contacts_engaged", 9)):
        f.quota(metric, target, **team)
    f.quota("revenue", 3000, user_id=f.ids["ann"])
    f.quota("revenue", 1000, user_id=f.ids["bob"])
    f.quota("revenue", 1000, user_id=f.ids["bob"], period="week")  # another unit
    f.quota("win_rate", "0.4", user_id=f.ids["ann"])
    items = {i["metric"]: i for i in f.ok("/quotas/attainment", **MAY, **team)["items"]}
    revenue = items["revenue"]
    assert (revenue["actual"], revenue["members_target_sum"], revenue["gap"]) == (1800, 4000, 1000)
    # the team's pipeline pools its members' open deals (not Dan's)
    assert revenue["forecast_pipeline"] == 1800 + 1000 + 675
    assert revenue["open_without_close_date"] == 1
    rate = items["win_rate"]
    assert rate["actual"] == pytest.approx(2 / 3)
    assert (rate["members_target_sum"], rate["gap"]) == (None, None)
    engaged = items["contacts_engaged"]
    assert (engaged["members_target_sum"], engaged["gap"]) == (None, None)


def test_quota_targets_are_decimals(f: Funnel) -> None:
    created = f.org.client.post(
        "/api/v1/quotas",
        json={
            "metric": "revenue",
            "period": "quarter",
            "target": "12500.75",
            "user_id": f.ids["ann"],
            "effective_from": "2024-01-01",
        },
        headers=f.org.as_admin(),
    )
    assert created.status_code == 201, created.text
    assert created.json()["target"] == 12500.75
    read = f.get(f"/quotas/{created.json()['id']}", "admin")
    assert read.json()["target"] == 12500.75


def test_a_team_without_deals(f: Funnel) -> None:
    body = f.ok(
        "/metrics",
        "admin",
        metric="win_rate",
        period="month",
        start="2024-05-01",
        end="2024-05-31",
        team_id=f.ids["team_b"],
    )
    assert [p["value"] for p in body["series"]] == [None]
    empty = f.org.team("C")["id"]
    body = f.ok(
        "/metrics",
        "admin",
        metric="revenue",
        period="month",
        start="2024-05-01",
        end="2024-05-31",
        team_id=empty,
    )
    assert [p["value"] for p in body["series"]] == [0]
