"""A Slack workspace for the sync tests: the emulator (tests/emulators/slack.py) with Ana
(a Tally admin), a colleague without Tally and a customer, one shared channel, Tally's
settings pointed at it, and an organization that installs the app through the API."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from httpx2 import Response
from pydantic import SecretStr

from app.config import settings
from tests.api import Org, make_org
from tests.emulators.slack import SlackEmulator

WINDOW = 0.6  # Slack's minute, scaled (tests/connectors/test_slack.py)
ANA = "ana@acme.example"
HOUR = 3600.0


@pytest.fixture
def slack(monkeypatch: pytest.MonkeyPatch) -> Iterator[SlackEmulator]:
    emulator = SlackEmulator(window_seconds=WINDOW).start()
    emulator.add_user("UANA", ANA)
    emulator.add_user("UCARL", "carl@acme.example")  # a colleague without Tally
    emulator.add_user("UBOB", "bob@client.example", team_id="TCLIENT")
    emulator.add_channel("C1", "public", ["UBOT", "UANA", "UCARL", "UBOB"], name="x", ext=True)
    for name, value in {
        "slack_client_id": emulator.client_id,
        "slack_client_secret": SecretStr(emulator.client_secret),
        "slack_api_url": emulator.url,
        "slack_window_seconds": WINDOW,
        "slack_max_wait_seconds": 2.0,
    }.items():
        monkeypatch.setattr(settings, name, value)
    yield emulator
    emulator.stop()


class Workspace:
    def __init__(self, client: TestClient, slack: SlackEmulator) -> None:
        self.org: Org = make_org(client)
        self.org.user(ANA, role="admin")
        self.slack = slack
        self.connection_id = 0

    def install(self) -> dict[str, Any]:
        """Ana, an admin, installs the app: start, Slack's consent (a code), the callback."""
        back = self.consent(ANA, "UANA")
        assert back.status_code == 200, back.text
        body: dict[str, Any] = back.json()
        self.connection_id = body["connections"][0]["id"]
        return body

    def consent(self, email: str, slack_user: str, *, user_scopes: bool = True) -> Response:
        """The Tally user `email` installs the app as the Slack user `slack_user`."""
        started = self.org.client.get(
            "/api/v1/connections/oauth/slack/start", headers=self.org.as_user(email)
        )
        assert started.status_code == 200, started.text
        consent = started.json()["authorization_url"]
        query = parse_qs(urlsplit(consent).query)
        # the tokens can do exactly what Tally asked for: the minimum scopes are enough
        code = self.slack.grant(slack_user, user_scopes=user_scopes, consent=consent)
        return self.org.client.get(
            "/api/v1/connections/oauth/slack/callback",
            params={"code": code, "state": query["state"][0]},
        )

    def talk(self, start: float, runs: int, per_run: int = 2) -> None:
        """`runs` conversations 8 h apart (over §11's 240 min gap), each Bob then Ana."""
        for run in range(runs):
            for i in range(per_run):
                self.slack.post("C1", "UBOB" if i % 2 == 0 else "UANA", start + run * 8 * HOUR + i)

    def conversations(self) -> int:
        user = self.org.users[ANA]["id"]
        items = self.org.client.get(
            f"/api/v1/activities?user_id={user}&limit=1000", headers=self.org.as_admin()
        ).json()["items"]
        return sum(1 for a in items if a["type"] == "chat_conversation")

    def connection(self) -> dict[str, Any]:
        return self.org.connection(self.connection_id)


@pytest.fixture
def workspace(client: TestClient, slack: SlackEmulator) -> Workspace:
    return Workspace(client, slack)
