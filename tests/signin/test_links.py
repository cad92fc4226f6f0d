"""Sign-in links for the dashboard: an admin makes one, it gives a new key of its user once,
before it expires, never across organizations; failures are rate limited; sign-out revokes
only the keys links gave."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from app.config import settings
from app.db import session_scope
from app.signin.models import SignInLink
from tests.api import Org, auth, make_org


@pytest.fixture
def acme(client: TestClient) -> Org:
    org = make_org(client)
    org.user("ana@acme.example")
    org.user("mia@acme.example", role="manager")
    return org


def link(org: Org, email: str, headers: dict[str, str] | None = None) -> Any:
    user_id = org.users[email]["id"]
    return org.client.post(
        f"/api/v1/users/{user_id}/sign-in-links", headers=headers or org.as_admin()
    )


def token_of(url: str) -> str:
    base, token = url.split("#sign-in=")
    assert base.endswith("/")
    return token


def sign_in(client: TestClient, token: str) -> Any:
    return client.post("/api/v1/sign-in", json={"token": token})


def test_a_link_signs_its_user_in_once_with_a_new_key(acme: Org) -> None:
    before = datetime.now(UTC)
    made = link(acme, "ana@acme.example")
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["url"].startswith("http://testserver/#sign-in=")
    expires = datetime.fromisoformat(body["expires_at"])
    assert before + timedelta(hours=24) <= expires <= datetime.now(UTC) + timedelta(hours=24)
    token = token_of(body["url"])
    with session_scope() as session:  # only the hash is stored
        hashes = list(session.scalars(select(SignInLink.token_hash)))
    assert len(hashes) == 1 and token not in hashes[0]

    first = sign_in(acme.client, token)
    assert first.status_code == 200, first.text
    key, user = first.json()["api_key"], first.json()["user"]
    assert user["email"] == "ana@acme.example" and user["role"] == "rep"
    assert key != acme.keys["ana@acme.example"]
    me = acme.client.get("/api/v1/users/me", headers=auth(key))
    assert me.status_code == 200 and me.json()["id"] == acme.users["ana@acme.example"]["id"]

    again = sign_in(acme.client, token)
    assert again.status_code == 401
    assert again.json()["error"]["code"] == "unauthorized"
    assert sign_in(acme.client, token[:-1] + ("A" if token[-1] != "A" else "B")).status_code == 401


def test_an_expired_link_is_refused(acme: Org) -> None:
    token = token_of(link(acme, "ana@acme.example").json()["url"])
    with session_scope() as session:
        session.execute(
            update(SignInLink).values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
    refused = sign_in(acme.client, token)
    assert refused.status_code == 401, refused.text
    # a fresh one still works
    assert sign_in(acme.client, token_of(link(acme, "ana@acme.example").json()["url"])).is_success


def test_only_an_admin_of_the_users_organization_makes_links(acme: Org) -> None:
    other = make_org(acme.client, name="Umbrella", domains=("umbrella.example",))
    other.user("una@umbrella.example")
    # another organization's admin: the user is not found
    foreign = link(acme, "ana@acme.example", headers=other.as_admin())
    assert foreign.status_code == 404, foreign.text
    assert link(other, "una@umbrella.example", headers=acme.as_admin()).status_code == 404
    # a manager or a rep may not, not even for themself
    for who in ("mia@acme.example", "ana@acme.example"):
        refused = link(acme, who, headers=acme.as_user(who))
        assert refused.status_code == 403, refused.text
    with session_scope() as session:
        assert session.scalars(select(SignInLink)).all() == []


def test_a_deactivated_user_gets_no_link_and_their_links_stop_working(acme: Org) -> None:
    token = token_of(link(acme, "ana@acme.example").json()["url"])
    ana = acme.users["ana@acme.example"]["id"]
    assert acme.client.delete(f"/api/v1/users/{ana}", headers=acme.as_admin()).status_code == 204
    assert sign_in(acme.client, token).status_code == 401
    assert link(acme, "ana@acme.example").status_code == 409


def test_the_public_url_is_used_when_the_operator_set_it(
    acme: Org, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "public_url", "https://tally.acme.example/")
    url = link(acme, "ana@acme.example").json()["url"]
    assert url.startswith("https://tally.acme.example/#sign-in=")
    # set back to the default (as a monkeypatch undone leaves it): the request's own address
    monkeypatch.undo()
    assert link(acme, "ana@acme.example").json()["url"].startswith("http://testserver/#sign-in=")


def test_failed_sign_ins_are_rate_limited(acme: Org, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(settings, "rate_limit_failures_per_address", 5)
    monkeypatch.setattr(settings, "rate_limit_window_seconds", 3600)
    answers = [sign_in(acme.client, f"guess{i}").status_code for i in range(6)]
    assert answers == [401] * 5 + [429]
    limited = sign_in(acme.client, "guess-again")
    assert limited.status_code == 429
    assert limited.json()["error"]["code"] == "rate_limited"
    assert int(limited.headers["Retry-After"]) >= 1
    # a valid link still works: only failures are refused
    assert sign_in(acme.client, token_of(link(acme, "ana@acme.example").json()["url"])).is_success


def test_bad_tokens_are_validation_errors_not_server_errors(acme: Org) -> None:
    for body in ({}, {"token": ""}, {"token": "x" * 101}, {"token": "a b"}, {"token": 5}):
        answer = acme.client.post("/api/v1/sign-in", json=body)
        assert answer.status_code == 422, (body, answer.text)


def test_sign_out_revokes_the_key_a_link_gave_and_no_other(acme: Org) -> None:
    token = token_of(link(acme, "ana@acme.example").json()["url"])
    key = sign_in(acme.client, token).json()["api_key"]
    # a key the user had before (pasted into the dashboard, used by scripts) stays
    pasted = acme.client.post("/api/v1/sign-out", headers=acme.as_user("ana@acme.example"))
    assert pasted.status_code == 409, pasted.text
    assert acme.client.get("/api/v1/users/me", headers=acme.as_user("ana@acme.example")).is_success
    out = acme.client.post("/api/v1/sign-out", headers=auth(key))
    assert out.status_code == 204, out.text
    assert acme.client.get("/api/v1/users/me", headers=auth(key)).status_code == 401
    assert acme.client.post("/api/v1/sign-out", headers=auth(key)).status_code == 401
    with session_scope() as session:
        used = session.scalars(select(SignInLink)).one()
        assert used.used_at is not None and used.api_key_id is not None
