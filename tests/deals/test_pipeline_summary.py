"""GET /pipeline/summary: open deals by stage in the organization's currency, as the caller
may list them with GET /deals; on both databases."""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.quotas.funnel import Funnel, funnel

USD = Decimal("0.9")


@pytest.fixture
def f(client: TestClient) -> Funnel:
    f = funnel(client)
    rates = {"rates": [{"currency": "USD", "rate": "0.9", "effective_from": "2024-01-01"}]}
    put = client.put("/api/v1/org/exchange-rates", json=rates, headers=f.org.as_admin())
    assert put.status_code == 200, put.text
    f.deal("ann", 2000, stage="Proposal", expected_close_date="2024-05-20")
    f.deal("ann", "1000.05", currency="USD", stage="Negotiation")  # 900.045 -> 900.04
    f.deal("ann", "1000.25", currency="USD", stage="Negotiation")  # 900.225 -> 900.22
    f.deal("ann", "1000.05", currency="USD", stage="Negotiation")  # the same value twice
    f.deal("bob", "333.33", stage="Qualification", expected_close_date="2024-06-01")
    f.deal("bob", 700, stage="Proposal")
    f.deal("dan", 9999, stage="Proposal")  # team B
    f.won("ann", 1500, "2024-04-30", "2024-05-10")  # closed: not in the pipeline
    f.lost("bob", "2024-05-01", "2024-05-03")
    return f


def expected(f: Funnel, who: str, **params: Any) -> dict[str, Any]:
    """The summary a client would compute from GET /deals and GET /pipeline/stages."""
    deals: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = f.ok("/deals", who, status="open", limit=1000, cursor=cursor, **params)
        deals += page["items"]
        if not (cursor := page["next_cursor"]):
            break
    stages = []
    for stage in f.ok("/pipeline/stages", who)["stages"]:
        mine = [d for d in deals if d["stage"] == stage["name"]]
        value = sum(
            (
                Decimal(str(d["value"]))
                if d["currency"] == "EUR"
                else (Decimal(str(d["value"])) * USD).quantize(Decimal("0.01"), ROUND_HALF_EVEN)
                for d in mine
            ),
            Decimal(0),
        )
        probability = Decimal(str(stage["probability"]))
        stages.append((stage["name"], len(mine), value, value * probability))
    undated = sum(1 for d in deals if d["expected_close_date"] is None)
    return {"stages": stages, "undated": undated, "count": len(deals)}


def check(body: dict[str, Any], want: dict[str, Any]) -> None:
    shown = [
        (s["name"], s["count"], Decimal(str(s["value"])), Decimal(str(s["weighted"])))
        for s in body["stages"]
    ]
    assert [(n, c) for n, c, _, _ in shown] == [(n, c) for n, c, _, _ in want["stages"]]
    for (_, _, value, weighted), (_, _, v, w) in zip(shown, want["stages"], strict=True):
        assert value == v
        assert weighted == pytest.approx(w, abs=Decimal("0.000001"))
    assert body["total"]["count"] == want["count"] == sum(s["count"] for s in body["stages"])
    assert Decimal(str(body["total"]["value"])) == sum(v for _, _, v, _ in want["stages"])
    assert body["open_without_close_date"] == want["undated"]
    assert body["currency"] == "EUR"


@pytest.mark.parametrize(
    ("who", "params"),
    [
        ("mia", {}),  # her team's members (and herself)
        ("mia", {"team_id": "team"}),
        ("mia", {"user_id": "ann"}),
        ("ann", {}),  # a rep: her own
        ("ann", {"user_id": "ann"}),
        ("max", {"team_id": "team_b"}),
        ("admin", {}),  # everyone
        ("admin", {"team_id": "team"}),
    ],
)
def test_sums_equal_the_deals_listing(f: Funnel, who: str, params: dict[str, Any]) -> None:
    names = {"team": f.team, "team_b": f.ids["team_b"], "ann": f.ids["ann"]}
    given = {k: names[v] for k, v in params.items()}
    body = f.ok("/pipeline/summary", who, **given)
    listing = {"owner_id" if k == "user_id" else k: v for k, v in given.items()}
    check(body, expected(f, who, **listing))


def test_figures(f: Funnel) -> None:
    body = f.ok("/pipeline/summary", team_id=f.team)
    rows = {s["name"]: s for s in body["stages"]}
    assert [s["name"] for s in body["stages"]] == [
        "Qualification",
        "Discovery",
        "Proposal",
        "Negotiation",
    ]
    # each USD deal converted alone at today's rate, to the cent (half even): 900.04 twice
    # and 900.22 (converting their sum, 3,000.35, would give 2,700.32)
    assert (rows["Negotiation"]["count"], rows["Negotiation"]["value"]) == (3, 2700.30)
    assert rows["Negotiation"]["weighted"] == pytest.approx(2700.30 * 0.75)
    assert (rows["Proposal"]["count"], rows["Proposal"]["value"]) == (2, 2700)  # not dan's
    assert rows["Proposal"]["weighted"] == 1350
    assert (rows["Discovery"]["count"], rows["Discovery"]["value"]) == (0, 0)
    assert rows["Qualification"]["weighted"] == pytest.approx(33.333)
    assert body["total"]["count"] == 6
    assert body["total"]["value"] == pytest.approx(2700.30 + 2700 + 333.33)
    assert body["open_without_close_date"] == 4
    ann = f.ok("/pipeline/summary", "ann")
    assert ann["total"]["count"] == 4 and ann["open_without_close_date"] == 3


def test_a_stage_the_pipeline_no_longer_has_counts_in_the_totals(f: Funnel) -> None:
    stages = f.ok("/pipeline/stages", "admin")["stages"]
    kept = [s for s in stages if s["name"] != "Qualification"]
    body = {"stages": kept, "move": {"Qualification": "Discovery"}}
    put = f.org.client.put("/api/v1/pipeline/stages", json=body, headers=f.org.as_admin())
    assert put.status_code == 200, put.text
    summary = f.ok("/pipeline/summary", team_id=f.team)
    assert [s["name"] for s in summary["stages"]] == ["Discovery", "Proposal", "Negotiation"]
    assert summary["stages"][0]["count"] == 1  # moved
    assert summary["total"]["count"] == 6


@pytest.mark.parametrize(
    ("who", "params", "status"),
    [
        ("ann", {"user_id": "bob"}, 404),  # a rep sees only her own
        ("ann", {"team_id": "team"}, 404),
        ("mia", {"team_id": "team_b"}, 404),
        ("mia", {"user_id": "dan"}, 404),
        ("mia", {"user_id": 999999}, 404),
        ("mia", {"team_id": 999999}, 404),
        ("mia", {"team_id": "team", "user_id": "ann"}, 422),
        ("mia", {"team_id": "x"}, 422),
        ("mia", {"user_id": -1}, 422),
    ],
)
def test_refusals(f: Funnel, who: str, params: dict[str, Any], status: int) -> None:
    names = {"team": f.team, "team_b": f.ids["team_b"], "ann": f.ids["ann"], "bob": f.ids["bob"]}
    names["dan"] = f.ids["dan"]
    given = {k: names.get(v, v) if isinstance(v, str) else v for k, v in params.items()}
    response = f.get("/pipeline/summary", who, **given)
    assert response.status_code == status, response.text
    assert set(response.json()["error"]) == {"code", "message"}


def test_without_a_key(client: TestClient) -> None:
    assert client.get("/api/v1/pipeline/summary").status_code == 401
