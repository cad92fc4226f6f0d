"""Connections through the API: validation, write-only secrets, sync requests, deletion."""

from __future__ import annotations

import logging

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app.activities.models import Activity
from app.db import session_scope
from app.models import Connection
from app.security import decrypt_secret
from tests.api import Org, make_org
from tests.factories import message
from tests.world import World

IMAP = {"host": "imap.acme.example", "port": 993, "username": "ana", "password": "s3cret-pw"}


@pytest.fixture
def org(client: TestClient) -> Org:
    org = make_org(client)
    team = org.team("East")
    org.user("mia@acme.example", role="manager")
    client.patch(
        f"/api/v1/users/{org.users['mia@acme.example']['id']}", json={}, headers=org.as_admin()
    )
    org.client.post("/api/v1/teams", json={"name": "x"}, headers=org.as_admin())
    org.user("ana@acme.example", team_id=team["id"])
    org.user("bob@acme.example")
    return org


def connect(
    org: Org, email: str, *, as_user: str | None = None, config: dict[str, object] | None = None
):  # type: ignore[no-untyped-def]
    headers = org.as_user(as_user) if as_user else org.as_admin()
    return org.client.post(
        "/api/v1/connections",
        json={"user_id": org.users[email]["id"], "provider": "imap", "config": config or IMAP},
        headers=headers,
    )


def test_a_rep_connects_their_mailbox_and_the_password_is_never_shown(
    org: Org, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    response = connect(org, "ana@acme.example", as_user="ana@acme.example")
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "pending" and body["provider"] == "imap"
    assert body["stats"] == {
        "messages_seen": 0,
        "messages_imported": 0,
        "messages_filtered": 0,
        "messages_failed": 0,
        "events_seen": 0,
        "activities_created": 0,
    }
    assert "s3cret-pw" not in response.text
    listed = org.client.get("/api/v1/connections", headers=org.as_user("ana@acme.example"))
    assert "s3cret-pw" not in listed.text and listed.json()["items"][0]["id"] == body["id"]
    with session_scope() as session:
        stored = session.get_one(Connection, body["id"])
        assert b"s3cret-pw" not in (stored.secret or b"") and "s3cret-pw" not in str(stored.config)
        assert decrypt_secret(stored.secret or b"") == {"password": "s3cret-pw"}
    assert "s3cret-pw" not in caplog.text


def test_a_rep_cannot_connect_or_see_another_reps_mailbox(org: Org) -> None:
    assert connect(org, "bob@acme.example", as_user="ana@acme.example").status_code == 403
    bob = connect(org, "bob@acme.example").json()
    ana = org.as_user("ana@acme.example")
    assert org.client.get(f"/api/v1/connections/{bob['id']}", headers=ana).status_code == 404
    assert org.client.post(f"/api/v1/connections/{bob['id']}/sync", headers=ana).status_code == 404
    assert org.client.delete(f"/api/v1/connections/{bob['id']}", headers=ana).status_code == 404
    assert org.client.get("/api/v1/connections", headers=ana).json()["items"] == []


@pytest.mark.parametrize(
    ("config", "status"),
    [
        ({**IMAP, "port": 0}, 422),
        ({**IMAP, "security": "tls13"}, 422),
        ({k: v for k, v in IMAP.items() if k != "password"}, 422),
        ({**IMAP, "unknown": 1}, 422),
        ({**IMAP, "host": ""}, 422),
    ],
)
def test_bad_imap_settings_get_a_clear_422(
    org: Org, config: dict[str, object], status: int
) -> None:
    response = connect(org, "ana@acme.example", config=config)
    assert response.status_code == status
    assert response.json()["error"]["code"] == "validation_error"
    assert "s3cret-pw" not in response.text


def test_a_caldav_calendar_is_connected_with_a_write_only_password(org: Org) -> None:
    ana = org.users["ana@acme.example"]["id"]
    config = {"url": "https://dav.example/", "username": "ana", "password": "cal-s3cret"}
    response = org.client.post(
        "/api/v1/connections",
        json={"user_id": ana, "provider": "caldav", "config": config},
        headers=org.as_admin(),
    )
    assert response.status_code == 201, response.text
    assert response.json()["config"] == {"url": "https://dav.example/", "username": "ana"}
    assert "cal-s3cret" not in response.text
    with session_scope() as session:
        stored = session.get_one(Connection, response.json()["id"])
        assert decrypt_secret(stored.secret or b"") == {"password": "cal-s3cret"}
    bad = {**config, "url": "ftp://dav.example/"}
    response = org.client.post(
        "/api/v1/connections",
        json={"user_id": ana, "provider": "caldav", "config": bad},
        headers=org.as_admin(),
    )
    assert response.status_code == 422 and "cal-s3cret" not in response.text


@pytest.mark.parametrize("provider", ["gmail", "microsoft", "import"])
def test_providers_that_are_not_connected_this_way_get_a_400(org: Org, provider: str) -> None:
    response = org.client.post(
        "/api/v1/connections",
        json={"user_id": org.users["ana@acme.example"]["id"], "provider": provider, "config": {}},
        headers=org.as_admin(),
    )
    assert response.status_code == 400 and response.json()["error"]["code"] == "bad_request"


def test_sync_now_queues_at_once_and_patch_reconnects(org: Org) -> None:
    connection = connect(org, "ana@acme.example").json()
    with session_scope() as session:
        row = session.get_one(Connection, connection["id"])
        row.status, row.next_sync_at, row.last_error = "needs_reconnect", None, "Reconnect needed"
    response = org.client.post(
        f"/api/v1/connections/{connection['id']}/sync", headers=org.as_admin()
    )
    assert response.status_code == 202
    assert response.json()["status"] == "pending" and response.json()["next_sync_at"] is not None
    patched = org.client.patch(
        f"/api/v1/connections/{connection['id']}",
        json={"config": {"password": "new-pw"}},
        headers=org.as_user("ana@acme.example"),
    )
    assert patched.status_code == 200 and patched.json()["last_error"] is None
    assert patched.json()["config"]["host"] == "imap.acme.example"
    with session_scope() as session:
        assert decrypt_secret(session.get_one(Connection, connection["id"]).secret or b"") == {
            "password": "new-pw"
        }


def test_delete_with_purge_removes_only_what_this_connection_alone_captured(org: Org) -> None:
    ana_conn = connect(org, "ana@acme.example").json()["id"]
    bob_conn = connect(org, "bob@acme.example").json()["id"]
    ana, bob = org.users["ana@acme.example"]["id"], org.users["bob@acme.example"]["id"]
    world = World(org.id, {"ana": ana, "bob": bob}, {"ana": ana_conn, "bob": bob_conn})
    shared = dict(
        sender="joe@northwind.example",
        to=("ana@acme.example", "bob@acme.example"),
        message_id="shared@northwind.example",
    )
    world.ingest("ana", message(**shared), message("kim@globex.example", ("ana@acme.example",)))  # type: ignore[arg-type]
    world.ingest("bob", message(**shared))  # type: ignore[arg-type]
    response = org.client.delete(
        f"/api/v1/connections/{ana_conn}?purge=true", headers=org.as_admin()
    )
    assert response.status_code == 204
    with session_scope() as session:
        remaining = session.scalar(select(func.count()).select_from(Activity))
    assert remaining == 2  # the shared message's two email_received stay; kim's is gone
    assert (
        org.client.get(f"/api/v1/connections/{ana_conn}", headers=org.as_admin()).status_code == 404
    )


def test_purging_a_calendar_removes_the_meetings_only_it_held(org: Org) -> None:
    from datetime import UTC, datetime

    from app.activities.models import ActivityDay
    from app.contacts.models import ContactDay
    from connectors.base import CalendarObject
    from tests.factories import attendee, event

    def calendar(email: str) -> int:
        config = {"url": "https://dav.example/", "username": email, "password": "pw"}
        user_id = org.users[email]["id"]
        response = org.client.post(
            "/api/v1/connections",
            json={"user_id": user_id, "provider": "caldav", "config": config},
            headers=org.as_admin(),
        )
        assert response.status_code == 201, response.text
        return int(response.json()["id"])

    ana, bob = org.users["ana@acme.example"]["id"], org.users["bob@acme.example"]["id"]
    calendars = {"ana": calendar("ana@acme.example"), "bob": calendar("bob@acme.example")}
    world = World(org.id, {"ana": ana, "bob": bob}, {}, calendars)
    start = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    guests = (attendee("joe@northwind.example"), attendee("bob@acme.example"))
    alone = event(uid="alone", start=start, attendees=guests[:1], resource="cal/alone.ics")
    shared = event(uid="shared", start=start, attendees=guests, resource="cal/shared.ics")
    after = datetime(2026, 3, 3, tzinfo=UTC)
    world.calendar("ana", CalendarObject("cal/alone.ics", (alone,)), now=after)
    world.calendar("ana", CalendarObject("cal/shared.ics", (shared,)), now=after)
    world.calendar("bob", CalendarObject("cal/shared.ics", (shared,)), now=after)

    def meetings() -> list[tuple[int, str, int]]:
        with session_scope() as session:
            activities = session.execute(
                select(Activity.user_id, Activity.type, func.count())
                .group_by(Activity.user_id, Activity.type)
                .order_by(Activity.user_id, Activity.type)
            ).all()
            days = session.execute(
                select(ActivityDay.user_id, ActivityDay.type, func.sum(ActivityDay.count))
                .group_by(ActivityDay.user_id, ActivityDay.type)
                .order_by(ActivityDay.user_id, ActivityDay.type)
            ).all()
            links = session.scalar(select(func.sum(ContactDay.count)))
        assert [tuple(row) for row in days] == [tuple(row) for row in activities]
        return [(user, kind, n) for user, kind, n in activities] + [(0, "links", links or 0)]

    both = [(ana, "meeting_held", 2), (ana, "meeting_scheduled", 2), (bob, "meeting_held", 1)]
    assert meetings() == [*both, (0, "links", 5)]
    response = org.client.delete(
        f"/api/v1/connections/{calendars['ana']}?purge=true", headers=org.as_admin()
    )
    assert response.status_code == 204
    # the meeting in bob's calendar too stays, with its links; the other one is gone
    shared_only = [
        (ana, "meeting_held", 1),
        (ana, "meeting_scheduled", 1),
        (bob, "meeting_held", 1),
    ]
    assert meetings() == [*shared_only, (0, "links", 3)]
