"""Who manages which deals, and the deal timelines, on the Acme / Umbrella world of
tests/test_roles.py (managers Mia: East = Ana, Abe; Max: West = Bob; Cleo in no team)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.test_roles import Tenant, acme, umbrella

__all__ = ["acme", "umbrella"]  # the fixtures, shared with tests/test_roles.py

URL = "/api/v1/deals"


def deal_of(tenant: Tenant, owner: str, **fields: Any) -> int:
    return int(tenant.org.deal(tenant.ids[owner], **fields)["id"])


def call(tenant: Tenant, who: str, method: str, path: str, body: Any = None) -> Any:
    return tenant.org.client.request(method, path, json=body, headers=tenant.headers(who))


def test_a_rep_manages_only_their_own_deals(acme: Tenant) -> None:
    ids = acme.ids
    mine = acme.org.deal(ids["ana"], headers=acme.headers("ana"))
    bobs = deal_of(acme, "bob")
    assert call(acme, "ana", "GET", f"{URL}/{mine['id']}").json() == mine
    assert [d["id"] for d in acme.items("ana", "/deals")] == [mine["id"]]
    for method, change in (("GET", None), ("PATCH", {"name": "x"}), ("DELETE", None)):
        assert call(acme, "ana", method, f"{URL}/{bobs}", change).status_code == 404
    for path in (f"/deals/{bobs}/history", f"/deals/{bobs}/activities"):
        acme.hidden("ana", path)
    acme.hidden("ana", "/deals", owner_id=ids["bob"])
    acme.hidden("ana", "/deals", team_id=ids["west"])
    body = {"name": "D", "owner_id": ids["bob"], "value": 1, "stage": "Proposal"}
    assert call(acme, "ana", "POST", URL, body).status_code == 403
    # giving the deal away is writing a deal for someone else
    moved = call(acme, "ana", "PATCH", f"{URL}/{mine['id']}", {"owner_id": ids["bob"]})
    assert moved.status_code == 403, moved.text
    assert call(acme, "ana", "PATCH", f"{URL}/{mine['id']}", {"value": 5}).json()["value"] == 5
    assert call(acme, "ana", "DELETE", f"{URL}/{mine['id']}").status_code == 204
    assert call(acme, "admin", "GET", f"{URL}/{bobs}").status_code == 200


def test_a_manager_manages_their_teams_deals_and_their_own(acme: Tenant) -> None:
    ids = acme.ids
    anas, bobs, cleos = deal_of(acme, "ana"), deal_of(acme, "bob"), deal_of(acme, "cleo")
    own = acme.org.deal(ids["mia"], headers=acme.headers("mia"))["id"]
    assert {d["id"] for d in acme.items("mia", "/deals")} == {anas, own}
    assert [d["id"] for d in acme.items("mia", "/deals", team_id=ids["east"])] == [anas]
    assert [d["id"] for d in acme.items("max", "/deals")] == [bobs]
    for other in (bobs, cleos):
        acme.hidden("mia", f"/deals/{other}")
        assert call(acme, "mia", "PATCH", f"{URL}/{other}", {"name": "x"}).status_code == 404
        assert call(acme, "mia", "DELETE", f"{URL}/{other}").status_code == 404
    acme.hidden("mia", "/deals", team_id=ids["west"])
    acme.hidden("mia", "/deals", owner_id=ids["cleo"])
    # Mia may hand Ana's deal to Abe (her team), not to Bob (not hers to see)
    to_abe = call(acme, "mia", "PATCH", f"{URL}/{anas}", {"owner_id": ids["abe"]})
    assert to_abe.status_code == 200 and to_abe.json()["owner_id"] == ids["abe"]
    to_bob = call(acme, "mia", "PATCH", f"{URL}/{anas}", {"owner_id": ids["bob"]})
    assert to_bob.status_code == 404, to_bob.text
    body = {"name": "D", "owner_id": ids["bob"], "value": 1, "stage": "Proposal"}
    assert call(acme, "mia", "POST", URL, body).status_code == 404
    assert call(acme, "mia", "POST", URL, {**body, "owner_id": ids["ana"]}).status_code == 201
    # the pipeline and the rates are the admin's
    stages = {"stages": [{"name": "Only", "probability": 0.5}]}
    assert call(acme, "mia", "PUT", "/api/v1/pipeline/stages", stages).status_code == 403
    assert call(acme, "ana", "PUT", "/api/v1/org/exchange-rates", {"rates": []}).status_code == 403
    assert len(acme.ok("ana", "/pipeline/stages")["stages"]) == 4
    assert acme.ok("mia", "/org/exchange-rates") == {"currency": "EUR", "rates": []}


def test_an_admin_manages_every_deal_of_the_org(acme: Tenant) -> None:
    made = {name: deal_of(acme, name) for name in ("ana", "bob", "cleo", "mia")}
    assert {d["id"] for d in acme.items("admin", "/deals")} == set(made.values())
    for deal_id in made.values():
        assert call(acme, "admin", "PATCH", f"{URL}/{deal_id}", {"value": 7}).status_code == 200


def test_nothing_crosses_organizations(acme: Tenant, umbrella: Tenant) -> None:
    theirs = umbrella.ids["deal"]
    joe_there = umbrella.contacts["joe@northwind.co.uk"]
    for who in ("admin", "mia", "ana"):
        for method, change in (("GET", None), ("PATCH", {"name": "x"}), ("DELETE", None)):
            assert call(acme, who, method, f"{URL}/{theirs}", change).status_code == 404
        assert acme.items(who, "/deals", company_id=umbrella.companies["northwind.co.uk"]) == []
    body = {
        "name": "D",
        "owner_id": umbrella.ids["una"],
        "value": 1,
        "stage": "Proposal",
    }
    assert call(acme, "admin", "POST", URL, body).status_code == 404
    mine = {"name": "D", "owner_id": acme.ids["ana"], "value": 1, "stage": "Proposal"}
    for field, value in (
        ("contact_ids", [joe_there]),
        ("company_id", umbrella.companies["vendor.example"]),
    ):
        response = call(acme, "admin", "POST", URL, {**mine, field: value})
        assert response.status_code == 404, response.text
    assert umbrella.ok("admin", f"/deals/{theirs}")["name"] == "Deal"
    assert [h["field"] for h in umbrella.items("admin", f"/deals/{theirs}/history")] == ["created"]


@pytest.mark.parametrize("who", ["ana", "mia", "admin"])
def test_a_deal_timeline_is_its_contacts_activities_that_the_caller_may_see(
    acme: Tenant, who: str
) -> None:
    joe = acme.contacts["joe@northwind.co.uk"]
    deal = acme.org.deal(acme.ids["ana"], contact_ids=[joe])
    subjects = [a["subject"] for a in acme.items(who, f"/deals/{deal['id']}/activities")]
    # Joe heard from Ana (03-02), Abe (03-04) and Bob (03-06); newest first, as each may see
    expected = {
        "ana": ["ana-joe"],
        "mia": ["abe", "ana-joe"],
        "admin": ["bob-joe", "abe", "ana-joe"],
    }
    assert subjects == expected[who]
    # the deal's freshness does not depend on who asks: Bob's mail to Joe is the latest
    assert acme.ok(who, f"/deals/{deal['id']}")["last_activity_at"] == "2026-03-06T09:00:00Z"


def test_without_contacts_a_deal_follows_its_companys_contacts(acme: Tenant) -> None:
    ids, companies = acme.ids, acme.companies
    initech = acme.org.deal(ids["ana"], company_id=companies["initech.example"])
    globex = acme.org.deal(ids["bob"], company_id=companies["globex.example"])
    bare = acme.org.deal(ids["ana"])
    sue = acme.contacts["sue@initech.example"]
    own = acme.org.deal(
        ids["ana"],
        company_id=companies["initech.example"],
        contact_ids=[acme.contacts["joe@northwind.co.uk"]],
    )
    timeline = acme.items("admin", f"/deals/{initech['id']}/activities")
    assert [(a["subject"], a["contact_ids"]) for a in timeline] == [("sue-ana", [sue])]
    assert timeline[0]["company_ids"] == [companies["initech.example"]]
    assert acme.items("admin", f"/deals/{bare['id']}/activities") == []
    latest = {d["id"]: d["last_activity_at"] for d in acme.items("admin", "/deals")}
    assert latest == {
        initech["id"]: "2026-03-03T09:00:00Z",
        globex["id"]: "2026-03-05T09:00:00Z",
        bare["id"]: None,
        own["id"]: "2026-03-06T09:00:00Z",
    }
    first = acme.ok("admin", f"/deals/{own['id']}/activities", limit=2)
    rest = acme.ok("admin", f"/deals/{own['id']}/activities", limit=2, cursor=first["next_cursor"])
    assert [a["subject"] for a in first["items"] + rest["items"]] == ["bob-joe", "abe", "ana-joe"]
    assert rest["next_cursor"] is None
