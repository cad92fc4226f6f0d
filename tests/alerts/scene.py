"""A small organization where every kind of alert holds on 20 May 2024 at noon (Brussels), set
up as a frontend would (deals, quotas through the API) plus activities through the store.

Team A (manager Mia): Ann is behind on e-mails and short of pipeline, her one deal is going
cold; Bob stopped creating opportunities; Cid stopped working. Team B (manager Max): Dan's
connection needs reconnecting. Ann's two quotas are behind pace; every other kind holds for one
subject."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from app.alerts.evaluate import evaluate
from app.alerts.models import Alert
from app.alerts.reconcile import Summary
from app.db import session_scope
from app.models import Connection
from app.webhooks.models import Webhook, WebhookDelivery
from tests.metrics import facts
from tests.quotas.funnel import Funnel

NOW = facts.utc("2024-05-20T12:00")


@dataclass
class Scene:
    f: Funnel
    quotas: dict[str, int]
    deal: int
    connection: int
    webhook: int

    @property
    def org_id(self) -> int:
        return self.f.org.id

    def evaluate(self, now: datetime = NOW) -> Summary:
        with session_scope() as session:
            return evaluate(session, self.org_id, now=now)

    def open_alerts(self) -> dict[tuple[str, str], Alert]:
        with session_scope() as session:
            rows = session.scalars(
                select(Alert).where(Alert.org_id == self.org_id, Alert.resolved_at.is_(None))
            ).all()
            session.expunge_all()
        return {(r.kind, r.subject_key): r for r in rows}

    def all_alerts(self) -> list[Alert]:
        with session_scope() as session:
            rows = list(
                session.scalars(
                    select(Alert).where(Alert.org_id == self.org_id).order_by(Alert.id)
                ).all()
            )
            session.expunge_all()
        return rows

    def events(self) -> list[tuple[str, dict[str, Any]]]:
        import json

        with session_scope() as session:
            rows = session.execute(
                select(WebhookDelivery.event, WebhookDelivery.body)
                .where(WebhookDelivery.webhook_id == self.webhook)
                .order_by(WebhookDelivery.seq)
            ).all()
        return [(event, json.loads(body)["data"]) for event, body in rows]


def scene(f: Funnel) -> Scene:
    ids = f.ids
    quotas = {
        "emails": f.quota("emails_sent", 20, user_id=ids["ann"]),  # 5 sent: pace 0.40
        "revenue": f.quota("revenue", 6000, user_id=ids["ann"]),  # 1000 expected: coverage 0.17
    }
    f.activities("ann", "email_sent", "2024-05-02", 5)
    # Ann's deal: created 5 May, nobody in touch with its contact since: 15 days > 14
    deal = f.deal(
        "ann", 1000, stage="Proposal", expected_close_date="2024-05-25", name="Northwind renewal"
    )["id"]
    # Bob: 6 deals created in the 90 days before the last 30 (average 2), none since
    for day in ("2024-02-01", "2024-02-20", "2024-03-05", "2024-03-10", "2024-04-01", "2024-04-10"):
        moments = {"created_at": f"{day}T10:00:00+00:00", "closed_at": f"{day}T11:00:00+00:00"}
        f.deal("bob", 100, status="lost", **moments)
    # Cid: 6 e-mails a week for the 8 weeks before the last 7 days, none since
    start = NOW - timedelta(days=7 + 56)
    for week in range(8):
        day = (start + timedelta(days=7 * week + 1)).date().isoformat()
        f.activities("cid", "email_sent", day, 6)
    with session_scope() as session:
        row = Connection(
            org_id=f.org.id,
            user_id=ids["dan"],
            provider="gmail",
            status="needs_reconnect",
            config={},
            cursors={},
            last_error="the refresh token was revoked",
        )
        hook = Webhook(
            org_id=f.org.id,
            url="http://127.0.0.1:9/hook",
            events=["alert.opened", "alert.resolved", "quota.attained"],
            secret=b"x" * 32,
        )
        session.add_all([row, hook])
        session.flush()
        connection, webhook = row.id, hook.id
    return Scene(f, quotas, deal, connection, webhook)
