"""Helpers that set up organizations, teams and users through the API, as a frontend would."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fastapi.testclient import TestClient

ADMIN = {"Authorization": "Bearer test-admin-token"}


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@dataclass
class Org:
    client: TestClient
    id: int
    admin_key: str
    data: dict[str, Any]
    keys: dict[str, str] = field(default_factory=dict)  # user email -> API key
    users: dict[str, dict[str, Any]] = field(default_factory=dict)

    def as_admin(self) -> dict[str, str]:
        return auth(self.admin_key)

    def as_user(self, email: str) -> dict[str, str]:
        return auth(self.keys[email])

    def sync(self, *connection_ids: int) -> None:
        """Ask for these connections' sync as a user would, then run the worker until done."""
        from app.sync.worker import SyncWorker

        for connection_id in connection_ids:
            response = self.client.post(
                f"/api/v1/connections/{connection_id}/sync", headers=self.as_admin()
            )
            assert response.status_code == 202, response.text
        SyncWorker(2).drain()

    def connect(self, email: str, provider: str, config: dict[str, Any]) -> int:
        """Create the user's connection through the API, as an admin; its id."""
        body = {"user_id": self.users[email]["id"], "provider": provider, "config": config}
        response = self.client.post("/api/v1/connections", json=body, headers=self.as_admin())
        assert response.status_code == 201, response.text
        return int(response.json()["id"])

    def connection(self, connection_id: int) -> dict[str, Any]:
        response = self.client.get(f"/api/v1/connections/{connection_id}", headers=self.as_admin())
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def team(self, name: str, manager_id: int | None = None) -> dict[str, Any]:
        response = self.client.post(
            "/api/v1/teams", json={"name": name, "manager_id": manager_id}, headers=self.as_admin()
        )
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body

    def user(
        self,
        email: str,
        *,
        role: str = "rep",
        name: str | None = None,
        team_id: int | None = None,
        aliases: list[str] | None = None,
    ) -> dict[str, Any]:
        response = self.client.post(
            "/api/v1/users",
            json={
                "email": email,
                "name": name or email.split("@")[0].title(),
                "role": role,
                "team_id": team_id,
                "aliases": aliases or [],
            },
            headers=self.as_admin(),
        )
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        self.keys[email] = body["api_key"]
        self.users[email] = body
        return body

    def deal(
        self, owner_id: int, *, headers: dict[str, str] | None = None, **fields: Any
    ) -> dict[str, Any]:
        """POST /deals (as the admin unless `headers` says who): an open 1000 deal in the
        first stage of the default pipeline unless `fields` says otherwise."""
        body = {"name": "Deal", "owner_id": owner_id, "value": 1000, "stage": "Qualification"}
        body.update(fields)
        response = self.client.post("/api/v1/deals", json=body, headers=headers or self.as_admin())
        assert response.status_code == 201, response.text
        deal: dict[str, Any] = response.json()
        return deal

    def admin_id(self) -> int:
        response = self.client.get("/api/v1/users/me", headers=self.as_admin())
        assert response.status_code == 200, response.text
        return int(response.json()["id"])


def make_org(
    client: TestClient,
    *,
    name: str = "Acme",
    domains: tuple[str, ...] = ("acme.example",),
    timezone: str = "Europe/Brussels",
    **extra: Any,
) -> Org:
    response = client.post(
        "/api/v1/orgs",
        json={"name": name, "domains": list(domains), "timezone": timezone, **extra},
        headers=ADMIN,
    )
    assert response.status_code == 201, response.text
    body = response.json()
    return Org(client=client, id=body["id"], admin_key=body["admin_api_key"], data=body)
