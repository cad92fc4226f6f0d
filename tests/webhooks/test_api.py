"""POST/GET/DELETE /webhooks: admins only, their own organization only, the secret shown once
and stored encrypted, and every limit on what a client sends."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.db import Database
from app.webhooks.models import Webhook
from app.webhooks.service import MAX_WEBHOOKS
from tests.api import Org, make_org

URL = "/api/v1/webhooks"
GOOD = {"url": "https://hooks.acme.example/tally", "events": ["deal.won", "alert.opened"]}


def create(org: Org, body: Any = None, headers: dict[str, str] | None = None) -> Any:
    return org.client.post(URL, json=body or GOOD, headers=headers or org.as_admin())


def test_created_with_a_standard_webhooks_secret_shown_once(org: Org, database: Database) -> None:
    response = create(org, {**GOOD, "events": ["alert.opened", "deal.won", "deal.won"]})
    assert response.status_code == 201, response.text
    created = response.json()
    secret = created.pop("secret")
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) == 32
    # each event once, in the documented order
    assert created["events"] == ["alert.opened", "deal.won"]
    assert created["url"] == GOOD["url"] and created["status"] == "active"
    shown = org.client.get(f"{URL}/{created['id']}", headers=org.as_admin())
    assert shown.json() == created  # no secret
    listed = org.client.get(URL, headers=org.as_admin()).json()
    assert listed == {"items": [created], "next_cursor": None}
    assert secret not in shown.text + str(listed)
    with database.sessions() as session:
        stored = session.scalars(select(Webhook.secret)).one()
    assert secret.encode() not in stored  # encrypted at rest


def test_only_admins_manage_webhooks(org: Org) -> None:
    org.user("mia@acme.example", role="manager")
    created = create(org).json()
    for who in ("mia@acme.example", "ana@acme.example"):
        headers = org.as_user(who)
        assert create(org, headers=headers).status_code == 403
        for method, path in (
            ("GET", URL),
            ("GET", f"{URL}/{created['id']}"),
            ("GET", f"{URL}/{created['id']}/deliveries"),
            ("DELETE", f"{URL}/{created['id']}"),
        ):
            response = org.client.request(method, path, headers=headers)
            assert response.status_code == 403, (who, method, path, response.text)
    assert org.client.get(f"{URL}/{created['id']}", headers=org.as_admin()).status_code == 200


def test_another_organizations_webhook_is_not_found(client: TestClient, org: Org) -> None:
    other = make_org(client, name="Umbrella", domains=("umbrella.example",))
    theirs = create(other).json()["id"]
    for method, path in (
        ("GET", f"{URL}/{theirs}"),
        ("GET", f"{URL}/{theirs}/deliveries"),
        ("DELETE", f"{URL}/{theirs}"),
    ):
        assert org.client.request(method, path, headers=org.as_admin()).status_code == 404
    assert org.client.get(URL, headers=org.as_admin()).json()["items"] == []
    assert other.client.get(f"{URL}/{theirs}", headers=other.as_admin()).status_code == 200


def test_delete(org: Org) -> None:
    created = create(org).json()
    path = f"{URL}/{created['id']}"
    assert org.client.delete(path, headers=org.as_admin()).status_code == 204
    assert org.client.get(path, headers=org.as_admin()).status_code == 404
    assert org.client.delete(path, headers=org.as_admin()).status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {**GOOD, "events": ["deal.stolen"]},
        {**GOOD, "events": []},
        {**GOOD, "events": "deal.won"},
        {"url": GOOD["url"]},
        {**GOOD, "url": "ftp://hooks.acme.example/x"},
        {**GOOD, "url": "https://hooks.acme.example/" + "a" * 2048},
        {**GOOD, "url": "not a url"},
        # http only to a host the operator allowed (127.0.0.1 in the tests)
        {**GOOD, "url": "http://hooks.acme.example/tally"},
        {**GOOD, "url": "https://user:pw@hooks.acme.example/tally"},
        {**GOOD, "url": "https://hooks.acme.example/tally#part"},
        {**GOOD, "url": "https://hooks.acme.example:99999/tally"},
        {**GOOD, "url": "https:///tally"},
    ],
)
def test_bad_bodies_are_422(org: Org, body: dict[str, Any]) -> None:
    response = create(org, body)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["code"] == "validation_error"


@pytest.mark.parametrize(
    "url",
    ["https://10.1.2.3/tally", "https://[::1]:8443/tally", "https://169.254.169.254/latest"],
)
def test_private_addresses_are_refused_unless_allowed(org: Org, url: str) -> None:
    response = create(org, {**GOOD, "url": url})
    assert response.status_code == 403, response.text
    assert "TALLY_ALLOWED_PRIVATE_HOSTS" in response.json()["error"]["message"]
    # the tests allow 127.0.0.1/32, over http too
    allowed = create(org, {**GOOD, "url": "http://127.0.0.1:8080/tally"})
    assert allowed.status_code == 201, allowed.text


def test_at_most_so_many_webhooks_per_organization(org: Org) -> None:
    for _ in range(MAX_WEBHOOKS):
        assert create(org).status_code == 201
    refused = create(org)
    assert refused.status_code == 409, refused.text
    page = org.client.get(URL, params={"limit": 7}, headers=org.as_admin()).json()
    seen = [w["id"] for w in page["items"]]
    while page["next_cursor"]:
        params = {"limit": 7, "cursor": page["next_cursor"]}
        page = org.client.get(URL, params=params, headers=org.as_admin()).json()
        seen += [w["id"] for w in page["items"]]
    assert len(seen) == MAX_WEBHOOKS == len(set(seen)) and seen == sorted(seen)
