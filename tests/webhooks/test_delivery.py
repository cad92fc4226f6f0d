"""Deliveries to a real receiver (an HTTP server in this process, verifying each request with
the standardwebhooks library): signed, retried on the schedule while it is down or failing,
in order per webhook, given up after a day, stopped by 410 Gone. The job's clock is moved
forward instead of waiting hours; the signatures use the wall clock, as receivers check it."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import httpx2
import pytest
import trustme
from sqlalchemy import select

from app.config import settings
from app.db import Database, session_scope
from app.models import utcnow
from app.webhooks import delivery
from app.webhooks.models import WebhookDelivery
from tests.api import Org
from tests.webhooks.receiver import Receiver


class Clock:
    """The delivery job's clock (app.webhooks.delivery.utcnow), moved by the test."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now = utcnow()
        monkeypatch.setattr(delivery, "utcnow", lambda: self.now)

    def start(self) -> None:
        """Stop at the wall clock's now (after the announcements being tested)."""
        self.now = utcnow()

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return Clock(monkeypatch)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    receiver.release()
    receiver.down()


def subscribe(org: Org, receiver: Receiver, events: list[str] | None = None) -> int:
    body = {"url": receiver.url, "events": events or ["deal.won", "deal.lost"]}
    response = org.client.post("/api/v1/webhooks", json=body, headers=org.as_admin())
    assert response.status_code == 201, response.text
    receiver.secret = response.json()["secret"]
    return int(response.json()["id"])


def close(org: Org, deal_id: int, status: str) -> None:
    response = org.client.patch(
        f"/api/v1/deals/{deal_id}", json={"status": status}, headers=org.as_admin()
    )
    assert response.status_code == 200, response.text


def log(org: Org, webhook_id: int) -> list[dict[str, Any]]:
    """The deliveries log, oldest first."""
    response = org.client.get(f"/api/v1/webhooks/{webhook_id}/deliveries", headers=org.as_admin())
    assert response.status_code == 200, response.text
    return list(reversed(response.json()["items"]))


def closed_deals(org: Org, *statuses: str) -> list[int]:
    ana = org.users["ana@acme.example"]["id"]
    ids = [int(org.deal(ana, name=f"Deal {i}")["id"]) for i in range(len(statuses))]
    for deal_id, status in zip(ids, statuses, strict=True):
        close(org, deal_id, status)
    return ids


def test_a_won_deal_is_delivered_signed(org: Org, database: Database, receiver: Receiver) -> None:
    receiver.up()
    hook = subscribe(org, receiver)
    [deal_id] = closed_deals(org, "won")
    assert delivery.tick() == 1
    [heard] = receiver.heard
    assert heard.verified  # the library's verifier accepts the signature with the secret
    assert heard.payload["type"] == "deal.won"
    assert heard.payload["data"]["deal"]["id"] == deal_id
    assert heard.payload["data"]["deal"]["status"] == "won"
    assert datetime.fromisoformat(heard.payload["timestamp"]) <= utcnow()
    assert heard.webhook_id.startswith("msg_")
    [row] = log(org, hook)
    assert row["status"] == "delivered" and row["attempts"] == 1
    assert row["last_status_code"] == 200 and row["event_id"] == heard.webhook_id
    assert row["delivered_at"] is not None and row["next_attempt_at"] is None
    # a tampered body or another secret does not verify
    receiver.secret = "whsec_" + "A" * 43
    receiver.took(heard.headers, heard.body)
    assert not receiver.heard[-1].verified
    # nothing is due any more: the next tick sends nothing
    assert delivery.tick() == 0


def test_only_a_change_to_won_or_lost_is_announced(org: Org, database: Database) -> None:
    receiver = Receiver()
    hook = subscribe(org, receiver, ["deal.won"])
    ana = org.users["ana@acme.example"]["id"]
    deal = org.deal(ana)
    org.client.patch(f"/api/v1/deals/{deal['id']}", json={"value": 5}, headers=org.as_admin())
    close(org, deal["id"], "lost")  # not subscribed
    close(org, deal["id"], "won")
    org.client.patch(f"/api/v1/deals/{deal['id']}", json={"value": 7}, headers=org.as_admin())
    org.deal(ana, status="won", stage=None)  # created won
    assert [r["event"] for r in log(org, hook)] == ["deal.won", "deal.won"]


def test_receiver_down_then_failing_then_up_gets_everything_in_order(
    org: Org, database: Database, receiver: Receiver, clock: Clock
) -> None:
    hook = subscribe(org, receiver)
    ids = closed_deals(org, "won", "lost", "won")
    clock.start()
    # down: connection refused; the first is retried, the later ones wait behind it
    assert delivery.tick() == 1
    first, *rest = log(org, hook)
    assert first["status"] == "pending" and first["attempts"] == 1
    assert "ConnectError" in first["last_error"] and first["last_status_code"] is None
    assert datetime.fromisoformat(first["next_attempt_at"]) == clock.now + timedelta(seconds=5)
    assert [r["next_attempt_at"] for r in rest] == [None, None]
    assert delivery.tick() == 0  # not due yet
    # up, but failing
    receiver.answer = 500
    receiver.up()
    clock.advance(timedelta(seconds=5))
    assert delivery.tick() == 1
    first = log(org, hook)[0]
    assert (first["attempts"], first["last_status_code"]) == (2, 500)
    assert first["last_error"] == "the receiver answered 500"
    assert datetime.fromisoformat(first["next_attempt_at"]) == clock.now + timedelta(minutes=5)
    # healthy again: at the next retry everything goes, in order
    receiver.answer = 200
    clock.advance(timedelta(minutes=5))
    assert delivery.tick() == 3
    assert [b["data"]["deal"]["id"] for b in receiver.bodies()] == ids
    assert [b["type"] for b in receiver.bodies()] == ["deal.won", "deal.lost", "deal.won"]
    assert all(h.verified for h in receiver.heard)
    # the failed attempt and the one that went through carry the same webhook-id
    assert receiver.heard[0].webhook_id == receiver.heard[1].webhook_id
    assert [(r["status"], r["attempts"]) for r in log(org, hook)] == [
        ("delivered", 3),
        ("delivered", 1),
        ("delivered", 1),
    ]


def test_retried_for_a_day_on_the_schedule_then_failed_and_the_next_goes(
    org: Org, database: Database, receiver: Receiver, clock: Clock
) -> None:
    receiver.answer = 503
    receiver.up()
    hook = subscribe(org, receiver)
    closed_deals(org, "won", "lost")
    clock.start()
    start = clock.now
    moments = []
    for _ in range(20):
        attempts = delivery.tick()
        moments += [clock.now - start] * attempts
        due = log(org, hook)[0]["next_attempt_at"]
        if due is None:
            break
        clock.now = datetime.fromisoformat(due)
    # Svix's schedule: 0, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h after the previous one;
    # the 8th attempt, 27 h 35 min 5 s after the first, is past a day: given up
    assert moments[:8] == [
        timedelta(0),
        timedelta(seconds=5),
        timedelta(minutes=5, seconds=5),
        timedelta(minutes=35, seconds=5),
        timedelta(hours=2, minutes=35, seconds=5),
        timedelta(hours=7, minutes=35, seconds=5),
        timedelta(hours=17, minutes=35, seconds=5),
        timedelta(hours=27, minutes=35, seconds=5),
    ]
    first, second = log(org, hook)
    assert (first["status"], first["attempts"], first["last_status_code"]) == ("failed", 8, 503)
    # the second waited more than a day behind it: one attempt at once, then it fails too
    assert (second["status"], second["attempts"]) == ("failed", 1)
    assert moments[8:] == [moments[7]]
    # the webhook stays active: the next event is sent
    receiver.answer = 200
    closed_deals(org, "won")
    assert delivery.tick() == 1
    assert log(org, hook)[-1]["status"] == "delivered"


def test_410_gone_disables_the_webhook(
    org: Org, database: Database, receiver: Receiver, clock: Clock
) -> None:
    receiver.answer = 410
    receiver.up()
    hook = subscribe(org, receiver)
    closed_deals(org, "won", "lost")
    clock.start()
    assert delivery.tick() == 1
    shown = org.client.get(f"/api/v1/webhooks/{hook}", headers=org.as_admin()).json()
    assert shown["status"] == "disabled" and "410" in shown["disabled_reason"]
    rows = log(org, hook)
    assert [(r["status"], r["attempts"]) for r in rows] == [("failed", 1), ("failed", 0)]
    closed_deals(org, "won")
    clock.advance(timedelta(days=2))
    assert delivery.tick() == 0 and len(log(org, hook)) == 2
    assert len(receiver.heard) == 1


def test_a_deleted_webhook_is_sent_nothing_more(
    org: Org, database: Database, receiver: Receiver
) -> None:
    hook = subscribe(org, receiver)
    closed_deals(org, "won")
    assert org.client.delete(f"/api/v1/webhooks/{hook}", headers=org.as_admin()).status_code == 204
    receiver.up()
    assert delivery.tick() == 0 and receiver.heard == []
    with session_scope() as session:
        assert session.scalars(select(WebhookDelivery)).all() == []


def test_a_name_that_resolves_to_a_private_address_is_refused_at_delivery(
    org: Org, database: Database, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    receiver.up()
    hook = subscribe(org, receiver)
    closed_deals(org, "won")
    # the operator no longer allows loopback: the address is checked again before sending
    monkeypatch.setattr(settings, "allowed_private_hosts", [])
    assert delivery.tick() == 1
    [row] = log(org, hook)
    assert row["status"] == "pending" and "non-public" in row["last_error"]
    assert receiver.heard == []


@pytest.mark.parametrize(("name", "delivered"), [("localhost", True), ("other.example", False)])
def test_https_goes_to_the_checked_address_with_the_names_certificate(
    org: Org,
    database: Database,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    delivered: bool,
) -> None:
    """The request goes to the address checked, and TLS still checks the certificate against
    the URL's name (SNI): a certificate for another name is refused."""
    monkeypatch.setattr(settings, "allowed_private_hosts", ["localhost", "127.0.0.1/32"])
    authority = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert(name).configure_cert(server)
    trusted = ssl.create_default_context()
    authority.configure_trust(trusted)
    receiver.up(tls=server)
    body = {"url": f"https://localhost:{receiver.port}/hooks", "events": ["deal.won"]}
    response = org.client.post("/api/v1/webhooks", json=body, headers=org.as_admin())
    assert response.status_code == 201, response.text
    receiver.secret = response.json()["secret"]
    closed_deals(org, "won")
    client = httpx2.Client(verify=trusted, timeout=delivery.TIMEOUT, follow_redirects=False)
    assert delivery.tick(lambda: client) == 1
    [row] = log(org, int(response.json()["id"]))
    if delivered:
        [heard] = receiver.heard
        assert heard.verified and heard.headers["host"] == f"localhost:{receiver.port}"
        assert row["status"] == "delivered"
    else:
        assert receiver.heard == [] and row["status"] == "pending"
        assert "CERTIFICATE_VERIFY_FAILED" in row["last_error"]
