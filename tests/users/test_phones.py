"""Users' phone numbers: normalized to E.164, rejected when invalid, one user per number."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.api import make_org


def is_error(response: Any, status: int) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body


def new_user(client: TestClient, headers: dict[str, str], email: str, phones: list[str]) -> Any:
    return client.post(
        "/api/v1/users",
        json={"email": email, "name": "Someone", "role": "rep", "phones": phones},
        headers=headers,
    )


def test_phones_are_stored_in_e164(client: TestClient) -> None:
    org = make_org(client)
    response = new_user(
        client, org.as_admin(), "ann@acme.example", ["+32 470 12-34-56", "+1 (415) 555-0132"]
    )
    assert response.status_code == 201, response.text
    ann = response.json()
    assert ann["phones"] == ["+32470123456", "+14155550132"]
    read = client.get(f"/api/v1/users/{ann['id']}", headers=org.as_admin()).json()
    assert read["phones"] == ["+32470123456", "+14155550132"]
    listed = client.get("/api/v1/users", headers=org.as_admin()).json()
    assert {u["email"]: u["phones"] for u in listed}["admin@acme.example"] == []
    response = client.patch(
        f"/api/v1/users/{ann['id']}", json={"phones": ["+32470123456"]}, headers=org.as_admin()
    )
    assert response.json()["phones"] == ["+32470123456"]
    response = client.patch(
        f"/api/v1/users/{ann['id']}", json={"name": "Ann"}, headers=org.as_admin()
    )
    assert response.json()["phones"] == ["+32470123456"]  # left out: unchanged


def test_national_numbers_need_the_default_region(client: TestClient) -> None:
    org = make_org(client)
    is_error(new_user(client, org.as_admin(), "ann@acme.example", ["0470 12 34 56"]), 422)
    # the region as the OpenAPI lists it: ISO 3166 upper case ("be" is a 422)
    lower = client.put(
        "/api/v1/org/telephony", json={"default_region": "be"}, headers=org.as_admin()
    )
    is_error(lower, 422)
    region = client.put(
        "/api/v1/org/telephony", json={"default_region": "BE"}, headers=org.as_admin()
    )
    assert region.status_code == 200, region.text
    response = new_user(client, org.as_admin(), "ann@acme.example", ["0470 12 34 56"])
    assert response.status_code == 201, response.text
    assert response.json()["phones"] == ["+32470123456"]


def test_invalid_phones_are_rejected(client: TestClient) -> None:
    org = make_org(client)
    for phones in (["not a number"], ["+32 12"], [""], ["+1" + "5" * 80], ["\x00"], [None]):
        response = new_user(client, org.as_admin(), "ann@acme.example", phones)  # type: ignore[arg-type]
        is_error(response, 422)
    is_error(new_user(client, org.as_admin(), "ann@acme.example", ["+32470123456"] * 11), 422)
    assert [u["email"] for u in client.get("/api/v1/users", headers=org.as_admin()).json()] == [
        "admin@acme.example"
    ]


def test_a_number_belongs_to_one_user(client: TestClient) -> None:
    org = make_org(client)
    ann = new_user(client, org.as_admin(), "ann@acme.example", ["+32470123456"]).json()
    is_error(new_user(client, org.as_admin(), "bob@acme.example", ["+32 470 123 456"]), 409)
    bob = new_user(client, org.as_admin(), "bob@acme.example", []).json()
    response = client.patch(
        f"/api/v1/users/{bob['id']}", json={"phones": ["+32470123456"]}, headers=org.as_admin()
    )
    is_error(response, 409)
    response = client.patch(
        f"/api/v1/users/{ann['id']}", json={"phones": ["+32470123456"]}, headers=org.as_admin()
    )
    assert response.status_code == 200  # their own number again is fine


def test_a_rep_cannot_change_phones(client: TestClient) -> None:
    org = make_org(client)
    rep = org.user("rep@acme.example")
    response = client.patch(
        f"/api/v1/users/{rep['id']}",
        json={"phones": ["+32470123456"]},
        headers=org.as_user("rep@acme.example"),
    )
    is_error(response, 403)
