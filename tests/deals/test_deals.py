"""Deals through the API: the lifecycle, money, currencies, external ids, history, timelines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.db import session_scope
from app.models import Deal
from tests.api import Org, make_org

URL = "/api/v1/deals"


def ana(org: Org) -> int:
    return int(org.users["ana@acme.example"]["id"])


def patch(org: Org, deal_id: int, **fields: Any) -> Any:
    return org.client.patch(f"{URL}/{deal_id}", json=fields, headers=org.as_admin())


def history(org: Org, deal_id: int) -> list[dict[str, Any]]:
    response = org.client.get(f"{URL}/{deal_id}/history", headers=org.as_admin())
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def error(response: Any, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    message: str = body["error"]["message"]
    return message


def stored(deal_id: int) -> Deal:
    with session_scope() as session:
        deal = session.get_one(Deal, deal_id)
        session.expunge(deal)
        return deal


def test_a_new_deal_is_open_in_its_stage_with_the_stage_probability(org: Org) -> None:
    deal = org.deal(ana(org), name="Northwind", value="1234.50", stage="Proposal")
    assert deal["status"] == "open"
    assert deal["value"] == 1234.5 and deal["cost"] is None
    assert deal["currency"] == "EUR"
    assert deal["probability"] == 0.5
    assert deal["closed_at"] is None
    assert deal["contact_ids"] == [] and deal["last_activity_at"] is None
    assert datetime.fromisoformat(deal["created_at"]) > datetime.now(UTC) - timedelta(minutes=1)
    again = org.client.get(f"{URL}/{deal['id']}", headers=org.as_admin()).json()
    assert again == deal
    row = stored(deal["id"])
    assert row.value == Decimal("1234.50") and row.value_base is None


def test_won_and_lost_need_no_stage_and_close_now_by_default(org: Org) -> None:
    won = org.deal(ana(org), status="won", stage=None, value=10, cost=4)
    assert won["probability"] == 1
    assert datetime.fromisoformat(won["closed_at"]) > datetime.now(UTC) - timedelta(minutes=1)
    lost = org.deal(ana(org), status="lost", stage=None)
    assert lost["probability"] == 0
    row = stored(won["id"])
    assert (row.value_base, row.cost_base) == (Decimal("10.00"), Decimal("4.00"))


def test_reopening_clears_closed_at_and_needs_a_stage(org: Org) -> None:
    deal = org.deal(
        ana(org),
        status="won",
        stage=None,
        created_at="2026-01-05T09:00:00+01:00",
        closed_at="2026-02-01T10:00:00+01:00",
    )
    assert deal["closed_at"] == "2026-02-01T09:00:00Z"
    assert "needs a stage" in error(patch(org, deal["id"], status="open"), 422)
    reopened = patch(org, deal["id"], status="open", stage="Discovery").json()
    assert reopened["closed_at"] is None and reopened["probability"] == 0.25
    assert stored(deal["id"]).value_base is None
    closed = patch(org, deal["id"], status="lost").json()
    assert closed["closed_at"] is not None and closed["stage"] == "Discovery"


@pytest.mark.parametrize(
    ("fields", "status", "needle"),
    [
        ({"stage": None}, 422, "needs a stage"),
        ({"stage": "Nowhere"}, 422, "not a stage of the pipeline"),
        ({"closed_at": "2026-01-01T00:00:00Z"}, 422, "only for won or lost"),
        (
            {
                "status": "won",
                "created_at": "2026-02-01T00:00:00Z",
                "closed_at": "2026-01-01T00:00:00Z",
            },
            422,
            "before created_at",
        ),
        ({"value": -1}, 422, "value"),
        ({"cost": "-0.01"}, 422, "cost"),
        ({"value": "1.005"}, 422, "decimal places"),
        ({"value": 10**13}, 422, "value"),
        ({"value": "NaN"}, 422, "value"),
        ({"value": True}, 422, "value"),
        ({"currency": "eur"}, 422, "ISO 4217"),
        ({"currency": "XYZ"}, 422, "ISO 4217"),
        ({"created_at": "2026-01-01T00:00:00"}, 422, "created_at"),
        ({"name": ""}, 422, "name"),
        ({"name": "x" * 256}, 422, "name"),
        ({"contact_ids": list(range(101))}, 422, "contact_ids"),
        ({"company_id": 999999}, 404, "company 999999"),
        ({"contact_ids": [999999]}, 404, "999999"),
        ({"owner_id": 999999}, 404, "user 999999"),
    ],
)
def test_bad_deals_are_refused_with_the_reason(
    org: Org, fields: dict[str, Any], status: int, needle: str
) -> None:
    body = {"name": "D", "owner_id": ana(org), "value": 1, "stage": "Proposal", **fields}
    response = org.client.post(URL, json=body, headers=org.as_admin())
    assert needle in error(response, status)


def test_money_comes_in_as_a_number_or_a_decimal_string_and_goes_out_as_a_number(
    org: Org,
) -> None:
    deal = org.deal(ana(org), value="9999999999999.99", cost=0.1)
    assert deal["value"] == 9999999999999.99 and deal["cost"] == 0.1
    assert stored(deal["id"]).value == Decimal("9999999999999.99")
    assert org.deal(ana(org), value="1000")["value"] == 1000
    # a decimal string is plain digits, as the OpenAPI's pattern says: no sign, spaces or
    # exponent (what Python's Decimal would also read)
    response = org.client.post(
        URL,
        json={"name": "D", "owner_id": ana(org), "value": " 1e3 ", "stage": "Proposal"},
        headers=org.as_admin(),
    )
    assert "value" in error(response, 422)


def test_a_second_post_with_the_same_external_id_names_the_existing_deal(org: Org) -> None:
    first = org.deal(ana(org), external_id="crm-1")
    response = org.client.post(
        URL,
        json={
            "name": "D",
            "owner_id": ana(org),
            "value": 1,
            "stage": "Proposal",
            "external_id": "crm-1",
        },
        headers=org.as_admin(),
    )
    assert f"deal {first['id']}" in error(response, 409)
    other = org.deal(ana(org), external_id="crm-2")
    assert f"deal {first['id']}" in error(patch(org, other["id"], external_id="crm-1"), 409)
    elsewhere = make_org(org.client, name="Other", domains=("other.example",))
    assert elsewhere.deal(elsewhere.admin_id(), external_id="crm-1")["external_id"] == "crm-1"


def test_a_currency_without_a_rate_is_refused_naming_it(org: Org) -> None:
    response = org.client.post(
        URL,
        json={
            "name": "D",
            "owner_id": ana(org),
            "value": 1,
            "stage": "Proposal",
            "currency": "USD",
        },
        headers=org.as_admin(),
    )
    assert "USD" in error(response, 422)
    rates = {"rates": [{"currency": "USD", "rate": "0.9", "effective_from": "2026-01-01"}]}
    put = org.client.put("/api/v1/org/exchange-rates", json=rates, headers=org.as_admin())
    assert put.status_code == 200, put.text
    early = org.client.post(
        URL,
        json={
            "name": "D",
            "owner_id": ana(org),
            "value": 1,
            "currency": "USD",
            "status": "won",
            "created_at": "2025-12-01T00:00:00Z",
            "closed_at": "2025-12-31T12:00:00Z",
        },
        headers=org.as_admin(),
    )
    assert "USD" in error(early, 422) and "2025-12-31" in error(early, 422)
    won = org.deal(
        ana(org),
        currency="USD",
        value="100.05",
        cost=10,
        status="won",
        created_at="2026-01-01T00:00:00Z",
        closed_at="2026-01-15T12:00:00Z",
    )
    row = stored(won["id"])
    assert (row.value_base, row.cost_base) == (Decimal("90.04"), Decimal("9.00"))
    assert won["value"] == 100.05 and won["currency"] == "USD"


def test_the_closed_at_date_is_the_organizations_local_date(client: TestClient) -> None:
    org = make_org(client, timezone="Pacific/Auckland")
    me = org.admin_id()
    rates = {
        "rates": [
            {"currency": "USD", "rate": 1, "effective_from": "2026-01-01"},
            {"currency": "USD", "rate": 2, "effective_from": "2026-03-02"},
        ]
    }
    assert (
        org.client.put("/api/v1/org/exchange-rates", json=rates, headers=org.as_admin()).status_code
        == 200
    )
    # 2026-03-01T12:00Z is already 2 March in Auckland (UTC+13): the second rate.
    deal = org.deal(
        me,
        currency="USD",
        value=10,
        status="won",
        stage=None,
        created_at="2026-02-01T00:00:00Z",
        closed_at="2026-03-01T12:00:00Z",
    )
    assert stored(deal["id"]).value_base == Decimal("20.00")


def test_every_change_is_kept_with_who_made_it(org: Org) -> None:
    deal = org.deal(ana(org), name="First", value=100)
    assert patch(org, deal["id"], value="100.00").status_code == 200  # no change, no row
    patch(org, deal["id"], name="Second", value=150, stage="Proposal")
    patch(org, deal["id"], status="won")
    rows = history(org, deal["id"])
    admin = org.admin_id()
    assert [r["field"] for r in rows] == [
        "created",
        "name",
        "value",
        "stage",
        "status",
        "closed_at",
    ]
    assert all(r["by_user_id"] == admin for r in rows)
    assert rows[0]["old"] is None and rows[0]["new"]["value"] == 100
    assert rows[0]["new"]["name"] == "First"
    assert rows[2]["old"] == 100 and rows[2]["new"] == 150
    assert (rows[3]["old"], rows[3]["new"]) == ("Qualification", "Proposal")
    assert (rows[4]["old"], rows[4]["new"]) == ("open", "won")
    assert rows[5]["old"] is None and rows[5]["new"] is not None


def test_history_pages_and_survives_deletion(org: Org) -> None:
    deal = org.deal(ana(org), name="A")
    for n in range(4):
        patch(org, deal["id"], name=f"N{n}")
    first = org.client.get(f"{URL}/{deal['id']}/history?limit=2", headers=org.as_admin()).json()
    second = org.client.get(
        f"{URL}/{deal['id']}/history?limit=10&cursor={first['next_cursor']}",
        headers=org.as_admin(),
    ).json()
    assert len(first["items"]) == 2 and len(second["items"]) == 3
    assert second["next_cursor"] is None
    response = org.client.delete(f"{URL}/{deal['id']}", headers=org.as_admin())
    assert response.status_code == 204
    assert org.client.get(f"{URL}/{deal['id']}", headers=org.as_admin()).status_code == 404
    from app.deals.models import DealChange

    with session_scope() as session:
        fields = session.scalars(
            select(DealChange.field).where(DealChange.deal_id == deal["id"]).order_by(DealChange.id)
        ).all()
    assert fields[0] == "created" and fields[-1] == "deleted" and len(fields) == 6


def test_lists_filter_and_page(org: Org) -> None:
    bob = org.user("bob@acme.example")["id"]
    a = org.deal(ana(org), stage="Proposal")
    b = org.deal(ana(org), status="won", stage=None)
    c = org.deal(bob)

    def ids(**params: Any) -> list[int]:
        response = org.client.get(URL, params=params, headers=org.as_admin())
        assert response.status_code == 200, response.text
        return [d["id"] for d in response.json()["items"]]

    assert ids() == [a["id"], b["id"], c["id"]]
    assert ids(owner_id=ana(org)) == [a["id"], b["id"]]
    assert ids(status="won") == [b["id"]]
    assert ids(stage="Proposal") == [a["id"]]
    assert ids(status="open", owner_id=bob) == [c["id"]]
    page = org.client.get(URL, params={"limit": 2}, headers=org.as_admin()).json()
    rest = org.client.get(
        URL, params={"limit": 2, "cursor": page["next_cursor"]}, headers=org.as_admin()
    ).json()
    assert [d["id"] for d in page["items"] + rest["items"]] == [a["id"], b["id"], c["id"]]
    assert rest["next_cursor"] is None
    assert (
        org.client.get(URL, params={"status": "maybe"}, headers=org.as_admin()).status_code == 422
    )
    assert org.client.get(URL, params={"cursor": "!!"}, headers=org.as_admin()).status_code == 400


def test_a_deleted_deals_id_is_never_given_again(org: Org) -> None:
    gone = org.deal(ana(org), name="Gone")
    patch(org, gone["id"], name="Still gone")
    assert org.client.delete(f"{URL}/{gone['id']}", headers=org.as_admin()).status_code == 204
    new = org.deal(ana(org), name="New")  # SQLite would hand out the same id without AUTOINCREMENT
    assert new["id"] > gone["id"]
    rows = history(org, new["id"])
    assert [(r["field"], r["new"]["name"]) for r in rows] == [("created", "New")]
