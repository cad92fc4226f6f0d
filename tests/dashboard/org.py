"""A generated organization for the dashboard: two teams, their managers and reps, quotas,
mail and chat activity and deals, made through the API (and the ingest paths for the mail
and the chat).

East (manager Mia): Ana, on pace on her e-mail quota, and Abe, far behind on his. West
(manager Max): Bob. Every name and deal name is distinct, so a page that shows one person
something of another's can be caught by its text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient

from app.alerts import job as alert_job
from app.chat import service as chat
from app.db import session_scope
from app.models import Connection
from connectors.chat import ChatMessage
from tests.api import Org, make_org
from tests.factories import message
from tests.world import World

DOMAIN = "acme.example"


@dataclass
class Generated:
    org: Org
    ids: dict[str, int] = field(default_factory=dict)  # users and teams by short name
    deals: dict[str, dict[str, Any]] = field(default_factory=dict)  # by name

    def email(self, name: str) -> str:
        return f"{name}@{DOMAIN}"

    def key(self, name: str) -> str:
        return self.org.keys[self.email(name)]

    def headers(self, name: str) -> dict[str, str]:
        return self.org.as_user(self.email(name))

    def quota(self, metric: str, period: str, target: int, **subject: int) -> None:
        body = {"metric": metric, "period": period, "target": target, **subject}
        body["effective_from"] = "2020-01-01"
        answer = self.org.client.post("/api/v1/quotas", json=body, headers=self.org.as_admin())
        assert answer.status_code == 201, answer.text


NAMES = {"mia": "Mia Manager", "max": "Max Westley", "ana": "Ana Silva", "abe": "Abe Okafor",
         "bob": "Bob Westwood"}  # fmt: skip
OTHER_PEOPLE = {"ana": ["Abe Okafor", "Bob Westwood", "Max Westley"]}


def generate(client: TestClient, now: datetime | None = None) -> Generated:
    now = now or datetime.now(UTC)
    world = Generated(make_org(client, domains=(DOMAIN,)))
    org = world.org
    for manager in ("mia", "max"):
        made = org.user(world.email(manager), role="manager", name=NAMES[manager])
        world.ids[manager] = made["id"]
    world.ids["east"] = org.team("East", manager_id=world.ids["mia"])["id"]
    world.ids["west"] = org.team("West", manager_id=world.ids["max"])["id"]
    for rep, team in (("ana", "east"), ("abe", "east"), ("bob", "west")):
        world.ids[rep] = org.user(world.email(rep), name=NAMES[rep], team_id=world.ids[team])["id"]

    world.quota("revenue", "quarter", 20000, team_id=world.ids["east"])
    world.quota("emails_sent", "month", 10, team_id=world.ids["east"])
    world.quota("emails_sent", "month", 2, user_id=world.ids["ana"])
    world.quota("revenue", "quarter", 5000, user_id=world.ids["ana"])
    world.quota("emails_sent", "month", 500, user_id=world.ids["abe"])
    world.quota("emails_sent", "month", 3, user_id=world.ids["bob"])
    world.quota("chat_conversations", "month", 4, user_id=world.ids["ana"])

    mail = _connect(world, "ana", "abe", "bob")
    sent = {"ana": [2, 3, 4, 5, 40 * 24 * 60, 41 * 24 * 60], "abe": [2, 70 * 24 * 60],
            "bob": [2, 3]}  # fmt: skip
    for rep, minutes in sent.items():
        mail.ingest(
            rep,
            *(
                message(
                    world.email(rep),
                    (f"buyer{i}@northwind.example",),
                    folder_role="sent",
                    date=now - timedelta(minutes=m),
                    subject=f"{rep}-{i}",
                )
                for i, m in enumerate(minutes)
            ),
        )

    _chat(world, "ana", now, runs=3)

    today = now.date().isoformat()
    created = (now - timedelta(days=1)).isoformat()
    for name, owner, fields in (
        ("Ana Northwind renewal", "ana", {"value": 8000, "stage": "Proposal"}),
        ("Ana Cold pilot", "ana", {"value": 2000, "stage": "Qualification",
                                   "created_at": (now - timedelta(days=40)).isoformat()}),
        ("Ana Won upgrade", "ana", {"value": 3000, "status": "won",
                                    "closed_at": now.isoformat()}),
        ("Abe Globex expansion", "abe", {"value": 5000, "stage": "Negotiation"}),
        ("Abe Won add-on", "abe", {"value": 1500, "status": "won", "closed_at": now.isoformat()}),
        ("Bob Initech deal", "bob", {"value": 7000, "stage": "Discovery"}),
    ):  # fmt: skip
        body: dict[str, Any] = {"created_at": created, "expected_close_date": today, **fields}
        if body.get("status") == "won":
            body.pop("stage", None)
            body.pop("expected_close_date")
        world.deals[name] = org.deal(world.ids[owner], name=name, **body)
    # the alert job, as the workers run it: behind-pace quotas, the cold deal
    assert alert_job.tick() >= 1
    return world


def _chat(world: Generated, rep: str, now: datetime, *, runs: int) -> None:
    """`runs` chat conversations of the rep with a buyer (§11: a day apart, each a question
    and an answer), through the chat ingest as a chat tool would post them."""
    sent = [
        ChatMessage(f"{run}-{i}", sender, now - timedelta(days=run, minutes=30 - i))
        for run in range(runs)
        for i, sender in enumerate(("buyer@northwind.example", world.email(rep)))
    ]
    with session_scope() as session:
        chat.ingest(session, world.org.id, source="whatsapp", channel_id=rep, messages=sent)


def _connect(world: Generated, *names: str) -> World:
    connections = {}
    with session_scope() as session:
        for name in names:
            row = Connection(
                org_id=world.org.id,
                user_id=world.ids[name],
                provider="imap",
                config={"host": f"imap.{DOMAIN}"},
                cursors={},
            )
            session.add(row)
            session.flush()
            connections[name] = row.id
    return World(world.org.id, {n: world.ids[n] for n in names}, connections)
