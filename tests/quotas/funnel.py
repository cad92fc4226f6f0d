"""A small sales history written as a frontend would: deals through POST /deals, activities
through the ORM with their rollups (no API writes activities). Shared by the quota tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fastapi.testclient import TestClient

from app.db import session_scope
from tests.api import Org, make_org
from tests.metrics import facts


@dataclass
class Funnel:
    org: Org
    team: int
    ids: dict[str, int]

    def get(self, path: str, who: str = "mia", **params: Any) -> Any:
        headers = self.org.as_admin() if who == "admin" else self.org.as_user(f"{who}@acme.example")
        given = {k: v for k, v in params.items() if v is not None}
        return self.org.client.get(f"/api/v1{path}", params=given, headers=headers)

    def ok(self, path: str, who: str = "mia", **params: Any) -> Any:
        response = self.get(path, who, **params)
        assert response.status_code == 200, response.text
        return response.json()

    def deal(self, owner: str, value: float | str, **fields: Any) -> dict[str, Any]:
        body = {"name": "Deal", "owner_id": self.ids[owner], "value": value, **fields}
        if body.get("status", "open") == "open":
            body.setdefault("stage", "Proposal")
            body.setdefault("created_at", "2024-05-05T10:00:00+00:00")
        response = self.org.client.post("/api/v1/deals", json=body, headers=self.org.as_admin())
        assert response.status_code == 201, response.text
        result: dict[str, Any] = response.json()
        return result

    def won(self, owner: str, value: float | str, created: str, closed: str, **extra: Any) -> None:
        self.deal(
            owner,
            value,
            status="won",
            created_at=f"{created}T10:00:00+00:00",
            closed_at=f"{closed}T10:00:00+00:00",
            **extra,
        )

    def lost(self, owner: str, created: str, closed: str) -> None:
        self.deal(
            owner,
            100,
            status="lost",
            created_at=f"{created}T10:00:00+00:00",
            closed_at=f"{closed}T10:00:00+00:00",
        )

    def activities(self, owner: str, kind: str, day: str, n: int, *contacts: str) -> None:
        with session_scope() as session:
            for i in range(n):
                when = facts.utc(f"{day}T09:{i % 60:02d}")
                facts.activity(session, self.org.id, self.ids[owner], kind, when, contacts)

    def quota(self, metric: str, target: float | str, **subject: Any) -> int:
        body = {
            "metric": metric,
            "period": "month",
            "target": target,
            "effective_from": "2024-01-01",
            **subject,
        }
        response = self.org.client.post("/api/v1/quotas", json=body, headers=self.org.as_admin())
        assert response.status_code == 201, response.text
        quota_id: int = response.json()["id"]
        return quota_id


def funnel(client: TestClient) -> Funnel:
    """Team A: manager Mia; reps Ann, Bob and Cid (Cid new, no history). Team B: Max, Dan."""
    org = make_org(client)
    mia = org.user("mia@acme.example", role="manager")
    max_ = org.user("max@acme.example", role="manager")
    team = org.team("A", manager_id=mia["id"])["id"]
    other = org.team("B", manager_id=max_["id"])["id"]
    ids = {"mia": mia["id"], "max": max_["id"]}
    for name in ("ann", "bob", "cid"):
        ids[name] = org.user(f"{name}@acme.example", team_id=team)["id"]
    ids["dan"] = org.user("dan@acme.example", team_id=other)["id"]
    ids["team_b"] = other
    return Funnel(org, team, ids)
