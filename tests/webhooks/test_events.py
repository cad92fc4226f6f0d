"""connection.needs_reconnect is announced when a connection's status becomes needs_reconnect:
a real IMAP sync refused for a wrong password, and a user's deactivation; once, on the
change, not for a connection already waiting for a reconnect."""

from __future__ import annotations

import json
import uuid
from typing import Any

from sqlalchemy import select, update

from app.db import Database, session_scope
from app.models import OrgJob
from app.webhooks.models import WebhookDelivery
from tests.api import Org
from tests.fixtures.dovecot import DovecotServer, dovecot  # noqa: F401

EVENTS = ["connection.needs_reconnect", "deal.won"]


def subscribe(org: Org) -> None:
    body = {"url": "https://hooks.acme.example/tally", "events": EVENTS}
    response = org.client.post("/api/v1/webhooks", json=body, headers=org.as_admin())
    assert response.status_code == 201, response.text


def announced() -> list[dict[str, Any]]:
    with session_scope() as session:
        bodies = session.scalars(select(WebhookDelivery.body).order_by(WebhookDelivery.id))
        return [json.loads(b) for b in bodies]


def test_a_refused_password_announces_needs_reconnect_once(
    org: Org,
    database: Database,
    dovecot: DovecotServer,  # noqa: F811
) -> None:
    subscribe(org)
    login = f"ana.{uuid.uuid4().hex[:8]}@imap.test"
    dovecot.add_user(login, "right")
    connection_id = org.connect("ana@acme.example", "imap", dovecot.settings(login, "typo"))
    org.sync(connection_id)
    assert org.connection(connection_id)["status"] == "needs_reconnect"
    [body] = announced()
    assert body["type"] == "connection.needs_reconnect"
    ana = org.users["ana@acme.example"]["id"]
    assert body["data"]["connection"] == {"id": connection_id, "user_id": ana, "provider": "imap"}
    assert body["data"]["reason"].startswith("Reconnect needed")
    assert "typo" not in json.dumps(body) and "right" not in json.dumps(body)
    # the user deactivated: the connection already waits for a reconnect, nothing new
    response = org.client.delete(f"/api/v1/users/{ana}", headers=org.as_admin())
    assert response.status_code == 204, response.text
    assert len(announced()) == 1


def test_deactivating_a_user_announces_their_connections(org: Org, database: Database) -> None:
    subscribe(org)
    config = {"host": "imap.acme.example", "port": 993, "username": "ana", "password": "pw"}
    connection_id = org.connect("ana@acme.example", "imap", config)
    ana = org.users["ana@acme.example"]["id"]
    response = org.client.delete(f"/api/v1/users/{ana}", headers=org.as_admin())
    assert response.status_code == 204, response.text
    [body] = announced()
    assert body["type"] == "connection.needs_reconnect"
    assert body["data"]["connection"]["id"] == connection_id
    assert body["data"]["reason"] == "Stopped for good: the user was deactivated"


def test_every_deal_write_asks_for_an_alert_evaluation(org: Org, database: Database) -> None:
    def due() -> bool:
        with session_scope() as session:
            row = session.get(OrgJob, (org.id, "alerts"))
            return row is not None and row.due_at is not None

    def served() -> None:  # as the alert job's claim does
        with session_scope() as session:
            session.execute(update(OrgJob).values(due_at=None))

    ana = org.users["ana@acme.example"]["id"]
    deal = org.deal(ana)
    assert due()
    served()
    path = f"/api/v1/deals/{deal['id']}"
    assert org.client.patch(path, json={"value": 5}, headers=org.as_admin()).status_code == 200
    assert due()
    served()
    assert org.client.delete(path, headers=org.as_admin()).status_code == 204
    assert due()
