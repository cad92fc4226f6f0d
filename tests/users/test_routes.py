"""Organizations, teams, users and API keys through the API, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import inspect, select, text

from app.db import Database, session_scope
from app.models import ApiKey, Organization
from tests.api import ADMIN, Org, auth, make_org

ORG = {"name": "Acme", "domains": ["acme.example"], "timezone": "Europe/Brussels"}


def is_error(response: Any, status: int, code: str | None = None) -> None:
    """The status and the documented error body `{"error": {"code", "message"}}`."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message"}, body
    assert isinstance(body["error"]["code"], str) and body["error"]["code"]
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code, body


@pytest.fixture
def lenient(database: Database) -> Iterator[TestClient]:
    """A client that answers a server error with a 500 instead of raising it in the test."""
    from app.main import create_app

    with TestClient(create_app(), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def org(client: TestClient) -> Org:
    org = make_org(client)
    mia = org.user("mia@acme.example", role="manager")
    team = org.team("East", manager_id=mia["id"])
    org.user("ana@acme.example", team_id=team["id"], aliases=["a.silva@acme.example"])
    org.user("bob@acme.example")
    return org


# --- POST /orgs -----------------------------------------------------------------------------


def test_creating_an_org_needs_the_instance_admin_token(client: TestClient) -> None:
    for headers in (
        {},
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": "Bearer test-admin-token-and-more"},
        {"Authorization": "Bearer "},
        {"Authorization": "Basic dGVzdC1hZG1pbi10b2tlbg=="},
        {"Authorization": "test-admin-token"},
    ):
        response = client.post("/api/v1/orgs", json=ORG, headers=headers)
        is_error(response, 401, "unauthorized")
    with session_scope() as session:
        assert session.scalars(select(Organization.id)).all() == []


def test_an_org_admin_key_cannot_create_an_org(client: TestClient) -> None:
    org = make_org(client)
    response = client.post("/api/v1/orgs", json={**ORG, "name": "Rogue"}, headers=org.as_admin())
    assert response.status_code in (401, 403), response.text
    is_error(response, response.status_code)
    with session_scope() as session:
        assert session.scalars(select(Organization.name)).all() == ["Acme"]


def test_creating_an_org_answers_the_documented_fields_and_a_working_admin_key(
    client: TestClient,
) -> None:
    response = client.post(
        "/api/v1/orgs",
        json={**ORG, "domains": ["Acme.Example", "acme.example"], "week_start": "sunday"},
        headers=ADMIN,
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == {
        "id",
        "name",
        "domains",
        "timezone",
        "week_start",
        "fiscal_year_start_month",
        "currency",
        "admin_api_key",
    }
    assert body["name"] == "Acme" and body["domains"] == ["acme.example"]
    assert body["timezone"] == "Europe/Brussels" and body["week_start"] == "sunday"
    assert body["fiscal_year_start_month"] == 1 and isinstance(body["id"], int)
    me = client.get("/api/v1/users/me", headers=auth(body["admin_api_key"]))
    assert me.status_code == 200 and me.json()["role"] == "admin"
    assert me.json()["org_id"] == body["id"]


def test_org_defaults(client: TestClient) -> None:
    body = client.post("/api/v1/orgs", json=ORG, headers=ADMIN).json()
    assert (body["week_start"], body["fiscal_year_start_month"]) == ("monday", 1)


BAD_ORGS = [
    {"timezone": "Mars/Olympus_Mons"},
    {"timezone": ""},
    {"timezone": "../../etc/passwd"},
    {"timezone": "europe/brussels"},
    {"timezone": 3},
    {"timezone": None},
    {"week_start": "someday"},
    {"week_start": "Monday "},
    {"week_start": 1},
    {"fiscal_year_start_month": 0},
    {"fiscal_year_start_month": 13},
    {"fiscal_year_start_month": -1},
    {"fiscal_year_start_month": "march"},
    {"fiscal_year_start_month": 1.5},
    {"domains": []},
    {"domains": ["not a domain"]},
    {"domains": ["acme"]},
    {"domains": ["ana@acme.example"]},
    {"domains": ["-acme.example"]},
    {"domains": "acme.example"},
    {"domains": [None]},
    {"name": ""},
    {"name": None},
]


def test_bad_org_settings_get_a_422_with_the_error_body(client: TestClient) -> None:
    for change in BAD_ORGS:
        response = client.post("/api/v1/orgs", json={**ORG, **change}, headers=ADMIN)
        assert response.status_code == 422, (change, response.text)
        is_error(response, 422, "validation_error")
    with session_scope() as session:
        assert session.scalars(select(Organization.id)).all() == []


def test_a_host_dependent_zone_is_not_an_org_time_zone(client: TestClient) -> None:
    # "localtime" names whatever zone the server happens to run in, not an IANA zone
    response = client.post("/api/v1/orgs", json={**ORG, "timezone": "localtime"}, headers=ADMIN)
    is_error(response, 422, "validation_error")


def test_an_overlong_zone_name_is_a_422_not_a_server_error(client: TestClient) -> None:
    # the zone database is read from files: a name longer than a file name once made an OSError
    for zone in ("x" * 5000, "Europe/" + "x" * 300):
        response = client.post("/api/v1/orgs", json={**ORG, "timezone": zone}, headers=ADMIN)
        is_error(response, 422, "validation_error")


def test_a_missing_org_field_is_a_422_naming_it(client: TestClient) -> None:
    for missing in ("name", "domains", "timezone"):
        body = {k: v for k, v in ORG.items() if k != missing}
        response = client.post("/api/v1/orgs", json=body, headers=ADMIN)
        is_error(response, 422, "validation_error")
        assert missing in response.json()["error"]["message"]


def test_malformed_json_is_a_400(client: TestClient) -> None:
    for body in ('{"name": "Acme",', "not json", "{'name': 'Acme'}", "\x00", '{"name": "Acme"}}'):
        response = client.post(
            "/api/v1/orgs",
            content=body,
            headers={**ADMIN, "Content-Type": "application/json"},
        )
        assert response.status_code == 400, (body, response.text)
        is_error(response, 400, "bad_request")


def test_malformed_json_is_a_400_on_other_routes_too(org: Org) -> None:
    for path in ("/api/v1/users", "/api/v1/teams", "/api/v1/connections"):
        response = org.client.post(
            path, content="{", headers={**org.as_admin(), "Content-Type": "application/json"}
        )
        is_error(response, 400, "bad_request")


# --- teams and users --------------------------------------------------------------------------


def test_an_admin_creates_a_team_with_the_documented_fields(org: Org) -> None:
    mia = org.users["mia@acme.example"]["id"]
    response = org.client.post(
        "/api/v1/teams", json={"name": "West", "manager_id": mia}, headers=org.as_admin()
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == {"id", "name", "manager_id"}
    assert body["name"] == "West" and body["manager_id"] == mia
    bare = org.client.post("/api/v1/teams", json={"name": "North"}, headers=org.as_admin())
    assert bare.status_code == 201 and bare.json()["manager_id"] is None


@pytest.mark.parametrize("who", ["mia@acme.example", "ana@acme.example"])
def test_only_an_admin_creates_teams_and_users(org: Org, who: str) -> None:
    headers = org.as_user(who)
    is_error(
        org.client.post("/api/v1/teams", json={"name": "Rogue"}, headers=headers), 403, "forbidden"
    )
    response = org.client.post(
        "/api/v1/users",
        json={"email": "eve@acme.example", "name": "Eve", "role": "admin"},
        headers=headers,
    )
    is_error(response, 403, "forbidden")
    admin = org.client.get("/api/v1/users", headers=org.as_admin()).json()
    assert "eve@acme.example" not in {u["email"] for u in admin}


def test_a_team_needs_a_manager_of_the_same_org(client: TestClient, org: Org) -> None:
    other = make_org(client, name="Globex", domains=("globex.example",))
    stranger = other.user("sam@globex.example", role="manager")["id"]
    response = org.client.post(
        "/api/v1/teams", json={"name": "West", "manager_id": stranger}, headers=org.as_admin()
    )
    is_error(response, 404, "not_found")


def test_creating_a_user_answers_the_documented_fields_with_lower_cased_aliases(org: Org) -> None:
    team = org.team("West")
    response = org.client.post(
        "/api/v1/users",
        json={
            "email": "Dan.Smith@ACME.example",
            "name": "Dan Smith",
            "role": "rep",
            "team_id": team["id"],
            "aliases": ["D.Smith@Acme.Example", "SALES-DAN@acme.example"],
        },
        headers=org.as_admin(),
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert {"id", "email", "name", "role", "team_id", "aliases", "api_key"} <= set(body)
    assert body["email"] == "dan.smith@acme.example"
    assert sorted(body["aliases"]) == ["d.smith@acme.example", "sales-dan@acme.example"]
    assert (body["name"], body["role"], body["team_id"]) == ("Dan Smith", "rep", team["id"])
    me = org.client.get("/api/v1/users/me", headers=auth(body["api_key"]))
    assert me.status_code == 200 and me.json()["id"] == body["id"]


DUPLICATES = [
    {"email": "bob@acme.example"},  # another user's primary address
    {"email": "BOB@Acme.Example"},  # the same, differing in case
    {"email": "a.silva@acme.example"},  # another user's alias
    {"email": "A.Silva@ACME.example"},  # the same, differing in case
    {"email": "new@acme.example", "aliases": ["ana@acme.example"]},  # alias = a primary
    {"email": "new@acme.example", "aliases": ["Ana@ACME.example"]},
    {"email": "new@acme.example", "aliases": ["a.silva@acme.example"]},  # alias = an alias
    {"email": "new@acme.example", "aliases": ["A.SILVA@acme.example"]},
]


def test_an_address_that_already_belongs_to_a_user_is_a_409(lenient: TestClient) -> None:
    org = make_org(lenient)
    org.user("ana@acme.example", aliases=["a.silva@acme.example"])
    org.user("bob@acme.example")
    wrong = []
    for user in DUPLICATES:
        response = lenient.post(
            "/api/v1/users", json={"name": "New", "role": "rep", **user}, headers=org.as_admin()
        )
        if response.status_code != 409:
            wrong.append((user, response.status_code, response.text))
        else:
            is_error(response, 409, "conflict")
    users = lenient.get("/api/v1/users", headers=org.as_admin()).json()
    assert len(users) == 3  # admin, ana, bob: nothing half-created
    assert not wrong, "\n".join(map(repr, wrong))


def test_the_same_address_in_two_orgs_is_fine(client: TestClient, org: Org) -> None:
    other = make_org(client, name="Other", domains=("other.example",))
    assert other.user("ana@acme.example")["email"] == "ana@acme.example"


def test_bad_user_fields_are_a_422(org: Org) -> None:
    for change in (
        {"email": "not-an-address"},
        {"email": ""},
        {"email": "two@@acme.example"},
        {"role": "owner"},
        {"role": None},
        {"name": ""},
        {"aliases": ["nope"]},
        {"aliases": "x@acme.example"},
        {"team_id": "east"},
    ):
        user = {"email": "new@acme.example", "name": "New", "role": "rep", **change}
        response = org.client.post("/api/v1/users", json=user, headers=org.as_admin())
        assert response.status_code == 422, (change, response.text)
        is_error(response, 422, "validation_error")


def test_a_user_in_a_team_of_another_org_is_a_404(client: TestClient, org: Org) -> None:
    other = make_org(client, name="Other", domains=("other.example",))
    foreign = other.team("Theirs")["id"]
    response = org.client.post(
        "/api/v1/users",
        json={"email": "new@acme.example", "name": "New", "role": "rep", "team_id": foreign},
        headers=org.as_admin(),
    )
    is_error(response, 404, "not_found")


def test_users_me_for_each_role(org: Org) -> None:
    for who, role in (
        ("admin", "admin"),
        ("mia@acme.example", "manager"),
        ("ana@acme.example", "rep"),
        ("bob@acme.example", "rep"),
    ):
        headers = org.as_admin() if who == "admin" else org.as_user(who)
        response = org.client.get("/api/v1/users/me", headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == {"id", "email", "name", "role", "team_id", "org_id"}
        assert body["role"] == role and body["org_id"] == org.id
        if who == "admin":
            assert body["email"] == "admin@acme.example" and body["team_id"] is None
        else:
            assert body["email"] == who and body["id"] == org.users[who]["id"]
            assert body["team_id"] == org.users[who]["team_id"]


# --- API keys ---------------------------------------------------------------------------------


def test_api_keys_are_stored_only_as_their_sha256(org: Org, database: Database) -> None:
    key = org.keys["ana@acme.example"]
    assert org.client.get("/api/v1/users/me", headers=auth(key)).status_code == 200
    digest = hashlib.sha256(key.encode()).hexdigest()
    with session_scope() as session:
        hashes = set(session.scalars(select(ApiKey.key_hash)))
        assert digest in hashes and key not in hashes
    # No column of any table holds the key, nor the admin key.
    with database.engine.connect() as connection:
        for table in inspect(connection).get_table_names():
            for row in connection.execute(text(f'SELECT * FROM "{table}"')):
                for value in row:
                    shown = (
                        value.decode(errors="ignore") if isinstance(value, bytes) else str(value)
                    )
                    assert key not in shown, table
                    assert org.admin_key not in shown, table


def test_a_made_up_or_missing_key_is_a_401(org: Org) -> None:
    for header in ("Bearer tly_made-up-key", "Bearer ", "Bearer", "Token whatever", None):
        headers = {"Authorization": header} if header is not None else {}
        for path in ("/api/v1/users/me", "/api/v1/activities", "/api/v1/contacts"):
            is_error(org.client.get(path, headers=headers), 401, "unauthorized")


def test_a_key_is_shown_only_when_it_is_made(org: Org) -> None:
    ana = org.users["ana@acme.example"]["id"]
    keys = [org.admin_key, *org.keys.values()]
    digests = [hashlib.sha256(k.encode()).hexdigest() for k in keys]
    for who in (org.as_admin(), org.as_user("ana@acme.example")):
        for path in ("/api/v1/users/me", "/api/v1/users", f"/api/v1/users/{ana}", "/api/v1/org"):
            response = org.client.get(path, headers=who)
            assert response.status_code == 200, response.text
            assert "api_key" not in response.text
            for secret in (*keys, *digests):
                assert secret not in response.text, path


def test_the_hash_of_a_key_is_not_a_key(org: Org) -> None:
    key = org.keys["ana@acme.example"]
    digest = hashlib.sha256(key.encode()).hexdigest()
    is_error(org.client.get("/api/v1/users/me", headers=auth(digest)), 401, "unauthorized")


def test_the_instance_admin_token_may_do_nothing_but_create_orgs(org: Org) -> None:
    ana = org.users["ana@acme.example"]["id"]
    for method, path in (
        ("GET", "/api/v1/users/me"),
        ("GET", "/api/v1/users"),
        ("GET", f"/api/v1/users/{ana}"),
        ("POST", f"/api/v1/users/{ana}/api-keys"),
        ("POST", "/api/v1/teams"),
        ("POST", "/api/v1/users"),
        ("GET", "/api/v1/activities"),
        ("GET", "/api/v1/contacts"),
        ("GET", "/api/v1/companies"),
        ("GET", "/api/v1/connections"),
        ("GET", "/api/v1/quotas"),
    ):
        body = {"name": "x", "email": "x@acme.example", "role": "rep"} if method == "POST" else None
        response = org.client.request(method, path, json=body, headers=ADMIN)
        assert response.status_code == 403, (method, path, response.text)
        is_error(response, 403, "forbidden")
    with session_scope() as session:
        assert len(session.scalars(select(ApiKey)).all()) == 4  # admin, mia, ana, bob


def test_issuing_another_key(org: Org) -> None:
    ana = org.users["ana@acme.example"]["id"]
    old = org.keys["ana@acme.example"]
    # the user for themself
    mine = org.client.post(f"/api/v1/users/{ana}/api-keys", headers=auth(old))
    assert mine.status_code == 201, mine.text
    assert set(mine.json()) == {"api_key"}
    new = mine.json()["api_key"]
    assert new != old
    # an admin for anyone
    theirs = org.client.post(f"/api/v1/users/{ana}/api-keys", headers=org.as_admin())
    assert theirs.status_code == 201 and theirs.json()["api_key"] not in (old, new)
    for key in (old, new, theirs.json()["api_key"]):
        me = org.client.get("/api/v1/users/me", headers=auth(key))
        assert me.status_code == 200 and me.json()["id"] == ana
    with session_scope() as session:
        count = len(session.scalars(select(ApiKey).where(ApiKey.user_id == ana)).all())
    assert count == 3


def test_a_manager_or_rep_cannot_issue_keys_for_someone_else(org: Org) -> None:
    ana = org.users["ana@acme.example"]["id"]
    bob = org.users["bob@acme.example"]["id"]
    mia = org.as_user("mia@acme.example")
    # a manager for a member of their team: role forbids
    is_error(org.client.post(f"/api/v1/users/{ana}/api-keys", headers=mia), 403, "forbidden")
    # a rep for another rep
    response = org.client.post(
        f"/api/v1/users/{bob}/api-keys", headers=org.as_user("ana@acme.example")
    )
    assert response.status_code in (403, 404), response.text
    is_error(response, response.status_code)
    # nobody got a key
    with session_scope() as session:
        count = len(session.scalars(select(ApiKey).where(ApiKey.user_id.in_([ana, bob]))).all())
    assert count == 2


def test_issuing_a_key_for_a_user_of_another_org_is_a_404(client: TestClient, org: Org) -> None:
    other = make_org(client, name="Other", domains=("other.example",))
    stranger = other.user("sam@other.example")["id"]
    response = org.client.post(f"/api/v1/users/{stranger}/api-keys", headers=org.as_admin())
    is_error(response, 404, "not_found")
    is_error(
        org.client.post("/api/v1/users/999999/api-keys", headers=org.as_admin()), 404, "not_found"
    )
