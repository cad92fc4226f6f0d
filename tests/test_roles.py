"""Who sees what: reps their own data, managers their teams, admins their org, nobody another org.

Acme: managers Mia (team East: reps Ana and Abe) and Max (team West: rep Bob), and Cleo,
a rep in no team. Umbrella, another organization, knows a contact with the same address.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.alerts.evaluate import evaluate as evaluate_alerts
from app.alerts.models import Alert
from app.contacts.models import Company, Contact
from app.db import session_scope
from app.models import Connection
from tests.api import Org, make_org
from tests.factories import message
from tests.world import World

WEEK = {"metric": "emails_sent", "period": "week", "start": "2026-03-02", "end": "2026-03-08"}
QUOTA = {"metric": "emails_sent", "period": "month", "target": 10, "effective_from": "2026-01-01"}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@dataclass
class Tenant:
    org: Org
    domain: str
    ids: dict[str, int] = field(default_factory=dict)  # users and teams by short name
    connections: dict[str, int] = field(default_factory=dict)  # by user short name
    contacts: dict[str, int] = field(default_factory=dict)  # by address
    companies: dict[str, int] = field(default_factory=dict)  # by domain
    quotas: dict[str, int] = field(default_factory=dict)  # by user short name

    def headers(self, who: str) -> dict[str, str]:
        return self.org.as_admin() if who == "admin" else self.org.as_user(f"{who}@{self.domain}")

    def get(self, who: str, path: str, **params: Any) -> Any:
        return self.org.client.get(f"/api/v1{path}", params=params, headers=self.headers(who))

    def ok(self, who: str, path: str, **params: Any) -> Any:
        response = self.get(who, path, **params)
        assert response.status_code == 200, (who, path, params, response.text)
        return response.json()

    def items(self, who: str, path: str, **params: Any) -> list[dict[str, Any]]:
        body = self.ok(who, path, **{"limit": 1000, **params})
        assert body["next_cursor"] is None
        items: list[dict[str, Any]] = body["items"]
        return items

    def hidden(self, who: str, path: str, **params: Any) -> None:
        response = self.get(who, path, **params)
        assert response.status_code == 404, (who, path, params, response.text)
        assert response.json()["error"]["code"] == "not_found"

    def connect(self, *names: str) -> World:
        with session_scope() as session:
            for name in names:
                row = Connection(
                    org_id=self.org.id,
                    user_id=self.ids[name],
                    provider="imap",
                    config={"host": f"imap.{self.domain}"},
                    cursors={},
                )
                session.add(row)
                session.flush()
                self.connections[name] = row.id
        return World(self.org.id, {n: self.ids[n] for n in names}, dict(self.connections))

    def load_contacts(self) -> None:
        with session_scope() as session:
            for contact in session.scalars(select(Contact).where(Contact.org_id == self.org.id)):
                self.contacts[contact.email] = contact.id
            for company in session.scalars(select(Company).where(Company.org_id == self.org.id)):
                self.companies[company.domain] = company.id

    def quota_for(self, name: str) -> None:
        response = self.org.client.post(
            "/api/v1/quotas",
            json={**QUOTA, "user_id": self.ids[name]},
            headers=self.headers("admin"),
        )
        assert response.status_code == 201, response.text
        self.quotas[name] = response.json()["id"]


def sent(sender: str, to: str, when: str, subject: str) -> Any:
    return message(sender, (to,), folder_role="sent", date=at(when), subject=subject)


@pytest.fixture
def acme(client: TestClient) -> Tenant:
    acme = Tenant(make_org(client), "acme.example")
    org = acme.org
    for manager in ("mia", "max"):
        acme.ids[manager] = org.user(f"{manager}@acme.example", role="manager")["id"]
    acme.ids["east"] = org.team("East", manager_id=acme.ids["mia"])["id"]
    acme.ids["west"] = org.team("West", manager_id=acme.ids["max"])["id"]
    for rep, team in (("ana", "east"), ("abe", "east"), ("bob", "west"), ("cleo", None)):
        team_id = acme.ids[team] if team else None
        acme.ids[rep] = org.user(f"{rep}@acme.example", team_id=team_id)["id"]
    acme.ids["admin"] = org.client.get("/api/v1/users/me", headers=org.as_admin()).json()["id"]
    world = acme.connect("ana", "abe", "bob")
    world.ingest(
        "ana",
        sent("ana@acme.example", "Joe <joe@northwind.co.uk>", "2026-03-02T09:00", "ana-joe"),
        message(
            "Sue <sue@initech.example>",
            ("ana@acme.example",),
            date=at("2026-03-03T09:00"),
            subject="sue-ana",
        ),
    )
    world.ingest("abe", sent("abe@acme.example", "joe@northwind.co.uk", "2026-03-04T09:00", "abe"))
    world.ingest(
        "bob",
        sent("bob@acme.example", "Zed <zed@globex.example>", "2026-03-05T09:00", "bob-zed"),
        sent("bob@acme.example", "joe@northwind.co.uk", "2026-03-06T09:00", "bob-joe"),
    )
    acme.load_contacts()
    for name in ("ana", "bob"):
        acme.quota_for(name)
    return acme


@pytest.fixture
def umbrella(client: TestClient) -> Tenant:
    other = Tenant(
        make_org(client, name="Umbrella", domains=("umbrella.example",)), "umbrella.example"
    )
    other.ids["una"] = other.org.user("una@umbrella.example")["id"]
    other.ids["lab"] = other.org.team("Lab", manager_id=None)["id"]
    world = other.connect("una")
    world.ingest(
        "una",
        sent("una@umbrella.example", "Joe <joe@northwind.co.uk>", "2026-03-02T10:00", "una-joe"),
        sent("una@umbrella.example", "vic@vendor.example", "2026-03-03T10:00", "una-vic"),
    )
    other.load_contacts()
    other.quota_for("una")
    other.ids["deal"] = other.org.deal(other.ids["una"])["id"]
    hook = {"url": "https://hooks.umbrella.example/tally", "events": ["deal.won"]}
    created = other.org.client.post("/api/v1/webhooks", json=hook, headers=other.headers("admin"))
    assert created.status_code == 201, created.text
    other.ids["webhook"] = created.json()["id"]
    with session_scope() as session:  # 20 March: 2 of 10 e-mails, 61% of the month gone
        evaluate_alerts(session, other.org.id, now=at("2026-03-20T12:00"))
        other.ids["alert"] = session.scalars(
            select(Alert.id).where(Alert.org_id == other.org.id)
        ).one()
    return other


def user_ids(items: list[dict[str, Any]]) -> set[int]:
    return {i["user_id"] for i in items}


# --- a rep ----------------------------------------------------------------------------------


def test_a_rep_reads_only_their_own_activities(acme: Tenant) -> None:
    ids = acme.ids
    mine = acme.items("ana", "/activities")
    assert {i["subject"] for i in mine} == {"ana-joe", "sue-ana"}
    assert user_ids(mine) == {ids["ana"]}
    assert user_ids(acme.items("ana", "/activities", user_id=ids["ana"])) == {ids["ana"]}
    for other in ("bob", "abe", "mia", "admin"):
        acme.hidden("ana", "/activities", user_id=ids[other])
    # a shared contact shows only the rep's own activities with them
    with_joe = acme.items("ana", "/activities", contact_id=acme.contacts["joe@northwind.co.uk"])
    assert [i["subject"] for i in with_joe] == ["ana-joe"]
    assert acme.items("ana", "/activities", contact_id=acme.contacts["zed@globex.example"]) == []
    assert acme.items("ana", "/activities", company_id=acme.companies["globex.example"]) == []
    assert acme.items("cleo", "/activities") == []


def test_a_rep_sees_only_contacts_and_companies_reached_through_their_own_mail(
    acme: Tenant,
) -> None:
    contacts = {c["emails"][0] for c in acme.items("ana", "/contacts")}
    assert contacts == {"joe@northwind.co.uk", "sue@initech.example"}
    acme.hidden("ana", f"/contacts/{acme.contacts['zed@globex.example']}")
    assert acme.ok("ana", f"/contacts/{acme.contacts['joe@northwind.co.uk']}")["name"] == "Joe"
    assert acme.items("ana", "/contacts", email="zed@globex.example") == []
    assert acme.items("ana", "/contacts", q="zed") == []
    assert acme.items("ana", "/contacts", company_id=acme.companies["globex.example"]) == []
    companies = {c["domains"][0]: c for c in acme.items("ana", "/companies")}
    assert set(companies) == {"northwind.co.uk", "initech.example"}
    assert acme.items("ana", "/companies", domain="globex.example") == []
    acme.hidden("ana", f"/companies/{acme.companies['globex.example']}")
    # Cleo reached nobody
    assert acme.items("cleo", "/contacts") == [] and acme.items("cleo", "/companies") == []
    acme.hidden("cleo", f"/contacts/{acme.contacts['joe@northwind.co.uk']}")
    acme.hidden("cleo", f"/companies/{acme.companies['northwind.co.uk']}")


def test_a_rep_cannot_see_another_reps_connections_metrics_users_or_quotas(acme: Tenant) -> None:
    ids, bob_conn = acme.ids, acme.connections["bob"]
    acme.hidden("ana", f"/connections/{bob_conn}")
    acme.hidden("ana", "/connections", user_id=ids["bob"])
    assert [c["id"] for c in acme.items("ana", "/connections")] == [acme.connections["ana"]]
    acme.hidden("ana", "/metrics", **WEEK, user_id=ids["bob"])
    acme.hidden("ana", "/metrics", **WEEK, team_id=ids["west"])
    mine = acme.ok("ana", "/metrics", **WEEK, user_id=ids["ana"])
    assert [p["value"] for p in mine["series"]] == [1]
    acme.hidden("ana", f"/users/{ids['bob']}")
    assert [u["id"] for u in acme.ok("ana", "/users")] == [ids["ana"]]
    acme.hidden("ana", f"/quotas/{acme.quotas['bob']}")
    acme.hidden("ana", "/quotas", user_id=ids["bob"])
    assert [q["id"] for q in acme.items("ana", "/quotas")] == [acme.quotas["ana"]]
    acme.hidden("ana", "/quotas/attainment", user_id=ids["bob"], date="2026-03-05")


def test_a_rep_cannot_act_on_another_reps_things(acme: Tenant) -> None:
    client, ana = acme.org.client, acme.headers("ana")
    bob_conn = acme.connections["bob"]
    assert client.post(f"/api/v1/connections/{bob_conn}/sync", headers=ana).status_code == 404
    assert client.delete(f"/api/v1/connections/{bob_conn}", headers=ana).status_code == 404
    zed = acme.contacts["zed@globex.example"]
    patched = client.patch(f"/api/v1/contacts/{zed}", json={"title": "x"}, headers=ana)
    assert patched.status_code == 404, patched.text
    assert acme.ok("admin", f"/contacts/{zed}")["title"] is None
    assert acme.ok("admin", f"/connections/{bob_conn}")["id"] == bob_conn


# --- a manager ------------------------------------------------------------------------------


def test_a_manager_sees_their_teams_members_and_no_one_else(acme: Tenant) -> None:
    ids = acme.ids
    assert user_ids(acme.items("mia", "/activities")) == {ids["ana"], ids["abe"]}
    assert user_ids(acme.items("mia", "/activities", team_id=ids["east"])) == {
        ids["ana"],
        ids["abe"],
    }
    assert user_ids(acme.items("mia", "/activities", user_id=ids["abe"])) == {ids["abe"]}
    for outsider in ("bob", "cleo", "max"):
        acme.hidden("mia", "/activities", user_id=ids[outsider])
        acme.hidden("mia", "/metrics", **WEEK, user_id=ids[outsider])
        acme.hidden("mia", f"/users/{ids[outsider]}")
    acme.hidden("mia", "/activities", team_id=ids["west"])
    acme.hidden("mia", "/metrics", **WEEK, team_id=ids["west"])
    team = acme.ok("mia", "/metrics", **WEEK, team_id=ids["east"])
    assert [p["value"] for p in team["series"]] == [2]
    assert acme.ok("mia", "/metrics", **WEEK, user_id=ids["abe"])["series"][0]["value"] == 1
    assert {u["id"] for u in acme.ok("mia", "/users")} == {ids["mia"], ids["ana"], ids["abe"]}
    assert [t["id"] for t in acme.ok("mia", "/teams")] == [ids["east"]]
    contacts = {c["emails"][0] for c in acme.items("mia", "/contacts")}
    assert contacts == {"joe@northwind.co.uk", "sue@initech.example"}
    acme.hidden("mia", f"/contacts/{acme.contacts['zed@globex.example']}")
    assert {c["domains"][0] for c in acme.items("mia", "/companies")} == {
        "northwind.co.uk",
        "initech.example",
    }
    acme.hidden("mia", f"/companies/{acme.companies['globex.example']}")
    assert {c["id"] for c in acme.items("mia", "/connections")} == {
        acme.connections["ana"],
        acme.connections["abe"],
    }
    acme.hidden("mia", f"/connections/{acme.connections['bob']}")
    assert acme.ok("mia", f"/connections/{acme.connections['ana']}")["user_id"] == ids["ana"]
    assert acme.ok("mia", f"/quotas/{acme.quotas['ana']}")["user_id"] == ids["ana"]
    acme.hidden("mia", f"/quotas/{acme.quotas['bob']}")
    # and Max sees Bob but not Ana
    assert user_ids(acme.items("max", "/activities")) == {ids["bob"]}
    acme.hidden("max", "/activities", user_id=ids["ana"])
    assert {c["emails"][0] for c in acme.items("max", "/contacts")} == {
        "joe@northwind.co.uk",
        "zed@globex.example",
    }


# --- an admin -------------------------------------------------------------------------------


def test_an_admin_sees_everyone_in_the_org(acme: Tenant) -> None:
    ids = acme.ids
    assert user_ids(acme.items("admin", "/activities")) == {ids["ana"], ids["abe"], ids["bob"]}
    for name in ("ana", "abe", "bob", "cleo", "mia", "max"):
        assert acme.ok("admin", f"/users/{ids[name]}")["id"] == ids[name]
        acme.ok("admin", "/metrics", **WEEK, user_id=ids[name])
    assert len(acme.ok("admin", "/users")) == 7
    assert {t["id"] for t in acme.ok("admin", "/teams")} == {ids["east"], ids["west"]}
    assert {c["emails"][0] for c in acme.items("admin", "/contacts")} == set(acme.contacts)
    assert {c["domains"][0] for c in acme.items("admin", "/companies")} == set(acme.companies)
    assert {c["id"] for c in acme.items("admin", "/connections")} == set(acme.connections.values())
    assert {q["id"] for q in acme.items("admin", "/quotas")} == set(acme.quotas.values())
    joe = {c["domains"][0]: c for c in acme.items("admin", "/companies")}["northwind.co.uk"]
    assert joe["contact_count"] == 1


# --- another organization -------------------------------------------------------------------


def foreign_ids(other: Tenant) -> dict[str, int]:
    """A value from the other org for every id parameter of the API."""
    return {
        "user_id": other.ids["una"],
        "owner_id": other.ids["una"],
        "manager_id": other.ids["una"],
        "team_id": other.ids["lab"],
        "contact_id": other.contacts["joe@northwind.co.uk"],
        "company_id": other.companies["northwind.co.uk"],
        "connection_id": other.connections["una"],
        "quota_id": other.quotas["una"],
        "deal_id": other.ids["deal"],
        "webhook_id": other.ids["webhook"],
        "alert_id": other.ids["alert"],
    }


def get_routes(client: TestClient) -> list[tuple[str, dict[str, Any]]]:
    spec = client.get("/openapi.json").json()
    return [
        (path, operation)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if method == "get" and path.startswith("/api/v1/")
    ]


REQUIRED_QUERY = {**WEEK, "date": "2026-03-05", "target": "100"}
# path parameters that name a kind of thing, not an item of an organization
NAMES = {"name": "google"}


@pytest.mark.parametrize("who", ["admin", "mia", "ana"])
def test_no_one_sees_another_orgs_data_through_any_get(
    acme: Tenant, umbrella: Tenant, who: str
) -> None:
    foreign = foreign_ids(umbrella)
    headers = acme.headers(who)
    client = acme.org.client
    checked = 0
    for path, operation in get_routes(client):
        parameters = operation.get("parameters", [])
        in_path = [p["name"] for p in parameters if p["in"] == "path"]
        required = {
            p["name"]: REQUIRED_QUERY[p["name"]]
            for p in parameters
            # a required id (reconciliation's team_id) is given below, as the other org's
            if p["in"] == "query" and p.get("required") and p["name"] not in foreign
        }
        if in_path and set(in_path) <= set(NAMES):
            path = re.sub(r"\{(\w+)\}", lambda m: NAMES[m[1]], path)
        elif in_path:
            # one item of the other org, by its id
            unknown = [name for name in in_path if name not in foreign]
            assert not unknown, f"{path}: add an id of the other org for {unknown}"
            url = "/api/v1" + re.sub(r"\{(\w+)\}", lambda m: str(foreign[m[1]]), path[7:])
            response = client.get(url, params=required, headers=headers)
            assert response.status_code == 404, (who, url, response.text)
            checked += 1
            continue
        # a list or series filtered by an id of the other org
        for name in (p["name"] for p in parameters if p["in"] == "query"):
            if name not in foreign:
                continue
            response = client.get(path, params={**required, name: foreign[name]}, headers=headers)
            checked += 1
            if response.status_code == 404:
                continue
            assert response.status_code == 200, (who, path, name, response.text)
            assert response.json().get("items") == [], (who, path, name, response.text)
    assert checked >= 15  # every id route and every id filter of the lists


def test_lists_never_include_another_orgs_rows(acme: Tenant, umbrella: Tenant) -> None:
    theirs_contacts = set(umbrella.contacts.values())
    theirs_companies = set(umbrella.companies.values())
    for who in ("admin", "mia", "ana"):
        activities = acme.items(who, "/activities")
        assert activities and user_ids(activities) <= set(acme.ids.values())
        for item in activities:
            assert not set(item["contact_ids"]) & theirs_contacts
            assert not set(item["company_ids"]) & theirs_companies
            assert item["source"]["connection_id"] in acme.connections.values()
        contacts = acme.items(who, "/contacts")
        assert contacts and not {c["id"] for c in contacts} & theirs_contacts
        assert "vic@vendor.example" not in {c["emails"][0] for c in contacts}
        assert not {c["company_id"] for c in contacts} & theirs_companies
        companies = acme.items(who, "/companies")
        assert companies and not {c["id"] for c in companies} & theirs_companies
        assert "vendor.example" not in {c["domains"][0] for c in companies}
        assert not {c["id"] for c in acme.items(who, "/connections")} & set(
            umbrella.connections.values()
        )
        assert not {q["id"] for q in acme.items(who, "/quotas")} & set(umbrella.quotas.values())
        assert umbrella.ids["una"] not in {u["id"] for u in acme.ok(who, "/users")}
        assert umbrella.ids["lab"] not in {t["id"] for t in acme.ok(who, "/teams")}
        assert acme.ok(who, "/org")["id"] == acme.org.id
    # the same address is a separate contact per org, each with its own activities
    joe_here = acme.contacts["joe@northwind.co.uk"]
    joe_there = umbrella.contacts["joe@northwind.co.uk"]
    assert joe_here != joe_there
    subjects = {i["subject"] for i in acme.items("admin", "/activities", contact_id=joe_here)}
    assert subjects == {"ana-joe", "abe", "bob-joe"}
    there = umbrella.items("admin", "/activities", contact_id=joe_there)
    assert [i["subject"] for i in there] == ["una-joe"]
    # Umbrella's admin, the other way round
    assert {c["emails"][0] for c in umbrella.items("admin", "/contacts")} == {
        "joe@northwind.co.uk",
        "vic@vendor.example",
    }
    umbrella.hidden("admin", f"/contacts/{acme.contacts['sue@initech.example']}")


def test_no_one_acts_on_another_orgs_rows(acme: Tenant, umbrella: Tenant) -> None:
    client, admin = acme.org.client, acme.headers("admin")
    foreign = foreign_ids(umbrella)
    attempts = [
        ("PATCH", f"/api/v1/contacts/{foreign['contact_id']}", {"title": "Mole"}),
        ("PATCH", f"/api/v1/users/{foreign['user_id']}", {"name": "Mole"}),
        ("POST", f"/api/v1/users/{foreign['user_id']}/api-keys", None),
        ("POST", f"/api/v1/users/{foreign['user_id']}/sign-in-links", None),
        ("POST", f"/api/v1/connections/{foreign['connection_id']}/sync", None),
        ("PATCH", f"/api/v1/connections/{foreign['connection_id']}", {"config": {"port": 1}}),
        ("DELETE", f"/api/v1/connections/{foreign['connection_id']}", None),
        ("PATCH", f"/api/v1/quotas/{foreign['quota_id']}", {"target": 1}),
        ("DELETE", f"/api/v1/quotas/{foreign['quota_id']}", None),
        ("POST", "/api/v1/teams", {"name": "Moles", "manager_id": foreign["user_id"]}),
        (
            "POST",
            "/api/v1/users",
            {
                "email": "mole@acme.example",
                "name": "M",
                "role": "rep",
                "team_id": foreign["team_id"],
            },
        ),
        (
            "POST",
            "/api/v1/connections",
            {
                "user_id": foreign["user_id"],
                "provider": "imap",
                "config": {"host": "h.example", "port": 993, "username": "u", "password": "p"},
            },
        ),
        ("POST", "/api/v1/quotas", {**QUOTA, "user_id": foreign["user_id"]}),
        ("POST", "/api/v1/quotas", {**QUOTA, "team_id": foreign["team_id"]}),
        ("DELETE", f"/api/v1/webhooks/{foreign['webhook_id']}", None),
        ("POST", f"/api/v1/alerts/{foreign['alert_id']}/acknowledge", None),
    ]
    for method, path, body in attempts:
        response = client.request(method, path, json=body, headers=admin)
        assert response.status_code == 404, (method, path, response.text)
    # nothing changed over there
    there = umbrella.ok("admin", f"/contacts/{foreign['contact_id']}")
    assert there["title"] is None
    assert umbrella.ok("admin", f"/users/{foreign['user_id']}")["name"] == "Una"
    assert umbrella.ok("admin", f"/quotas/{foreign['quota_id']}")["target"] == 10
    connection = umbrella.ok("admin", f"/connections/{foreign['connection_id']}")
    assert connection["config"] == {"host": "imap.umbrella.example"}
    assert connection["next_sync_at"] is None
    assert len(umbrella.ok("admin", "/users")) == 2
