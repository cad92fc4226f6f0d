"""The deliveries log is pruned: delivered and failed deliveries go the retention after they
settled, in batches, at most once an hour per organization; pending ones stay whatever their
age, and still go out in order. The migration gives existing rows the moment they settled."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any, cast

import pytest
from pydantic import ValidationError
from sqlalchemy import Engine, Table, insert, inspect, select

from app.config import Settings, settings
from app.db import Database, session_scope
from app.models import Organization, utcnow
from app.webhooks import delivery, prune
from app.webhooks.models import Webhook, WebhookDelivery
from app.webhooks.outbox import body_of, new_event_id
from tests import test_migrations as migrations
from tests.api import Org, make_org
from tests.webhooks.receiver import Receiver

DAY = timedelta(days=1)
engine = migrations.engine  # an empty database of its own, on each backend


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    receiver.down()


@pytest.fixture(autouse=True)
def fresh_throttle(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test's first delivery tick looks for pruning, as a new process's would."""
    monkeypatch.setattr(prune, "THROTTLE", prune.Throttle())


def subscribe(org: Org, url: str = "https://hooks.acme.example/tally") -> int:
    body = {"url": url, "events": ["deal.won", "deal.lost"]}
    response = org.client.post("/api/v1/webhooks", json=body, headers=org.as_admin())
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


def seed(webhook_id: int, *rows: tuple[str, datetime | None], now: datetime) -> list[int]:
    """Deliveries of the webhook, numbered after its last: (status, when it settled); the first
    pending one is the head of the queue (due now). Their ids."""
    ids = []
    with session_scope() as session:
        hook = session.get_one(Webhook, webhook_id)
        head = True
        for status, settled in rows:
            hook.last_seq += 1
            pending = status == "pending"
            row = WebhookDelivery(
                org_id=hook.org_id,
                webhook_id=webhook_id,
                seq=hook.last_seq,
                event_id=new_event_id(),
                event="deal.won",
                body=body_of("deal.won", {"n": hook.last_seq}, now),
                status=status,
                attempts=0 if pending else 1,
                next_attempt_at=now if pending and head else None,
                delivered_at=settled if status == "delivered" else None,
                settled_at=settled,
                created_at=(settled or now) - timedelta(hours=1),
            )
            head = head and not pending
            session.add(row)
            session.flush()
            ids.append(row.id)
    return ids


def log(org: Org, webhook_id: int) -> list[dict[str, Any]]:
    """The deliveries log as an admin reads it, oldest first."""
    response = org.client.get(f"/api/v1/webhooks/{webhook_id}/deliveries", headers=org.as_admin())
    assert response.status_code == 200, response.text
    return list(reversed(response.json()["items"]))


def remaining() -> int:
    with session_scope() as session:
        return len(session.scalars(select(WebhookDelivery.id)).all())


def test_old_settled_deliveries_go_recent_and_pending_ones_stay_and_go_out_in_order(
    org: Org, database: Database, receiver: Receiver
) -> None:
    receiver.up()
    hook = subscribe(org, receiver.url)
    now = utcnow()
    _, _, recent, first, second = seed(
        hook,
        ("delivered", now - 40 * DAY),
        ("failed", now - 31 * DAY),
        ("delivered", now - 29 * DAY),
        # waiting behind a long outage: older than any retention, still pending
        ("pending", None),
        ("pending", None),
        now=now - 90 * DAY,
    )
    other = make_org(org.client, name="Globex", domains=("globex.example",))
    elsewhere = subscribe(other)
    seed(elsewhere, ("delivered", now - 31 * DAY), now=now)

    assert prune.run(now) == 3
    rows = log(org, hook)
    assert [r["id"] for r in rows] == [recent, first, second]
    assert [r["status"] for r in rows] == ["delivered", "pending", "pending"]
    assert log(other, elsewhere) == []

    # the queue behind the pruned rows goes out as before: the head, then the next
    assert delivery.tick() == 2
    assert [b["data"]["n"] for b in receiver.bodies()] == [4, 5]
    assert [r["status"] for r in log(org, hook)] == ["delivered"] * 3


def test_a_backlog_larger_than_a_batch_goes_over_runs_each_org_at_most_hourly(
    org: Org, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(prune, "BATCH", 4)
    hook = subscribe(org)
    now = utcnow()
    seed(hook, *[("delivered", now - 60 * DAY)] * 10, ("pending", None), now=now)

    # no time left after the first batch: the rest waits for the next rounds
    assert prune.run(now, budget=0) == 4
    with session_scope() as session:
        assert prune.due_orgs(session, now) == [org.id]
    assert prune.run(now, budget=0) == 4
    assert prune.run(now, budget=0) == 2
    assert remaining() == 1  # the pending one

    # done: not again within the hour, whatever becomes old meanwhile
    seed(hook, ("failed", now - 60 * DAY), now=now)
    assert prune.run(now + timedelta(minutes=59)) == 0
    assert prune.run(now + timedelta(minutes=61)) == 1

    # with time enough, one run takes the whole backlog, a batch per transaction
    seed(hook, *[("failed", now - 60 * DAY)] * 9, now=now)
    assert prune.run(now + timedelta(hours=3)) == 9
    assert remaining() == 1


def test_the_retention_setting_is_honoured(
    org: Org, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "webhook_retention_days", 3)
    hook = subscribe(org)
    now = utcnow()
    _, kept = seed(hook, ("delivered", now - 4 * DAY), ("failed", now - 2 * DAY), now=now)
    assert prune.run(now) == 1
    assert [r["id"] for r in log(org, hook)] == [kept]


def test_the_setting_is_read_from_the_environment_and_at_least_a_day(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("TALLY_WEBHOOK_RETENTION_DAYS", raising=False)
    assert Settings().webhook_retention_days == 30
    monkeypatch.setenv("TALLY_WEBHOOK_RETENTION_DAYS", "7")
    assert Settings().webhook_retention_days == 7
    monkeypatch.setenv("TALLY_WEBHOOK_RETENTION_DAYS", "0")
    with pytest.raises(ValidationError, match="webhook_retention_days"):
        Settings()


def close(org: Org, status: str) -> None:
    deal = org.deal(org.users["ana@acme.example"]["id"])
    answer = org.client.patch(
        f"/api/v1/deals/{deal['id']}", json={"status": status}, headers=org.as_admin()
    )
    assert answer.status_code == 200, answer.text


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[datetime]:
    """The delivery job's clock (it prunes by it too), moved by the test; announcements are
    dated by the wall clock."""
    now = [utcnow()]
    monkeypatch.setattr(delivery, "utcnow", lambda: now[0])
    return now


def test_the_delivery_job_prunes_a_month_after_a_delivery_settled(
    org: Org, database: Database, receiver: Receiver, clock: list[datetime]
) -> None:
    """Delivered at once, a delivery goes a month later; one announced then but given up only
    a month on (the receiver failing meanwhile) is kept a month from its failure."""
    receiver.up()
    hook = subscribe(org, receiver.url)
    close(org, "won")
    clock[0] = utcnow()  # after the announcement, which the wall clock dated
    assert delivery.tick() == 1
    receiver.answer = 503
    close(org, "lost")
    clock[0] = utcnow()
    assert delivery.tick() == 1
    clock[0] += 31 * DAY
    assert delivery.tick() == 1  # its retry, past a day: failed for good, then the pruning
    [row] = log(org, hook)
    assert (row["event"], row["status"], row["attempts"]) == ("deal.lost", "failed", 2)
    clock[0] += 29 * DAY
    assert delivery.tick() == 0 and len(log(org, hook)) == 1
    clock[0] += 2 * DAY
    assert delivery.tick() == 0 and log(org, hook) == []


def test_what_410_gone_fails_unsent_is_settled_and_pruned_too(
    org: Org, database: Database, receiver: Receiver, clock: list[datetime]
) -> None:
    receiver.answer = 410
    receiver.up()
    hook = subscribe(org, receiver.url)
    close(org, "won")
    close(org, "lost")
    clock[0] = utcnow()
    assert delivery.tick() == 1
    assert [(r["status"], r["attempts"]) for r in log(org, hook)] == [("failed", 1), ("failed", 0)]
    clock[0] += 31 * DAY
    assert delivery.tick() == 0 and log(org, hook) == []


def test_the_migration_gives_settled_rows_their_moment_and_goes_back(engine: Engine) -> None:
    migrations.run(engine, "upgrade", "0018")
    at = utcnow().replace(microsecond=0)
    orgs, hooks = cast(Table, Organization.__table__), cast(Table, Webhook.__table__)
    rows = cast(Table, WebhookDelivery.__table__)
    delivered, attempted, announced = at - 3 * DAY, at - 2 * DAY, at - DAY
    with engine.begin() as connection:
        org_id = connection.execute(
            insert(orgs).values(name="Acme", timezone="UTC").returning(orgs.c.id)
        ).scalar_one()
        hook_id = connection.execute(
            insert(hooks)
            .values(
                org_id=org_id, url="https://h.example/", events=[], secret=b"x", status="active"
            )
            .returning(hooks.c.id)
        ).scalar_one()
        common = {"org_id": org_id, "webhook_id": hook_id, "event": "deal.won", "body": "{}"}
        for seq, status, attempts, last, done in [
            (1, "delivered", 1, delivered, delivered),
            (2, "failed", 8, attempted, None),
            (3, "failed", 0, None, None),  # failed unsent behind a 410 Gone
            (4, "pending", 1, attempted, None),
        ]:
            connection.execute(
                insert(rows).values(
                    **common,
                    seq=seq,
                    event_id=f"msg_{seq}",
                    status=status,
                    attempts=attempts,
                    last_attempt_at=last,
                    delivered_at=done,
                    created_at=announced - 30 * DAY if seq < 4 else announced,
                )
            )
    migrations.run(engine, "upgrade", "0019")
    with engine.connect() as connection:
        settled = connection.execute(select(rows.c.settled_at).order_by(rows.c.seq)).scalars()
        assert list(settled) == [delivered, attempted, announced - 30 * DAY, None]

    migrations.run(engine, "downgrade", "0018")
    inspector = inspect(engine)
    assert "settled_at" not in {c["name"] for c in inspector.get_columns("webhook_deliveries")}
    indexes = {i["name"] for i in inspector.get_indexes("webhook_deliveries")}
    assert "ix_webhook_deliveries_org_id" in indexes
    assert "ix_webhook_deliveries_settled" not in indexes
    unique = inspector.get_unique_constraints("webhook_deliveries")
    assert ["webhook_id", "seq"] in [u["column_names"] for u in unique]
    with engine.connect() as connection:
        assert len(connection.execute(select(rows.c.id)).all()) == 4
