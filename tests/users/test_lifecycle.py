"""People leave and organizations keep an admin: the last admin stays, a deactivated user can
do nothing and nothing syncs for them, and the team's past periods do not change."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from app.cli import cli
from app.connections.leases import claim_due
from app.db import Database, get_database, session_scope
from app.errors import AppError
from app.models import ApiKey, Connection, ConnectionStatus, User, utcnow
from app.security import encrypt_secret
from app.users import lifecycle
from app.users.schemas import UserUpdate
from app.users.service import update_user
from tests.api import ADMIN, Org, auth, make_org
from tests.factories import message
from tests.world import World


def is_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["error"]["code"] == code, body
    return body


@pytest.fixture
def org(client: TestClient) -> Org:
    org = make_org(client)
    org.user("mia@acme.example", role="manager")
    team = org.team("East", manager_id=org.users["mia@acme.example"]["id"])
    org.user("ana@acme.example", team_id=team["id"])
    org.users["team"] = team
    return org


def me(org: Org, headers: dict[str, str]) -> Any:
    return org.client.get("/api/v1/users/me", headers=headers)


# --- the last admin ---------------------------------------------------------------------------


def test_the_only_admin_can_neither_demote_nor_delete_themself(org: Org) -> None:
    admin_id = org.admin_id()
    for role in ("rep", "manager"):
        response = org.client.patch(
            f"/api/v1/users/{admin_id}", json={"role": role}, headers=org.as_admin()
        )
        body = is_error(response, 409, "conflict")
        assert "last admin" in body["error"]["message"]
        assert "tally orgs make-admin" in body["error"]["message"]
    is_error(
        org.client.delete(f"/api/v1/users/{admin_id}", headers=org.as_admin()), 409, "conflict"
    )
    mine = me(org, org.as_admin())
    assert mine.status_code == 200 and mine.json()["role"] == "admin"


def test_with_a_second_admin_one_may_step_down_and_the_other_is_then_the_last(org: Org) -> None:
    admin_id = org.admin_id()
    ana = org.users["ana@acme.example"]["id"]
    promoted = org.client.patch(
        f"/api/v1/users/{ana}", json={"role": "admin"}, headers=org.as_admin()
    )
    assert promoted.status_code == 200, promoted.text
    stepped = org.client.patch(
        f"/api/v1/users/{admin_id}", json={"role": "rep"}, headers=org.as_admin()
    )
    assert stepped.status_code == 200 and stepped.json()["role"] == "rep"
    ana_key = org.as_user("ana@acme.example")
    is_error(
        org.client.patch(f"/api/v1/users/{ana}", json={"role": "rep"}, headers=ana_key),
        409,
        "conflict",
    )
    # a deactivated admin does not count: the one left cannot go either
    is_error(org.client.delete(f"/api/v1/users/{ana}", headers=ana_key), 409, "conflict")


def test_two_admins_demoting_each_other_at_once_leave_one_admin(org: Org) -> None:
    """The second demotion waits for the first (the organization's row is locked), then
    finds its caller no longer an admin: one admin is left, on either database."""
    first = org.admin_id()
    second = org.user("zoe@acme.example", role="admin")["id"]
    database = get_database()
    session_a = database.sessions()
    session_a.begin()
    update_user(
        session_a,
        session_a.get_one(User, first),
        second,
        UserUpdate(role="rep"),  # type: ignore[arg-type]
    )
    session_a.flush()
    outcome: list[BaseException | None] = []

    def demote_first() -> None:
        session_b = database.sessions()
        try:
            caller = session_b.get_one(User, second)
            update_user(session_b, caller, first, UserUpdate(role="rep"))  # type: ignore[arg-type]
            session_b.commit()
            outcome.append(None)
        except AppError as error:
            outcome.append(error)
        finally:
            session_b.rollback()
            session_b.close()

    thread = threading.Thread(target=demote_first)
    thread.start()
    thread.join(0.5)
    assert thread.is_alive(), "the second demotion did not wait for the first"
    session_a.commit()
    session_a.close()
    thread.join(30)
    assert len(outcome) == 1 and isinstance(outcome[0], AppError), outcome
    assert outcome[0].status_code in (403, 409)
    with session_scope() as session:
        assert lifecycle.active_admin_ids(session, org.id) == [first]


# --- leaving ----------------------------------------------------------------------------------


def _connection(org: Org, user_id: int) -> int:
    with session_scope() as session:
        row = Connection(
            org_id=org.id,
            user_id=user_id,
            provider="imap",
            config={"host": "imap.acme.example", "port": 993, "username": "ana"},
            secret=encrypt_secret({"password": "hunter2"}),
            cursors={},
            next_sync_at=utcnow(),
        )
        session.add(row)
        session.flush()
        return row.id


def _team_emails(org: Org) -> list[Any]:
    team = org.users["team"]["id"]
    response = org.client.get(
        "/api/v1/metrics",
        params={
            "metric": "emails_sent",
            "period": "month",
            "start": "2026-01-01",
            "end": "2026-03-31",
            "team_id": team,
        },
        headers=org.as_admin(),
    )
    assert response.status_code == 200, response.text
    return [(row["period_start"], row["value"]) for row in response.json()["series"]]


def test_deleting_a_user_deactivates_them_and_keeps_their_history(org: Org) -> None:
    ana = org.users["ana@acme.example"]["id"]
    connection_id = _connection(org, ana)
    world = World(org.id, {"ana": ana}, {"ana": connection_id})
    world.ingest(
        "ana",
        message("ana@acme.example", folder_role="sent", date=datetime(2026, 2, 3, 9, tzinfo=UTC)),
        message("ana@acme.example", folder_role="sent", date=datetime(2026, 3, 4, 9, tzinfo=UTC)),
    )
    before = _team_emails(org)
    assert sum(value for _, value in before) == 2

    gone = org.client.delete(f"/api/v1/users/{ana}", headers=org.as_admin())
    assert gone.status_code == 204, gone.text
    again = org.client.delete(f"/api/v1/users/{ana}", headers=org.as_admin())
    assert again.status_code == 204

    # they cannot authenticate any more
    is_error(me(org, org.as_user("ana@acme.example")), 401, "unauthorized")
    # the team's past periods and their activities do not change
    assert _team_emails(org) == before
    activities = org.client.get(
        "/api/v1/activities", params={"user_id": ana}, headers=org.as_admin()
    )
    assert activities.status_code == 200 and len(activities.json()["items"]) == 2
    # listed, marked, and filterable
    listed = {u["id"]: u for u in org.client.get("/api/v1/users", headers=org.as_admin()).json()}
    assert listed[ana]["active"] is False and listed[ana]["deactivated_at"] is not None
    assert listed[ana]["team_id"] == org.users["team"]["id"]
    active = org.client.get("/api/v1/users", params={"active": True}, headers=org.as_admin())
    assert ana not in {u["id"] for u in active.json()}
    left = org.client.get("/api/v1/users", params={"active": False}, headers=org.as_admin())
    assert [u["id"] for u in left.json()] == [ana]
    # the mailbox: stopped, secret erased, never claimed by a worker again
    shown = org.connection(connection_id)
    assert shown["status"] == "needs_reconnect" and "deactivated" in shown["last_error"]
    with session_scope() as session:
        row = session.get_one(Connection, connection_id)
        assert row.secret is None and row.next_sync_at is None
        assert all(
            k.revoked_at is not None
            for k in session.scalars(select(ApiKey).where(ApiKey.user_id == ana))
        )
        later = utcnow() + timedelta(days=30)
        assert claim_due(session, owner="w", limit=10, now=later) == []


def test_a_connection_being_synced_loses_its_lease_when_its_user_leaves(org: Org) -> None:
    ana = org.users["ana@acme.example"]["id"]
    connection_id = _connection(org, ana)
    with session_scope() as session:
        leases = claim_due(session, owner="worker-1", limit=10, now=utcnow())
    assert [lease.connection_id for lease in leases] == [connection_id]
    assert org.client.delete(f"/api/v1/users/{ana}", headers=org.as_admin()).status_code == 204
    with session_scope() as session:
        row = session.get_one(Connection, connection_id)
        assert row.lease_owner is None and row.lease_epoch != leases[0].epoch
        assert row.status == ConnectionStatus.needs_reconnect


def test_nothing_new_is_given_to_someone_who_left(org: Org) -> None:
    mia = org.users["mia@acme.example"]["id"]
    assert org.client.delete(f"/api/v1/users/{mia}", headers=org.as_admin()).status_code == 204
    teams = org.client.get("/api/v1/teams", headers=org.as_admin()).json()
    assert [t["manager_id"] for t in teams] == [None]  # the team they managed has none now
    is_error(
        org.client.post(
            "/api/v1/teams", json={"name": "West", "manager_id": mia}, headers=org.as_admin()
        ),
        409,
        "conflict",
    )
    is_error(
        org.client.post(f"/api/v1/users/{mia}/api-keys", headers=org.as_admin()), 409, "conflict"
    )
    is_error(
        org.client.patch(f"/api/v1/users/{mia}", json={"role": "admin"}, headers=org.as_admin()),
        409,
        "conflict",
    )
    renamed = org.client.patch(
        f"/api/v1/users/{mia}", json={"name": "Mia (left)"}, headers=org.as_admin()
    )
    assert renamed.status_code == 200 and renamed.json()["active"] is False


def test_a_deactivated_users_phone_numbers_go_to_their_successor(org: Org) -> None:
    ana = org.users["ana@acme.example"]["id"]
    number = "+32470123456"
    given = org.client.patch(
        f"/api/v1/users/{ana}", json={"phones": [number]}, headers=org.as_admin()
    )
    assert given.status_code == 200, given.text
    assert org.client.delete(f"/api/v1/users/{ana}", headers=org.as_admin()).status_code == 204
    bob = org.user("bob@acme.example")["id"]
    taken = org.client.patch(
        f"/api/v1/users/{bob}", json={"phones": [number]}, headers=org.as_admin()
    )
    assert taken.status_code == 200 and taken.json()["phones"] == [number]


def test_only_an_admin_deactivates_and_only_in_their_organization(org: Org) -> None:
    ana = org.users["ana@acme.example"]["id"]
    mia_key = org.as_user("mia@acme.example")
    is_error(org.client.delete(f"/api/v1/users/{ana}", headers=mia_key), 403, "forbidden")
    other = make_org(org.client, name="Other", domains=("other.example",))
    is_error(org.client.delete(f"/api/v1/users/{ana}", headers=other.as_admin()), 404, "not_found")
    is_error(org.client.delete(f"/api/v1/users/{ana}", headers=ADMIN), 403, "forbidden")
    assert me(org, org.as_user("ana@acme.example")).status_code == 200


# --- the operator's recovery ------------------------------------------------------------------


def test_an_operator_recovers_an_organization_with_the_admin_token(
    org: Org, database: Database
) -> None:
    ana = org.users["ana@acme.example"]["id"]
    assert org.client.delete(f"/api/v1/users/{ana}", headers=org.as_admin()).status_code == 204
    runner = CliRunner()
    wrong = runner.invoke(
        cli,
        ["orgs", "make-admin", "--org", str(org.id), "--email", "ana@acme.example"],
        env={"TALLY_ADMIN_TOKEN": "not-it"},
    )
    assert wrong.exit_code == 2 and "not the instance admin token" in wrong.output
    prompted = runner.invoke(
        cli,
        ["orgs", "make-admin", "--org", str(org.id), "--email", "ANA@acme.example"],
        input="test-admin-token\n",
        env={"TALLY_ADMIN_TOKEN": ""},
    )
    assert prompted.exit_code == 0, prompted.output
    assert "reactivated" in prompted.output
    key = prompted.output.strip().splitlines()[-1]
    mine = me(org, auth(key))
    assert mine.status_code == 200 and mine.json()["role"] == "admin"
    listing = runner.invoke(cli, ["orgs", "list"], env={"TALLY_ADMIN_TOKEN": "test-admin-token"})
    assert listing.exit_code == 0 and "ana@acme.example" in listing.output
    unknown = runner.invoke(
        cli,
        ["orgs", "make-admin", "--org", str(org.id), "--email", "nobody@acme.example"],
        env={"TALLY_ADMIN_TOKEN": "test-admin-token"},
    )
    assert unknown.exit_code == 2 and "no user" in unknown.output
