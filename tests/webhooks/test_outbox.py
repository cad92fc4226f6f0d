"""The outbox: announcements are written in the caller's transaction, one row per subscribed
webhook, numbered in commit order; only the head of each webhook's queue is due."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from app.db import Database
from app.models import Organization
from app.security import encrypt_secret
from app.webhooks.models import DeliveryStatus, Webhook, WebhookDelivery, WebhookStatus
from app.webhooks.outbox import announce


def _org_with_hooks(database: Database) -> tuple[int, int, int]:
    with database.sessions.begin() as session:
        org = Organization(name="Acme", timezone="UTC")
        session.add(org)
        session.flush()
        secret = encrypt_secret({"secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"})
        deals = Webhook(
            org_id=org.id, url="https://a.example/h", events=["deal.won"], secret=secret
        )
        every = Webhook(
            org_id=org.id,
            url="https://b.example/h",
            events=["deal.won", "alert.opened"],
            secret=secret,
        )
        session.add_all([deals, every])
        session.flush()
        return org.id, deals.id, every.id


def _rows(database: Database) -> list[WebhookDelivery]:
    with database.sessions() as session:
        return list(session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)))


def test_one_row_per_subscribed_webhook_in_the_callers_transaction(database: Database) -> None:
    org_id, deals, every = _org_with_hooks(database)
    with database.sessions.begin() as session:
        announce(session, org_id, "deal.won", {"deal_id": 7})
        announce(session, org_id, "alert.opened", {"alert_id": 1})
        announce(session, org_id, "deal.lost", {"deal_id": 8})  # nobody listens
    rows = _rows(database)
    assert [(r.webhook_id, r.event, r.seq) for r in rows] == [
        (deals, "deal.won", 1),
        (every, "deal.won", 1),
        (every, "alert.opened", 2),
    ]
    assert rows[0].event_id == rows[1].event_id != rows[2].event_id
    body = json.loads(rows[0].body)
    assert body["type"] == "deal.won" and body["data"] == {"deal_id": 7}
    assert all(r.status == DeliveryStatus.pending for r in rows)
    # the head of each queue is due; the one behind waits for it
    assert [r.next_attempt_at is not None for r in rows] == [True, True, False]


def test_a_rolled_back_change_announces_nothing(database: Database) -> None:
    org_id, _, _ = _org_with_hooks(database)
    with pytest.raises(RuntimeError), database.sessions.begin() as session:
        announce(session, org_id, "deal.won", {"deal_id": 7})
        raise RuntimeError("the change failed")
    assert _rows(database) == []


def test_a_disabled_webhook_gets_nothing_and_unknown_events_are_refused(
    database: Database,
) -> None:
    org_id, deals, _ = _org_with_hooks(database)
    with database.sessions.begin() as session:
        session.get_one(Webhook, deals).status = WebhookStatus.disabled
    with database.sessions.begin() as session:
        announce(session, org_id, "deal.won", {"deal_id": 7})
        with pytest.raises(ValueError):
            announce(session, org_id, "deal.stolen", {})
    assert [r.webhook_id for r in _rows(database)] != [deals]
    assert deals not in [r.webhook_id for r in _rows(database)]
