"""The pipeline (stages, removal with moves), the reporting currency and exchange rates."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.db import session_scope
from app.deals.pipeline import DEFAULT_STAGES
from app.models import Deal
from tests.api import Org, make_org

STAGES = "/api/v1/pipeline/stages"
RATES = "/api/v1/org/exchange-rates"


@pytest.fixture
def org(client: TestClient) -> Org:
    return make_org(client)


def put(org: Org, path: str, body: Any) -> Any:
    return org.client.put(path, json=body, headers=org.as_admin())


def bases(org_id: int) -> dict[int, tuple[Decimal | None, Decimal | None]]:
    with session_scope() as session:
        rows = session.execute(
            select(Deal.id, Deal.value_base, Deal.cost_base).where(Deal.org_id == org_id)
        )
        return {i: (v, c) for i, v, c in rows}


def test_a_new_organization_starts_with_the_default_pipeline(org: Org) -> None:
    stages = org.client.get(STAGES, headers=org.as_admin()).json()["stages"]
    expected = [
        {"name": n, "probability": float(p), "rotten_days": r} for n, p, r in DEFAULT_STAGES
    ]
    assert stages == expected


def test_the_pipeline_is_replaced_in_order(org: Org) -> None:
    body = {
        "stages": [
            {"name": "Lead", "probability": "0.05", "rotten_days": 30},
            {"name": " Qualification ", "probability": 0.1},
            {"name": "Contract", "probability": 0.9, "rotten_days": 7},
        ]
    }
    response = put(org, STAGES, body)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "stages": [
            {"name": "Lead", "probability": 0.05, "rotten_days": 30},
            {"name": "Qualification", "probability": 0.1, "rotten_days": 14},
            {"name": "Contract", "probability": 0.9, "rotten_days": 7},
        ]
    }
    assert org.client.get(STAGES, headers=org.as_admin()).json() == response.json()
    deal = org.deal(org.admin_id(), stage="Contract")
    assert deal["probability"] == 0.9


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"stages": []}, "stages"),
        ({"stages": [{"name": "A", "probability": 0.1}] * 2}, "unique"),
        ({"stages": [{"name": " ", "probability": 0.1}]}, "blank"),
        ({"stages": [{"name": "A", "probability": 1.5}]}, "probability"),
        ({"stages": [{"name": "A", "probability": -0.1}]}, "probability"),
        ({"stages": [{"name": "A", "probability": "0.12345"}]}, "decimal places"),
        ({"stages": [{"name": "A", "probability": 0.1, "rotten_days": 0}]}, "rotten_days"),
        ({"stages": [{"name": f"S{i}", "probability": 0} for i in range(51)]}, "stages"),
        ({"stages": [{"name": "x" * 101, "probability": 0}]}, "name"),
        ({"stages": [{"name": "A", "probability": 0}], "move": {"B": "C"}}, "not a stage"),
    ],
)
def test_bad_pipelines_are_refused(org: Org, body: dict[str, Any], needle: str) -> None:
    response = put(org, STAGES, body)
    assert response.status_code == 422, response.text
    assert needle in response.json()["error"]["message"]


def test_removing_a_stage_with_open_deals_needs_a_move_kept_in_their_history(org: Org) -> None:
    me = org.admin_id()
    open_deal = org.deal(me, stage="Discovery")
    won = org.deal(me, stage="Discovery")
    org.client.patch(f"/api/v1/deals/{won['id']}", json={"status": "won"}, headers=org.as_admin())
    without = {
        "stages": [
            {"name": n, "probability": float(p)} for n, p, _ in DEFAULT_STAGES if n != "Discovery"
        ]
    }
    refused = put(org, STAGES, without)
    assert refused.status_code == 409, refused.text
    assert "Discovery" in refused.json()["error"]["message"]
    # Proposal stays: which stages an update removes depends on the pipeline as it is
    wrong = put(org, STAGES, {**without, "move": {"Proposal": "Negotiation"}})
    assert wrong.status_code == 409, wrong.text
    moved = put(org, STAGES, {**without, "move": {"Discovery": "Proposal"}})
    assert moved.status_code == 200, moved.text
    deal = org.client.get(f"/api/v1/deals/{open_deal['id']}", headers=org.as_admin()).json()
    assert deal["stage"] == "Proposal" and deal["probability"] == 0.5
    history = org.client.get(f"/api/v1/deals/{open_deal['id']}/history", headers=org.as_admin())
    last = history.json()["items"][-1]
    assert (last["field"], last["old"], last["new"], last["by_user_id"]) == (
        "stage",
        "Discovery",
        "Proposal",
        me,
    )
    # a won deal keeps the stage it closed in, gone from the pipeline or not
    kept = org.client.get(f"/api/v1/deals/{won['id']}", headers=org.as_admin()).json()
    assert kept["stage"] == "Discovery" and kept["probability"] == 1
    renamed = org.client.patch(
        f"/api/v1/deals/{won['id']}", json={"value": 3}, headers=org.as_admin()
    )
    assert renamed.status_code == 200, renamed.text
    # but reopening it needs a stage that exists
    reopened = org.client.patch(
        f"/api/v1/deals/{won['id']}", json={"status": "open"}, headers=org.as_admin()
    )
    assert reopened.status_code == 422, reopened.text


def test_an_organization_reports_in_its_currency(client: TestClient) -> None:
    usd = make_org(client, currency="USD")
    assert usd.data["currency"] == "USD"
    assert make_org(client, name="E", domains=("e.example",)).data["currency"] == "EUR"
    assert usd.deal(usd.admin_id())["currency"] == "USD"
    for bad in ("usd", "US", "ABC", 5):
        response = client.post(
            "/api/v1/orgs",
            json={"name": "X", "domains": ["x.example"], "timezone": "UTC", "currency": bad},
            headers={"Authorization": "Bearer test-admin-token"},
        )
        assert response.status_code == 422, (bad, response.text)


def test_the_currency_changes_only_while_there_are_no_deals_nor_rates(org: Org) -> None:
    def change(currency: str) -> Any:
        return org.client.patch("/api/v1/org", json={"currency": currency}, headers=org.as_admin())

    assert change("GBP").json()["currency"] == "GBP"
    assert org.client.get("/api/v1/org", headers=org.as_admin()).json()["currency"] == "GBP"
    assert (
        put(
            org,
            RATES,
            {"rates": [{"currency": "EUR", "rate": 1.1, "effective_from": "2026-01-01"}]},
        ).status_code
        == 200
    )
    assert "exchange rates" in change("EUR").json()["error"]["message"]
    assert put(org, RATES, {"rates": []}).status_code == 200
    org.deal(org.admin_id())
    response = change("EUR")
    assert response.status_code == 409 and "deals" in response.json()["error"]["message"]
    assert change("GBP").status_code == 200  # the same currency is no change


def test_exchange_rates_are_replaced_and_closed_deals_converted_again(org: Org) -> None:
    me = org.admin_id()
    rates = [
        {"currency": "USD", "rate": "0.5", "effective_from": "2026-01-01"},
        {"currency": "USD", "rate": "0.8", "effective_from": "2026-02-01"},
        {"currency": "GBP", "rate": "1.1700000001", "effective_from": "2025-01-01"},
    ]
    response = put(org, RATES, {"rates": rates})
    assert response.status_code == 200, response.text
    assert response.json() == {
        "currency": "EUR",
        "rates": [
            {"currency": "GBP", "rate": 1.1700000001, "effective_from": "2025-01-01"},
            {"currency": "USD", "rate": 0.5, "effective_from": "2026-01-01"},
            {"currency": "USD", "rate": 0.8, "effective_from": "2026-02-01"},
        ],
    }
    won = org.deal(
        me,
        currency="USD",
        value=100,
        cost=50,
        status="won",
        created_at="2026-01-01T00:00:00Z",
        closed_at="2026-01-20T10:00:00Z",
    )
    open_usd = org.deal(me, currency="USD", value=100)
    euros = org.deal(me, value=100, status="lost", stage=None)
    assert bases(org.id)[won["id"]] == (Decimal("50.00"), Decimal("25.00"))
    # the January rate corrected: the won deal follows
    rates[0]["rate"] = "0.6"
    assert put(org, RATES, {"rates": rates}).status_code == 200
    now = bases(org.id)
    assert now[won["id"]] == (Decimal("60.00"), Decimal("30.00"))
    assert now[open_usd["id"]] == (None, None)
    assert now[euros["id"]] == (Decimal("100.00"), None)
    # a PUT that would leave a deal without a rate is refused as a whole
    for kept in (rates[1:], [r for r in rates if r["currency"] != "USD"]):
        refused = put(org, RATES, {"rates": kept})
        assert refused.status_code == 409, refused.text  # a conflict with the stored deal
        assert "USD" in refused.json()["error"]["message"]
    assert len(org.client.get(RATES, headers=org.as_admin()).json()["rates"]) == 3
    assert bases(org.id)[won["id"]] == (Decimal("60.00"), Decimal("30.00"))


@pytest.mark.parametrize(
    ("rate", "needle"),
    [
        ({"currency": "USD", "rate": 0, "effective_from": "2026-01-01"}, "rate"),
        ({"currency": "USD", "rate": -1, "effective_from": "2026-01-01"}, "rate"),
        ({"currency": "USD", "rate": "1234567.1234567891", "effective_from": "2026-01-01"}, "15"),
        ({"currency": "USD", "rate": "1e13", "effective_from": "2026-01-01"}, "rate"),
        ({"currency": "usd", "rate": 1, "effective_from": "2026-01-01"}, "ISO 4217"),
        ({"currency": "USD", "rate": 1, "effective_from": "2026-13-01"}, "effective_from"),
    ],
)
def test_bad_rates_are_refused(org: Org, rate: dict[str, Any], needle: str) -> None:
    response = put(org, RATES, {"rates": [rate]})
    assert response.status_code == 422, response.text
    assert needle in response.json()["error"]["message"]


def test_a_rate_for_the_organizations_own_currency_is_a_conflict(org: Org) -> None:
    rate = {"currency": "EUR", "rate": 1, "effective_from": "2026-01-01"}
    response = put(org, RATES, {"rates": [rate]})
    assert response.status_code == 409 and "own currency" in response.json()["error"]["message"]


def test_two_rates_for_one_currency_and_day_are_refused(org: Org) -> None:
    rate = {"currency": "USD", "rate": 1, "effective_from": "2026-01-01"}
    response = put(org, RATES, {"rates": [rate, {**rate, "rate": 2}]})
    assert response.status_code == 422 and "two rates" in response.json()["error"]["message"]


def test_a_new_time_zone_moves_closing_dates_and_their_rates(client: TestClient) -> None:
    org = make_org(client, timezone="UTC")
    rates = [
        {"currency": "USD", "rate": "0.5", "effective_from": "2026-01-01"},
        {"currency": "USD", "rate": "0.9", "effective_from": "2026-03-01"},
    ]
    assert put(org, RATES, {"rates": rates}).status_code == 200
    deal = org.deal(
        org.admin_id(),
        currency="USD",
        value=10,
        status="won",
        created_at="2026-02-01T00:00:00Z",
        closed_at="2026-02-28T23:30:00Z",
    )
    assert bases(org.id)[deal["id"]] == (Decimal("5.00"), None)
    moved = org.client.patch(
        "/api/v1/org", json={"timezone": "Europe/Brussels"}, headers=org.as_admin()
    )
    assert moved.status_code == 200, moved.text
    assert bases(org.id)[deal["id"]] == (Decimal("9.00"), None)  # 1 March in Brussels
