"""Microsoft 365 end to end against the local emulator: consent through the API, the real
worker and runner sync, counts and states read back through the API. SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from app.config import settings
from app.connections import push_microsoft
from app.db import session_scope
from app.models import Connection
from app.security import decrypt_secret
from app.sync.worker import SyncWorker
from tests.api import Org, make_org
from tests.emulators.microsoft import MicrosoftEmulator
from tests.fakes import interrupt_syncs, raising

NOW = datetime.now(UTC).replace(microsecond=0)
ANA, BOB = "ana@acme.example", "bob@acme.example"


@pytest.fixture
def ms(monkeypatch: pytest.MonkeyPatch) -> Iterator[MicrosoftEmulator]:
    emulator = MicrosoftEmulator().start()
    monkeypatch.setattr(settings, "microsoft_client_id", emulator.client_id)
    monkeypatch.setattr(settings, "microsoft_client_secret", SecretStr(emulator.client_secret))
    monkeypatch.setattr(settings, "microsoft_authority", emulator.authority)
    monkeypatch.setattr(settings, "microsoft_graph_url", emulator.graph)
    monkeypatch.setattr(settings, "microsoft_ca_bundle", str(emulator.ca_path))
    monkeypatch.setattr(settings, "microsoft_max_wait_seconds", 0.0)
    monkeypatch.setattr(settings, "public_url", "https://tally.test")
    yield emulator
    emulator.stop()


class M365:
    """Tally users with Microsoft 365 mailboxes in the emulator."""

    def __init__(self, org: Org, ms: MicrosoftEmulator) -> None:
        self.org, self.ms = org, ms
        self.connections: dict[str, int] = {}

    def connect(self, email: str, *, aliases: tuple[str, ...] = ()) -> dict[str, Any]:
        if email not in self.ms.users:
            self.ms.add_user(email, aliases=aliases)
        client = self.org.client
        started = client.get(
            "/api/v1/connections/oauth/microsoft/start", headers=self.org.as_user(email)
        )
        assert started.status_code == 200, started.text
        back = urlsplit(self.ms.consent(started.json()["authorization_url"]))
        assert f"{back.scheme}://{back.netloc}" == "https://tally.test"
        answer = client.get(f"{back.path}?{back.query}")
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        self.connections[email] = body["connections"][0]["id"]
        return body

    def sync(self, *emails: str) -> None:
        self.org.sync(*(self.connections[email] for email in emails))

    def connection(self, email: str) -> dict[str, Any]:
        return self.org.connection(self.connections[email])

    def activities(self, email: str | None = None) -> list[tuple[str, str]]:
        found: list[tuple[str, str]] = []
        after = None
        while True:
            query = f"limit=1000&user_id={self.org.users[email]['id']}" if email else "limit=1000"
            if after:
                query += f"&cursor={after}"
            page = self.org.client.get(
                f"/api/v1/activities?{query}", headers=self.org.as_admin()
            ).json()
            found += [(a["type"], a["subject"]) for a in page["items"]]
            after = page.get("next_cursor")
            if not after or not page["items"]:
                return sorted(found)

    def stored(self, email: str) -> Connection:
        with session_scope() as session:
            connection = session.get_one(Connection, self.connections[email])
            session.expunge(connection)
            return connection


@pytest.fixture
def m365(client: TestClient, ms: MicrosoftEmulator) -> M365:
    org = make_org(client)
    org.user(ANA, aliases=[])
    org.user(BOB)
    return M365(org, ms)


def inbound(ms: MicrosoftEmulator, count: int, *, to: str = ANA, prefix: str = "in") -> None:
    for i in range(count):
        ms.deliver(
            to,
            sender=f"Client {i} <client{i}@northwind.example>",
            to=[to],
            subject=f"{prefix} {i}",
            when=NOW - timedelta(minutes=i + 5),
        )


def test_connect_backfill_then_changes(m365: M365, ms: MicrosoftEmulator) -> None:
    body = m365.connect(ANA, aliases=("a.silva@acme.example",))
    assert body["account"] == ANA and body["aliases_added"] == ["a.silva@acme.example"]
    assert [c["provider"] for c in body["connections"]] == ["microsoft"]
    inbound(ms, 1500)
    for i in range(400):
        ms.deliver(
            ANA,
            "sentitems",
            sender="a.silva@acme.example",  # sent from the alias learnt at consent
            to=[f"lead{i}@globex.example"],
            subject=f"out {i}",
        )
    ms.deliver(ANA, sender="noreply@northwind.example", to=[ANA], subject="automated")
    ms.deliver(ANA, sender="x@northwind.example", to=[ANA], subject="draft", draft=True)
    ms.deliver(
        ANA,
        sender="joe@northwind.example",
        to=[ANA],
        subject="Invitation: demo",
        odata_type="#microsoft.graph.eventMessageRequest",
    )
    ms.add_event(
        ANA,
        subject="Weekly pipeline review",
        start=NOW - timedelta(days=21),
        weekly=4,
        attendees=[("joe@northwind.example", "accepted")],
        online=True,
    )
    m365.sync(ANA)
    connection = m365.connection(ANA)
    assert connection["status"] == "idle", connection["last_error"]
    assert connection["last_error"] is None
    activities = m365.activities()
    kinds = [kind for kind, _ in activities]
    assert kinds.count("email_received") == 1500 and kinds.count("email_sent") == 400
    assert not {s for _, s in activities} & {"automated", "draft", "Invitation: demo"}
    assert kinds.count("meeting_held") == 3  # three of the four occurrences have ended
    assert kinds.count("meeting_scheduled") == 4
    stored = m365.stored(ANA)
    assert set(stored.cursors) >= {"microsoft_mail", "microsoft_calendar"}

    inbound(ms, 3, prefix="new")
    m365.sync(ANA)
    after = m365.activities()
    assert len(after) == len(activities) + 3
    m365.sync(ANA)  # nothing new: nothing changes
    assert m365.activities() == after


def test_reconnect_reuses_the_connection(m365: M365, ms: MicrosoftEmulator) -> None:
    first = m365.connect(ANA)["connections"][0]
    inbound(ms, 5)
    m365.sync(ANA)
    again = m365.connect(ANA)["connections"][0]
    assert again["id"] == first["id"]
    listed = m365.org.client.get(
        f"/api/v1/connections?user_id={m365.org.users[ANA]['id']}", headers=m365.org.as_admin()
    ).json()["items"]
    assert [c["id"] for c in listed] == [first["id"]]
    m365.sync(ANA)
    assert len(m365.activities()) == 5


def test_a_revoked_consent_needs_a_reconnect_with_a_readable_message(
    m365: M365, ms: MicrosoftEmulator
) -> None:
    m365.connect(ANA)
    inbound(ms, 3)
    m365.sync(ANA)
    ms.revoke(ANA, 50173)  # the password was reset: refresh tokens and access tokens die
    inbound(ms, 2, prefix="later")
    m365.sync(ANA)
    connection = m365.connection(ANA)
    assert connection["status"] == "needs_reconnect"
    message = connection["last_error"]
    assert message.startswith("Reconnect needed: ")
    assert "password was changed or reset" in message and "AADSTS50173" in message
    text = json.dumps(connection)
    assert "rt-" not in text and "at-" not in text and "token_cache" not in text
    SyncWorker(1).drain()  # not retried by itself
    assert m365.connection(ANA)["status"] == "needs_reconnect"
    ms.user(ANA).revoked = None  # the user signs in again
    m365.connect(ANA)
    SyncWorker(1).drain()
    assert m365.connection(ANA)["status"] == "idle"
    assert len(m365.activities()) == 5


def test_the_rotated_token_cache_is_written_back_and_used(
    m365: M365, ms: MicrosoftEmulator
) -> None:
    m365.connect(ANA)
    inbound(ms, 2)
    m365.sync(ANA)
    first = decrypt_secret(m365.stored(ANA).secret or "")["token_cache"]
    ms.expire_access_tokens()  # the next sync must use the refresh token, which rotates
    m365.sync(ANA)
    second = decrypt_secret(m365.stored(ANA).secret or "")["token_cache"]
    assert second != first
    rotated = [rt for rt, owner in ms.refresh_tokens.items() if owner == ANA]
    assert len(rotated) == 1 and rotated[0] in second and rotated[0] not in first
    ms.expire_access_tokens()
    inbound(ms, 1, prefix="third")
    m365.sync(ANA)  # works only with the written-back refresh token (the old one is spent)
    assert ms.grants[-1] == ("refresh_token", rotated[0])
    assert m365.connection(ANA)["status"] == "idle"
    assert len(m365.activities()) == 3


def test_throttling_mid_backfill_waits_as_asked_and_loses_nothing(
    m365: M365, ms: MicrosoftEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "microsoft_page_size", 50)
    m365.connect(ANA)
    inbound(ms, 400)
    ms.throttle_after(ANA, 3, 120)  # three pages, then 429 Retry-After: 120
    m365.sync(ANA)
    connection = m365.connection(ANA)
    assert connection["status"] == "idle"
    assert "throttling" in connection["last_error"] and "120" in connection["last_error"]
    due = datetime.fromisoformat(connection["next_sync_at"])
    assert timedelta(seconds=100) < due - datetime.now(UTC) <= timedelta(seconds=121)
    assert len(m365.activities()) == 150  # the pages before the 429 are kept
    SyncWorker(1).drain()  # not due yet: nothing happens
    assert len(m365.activities()) == 150
    m365.sync(ANA)  # (here: asked for; otherwise after 120 s) resumes from the next link
    assert len(m365.activities()) == 400
    assert m365.connection(ANA)["last_error"] is None


def test_a_crash_between_pages_loses_and_doubles_nothing(
    m365: M365, ms: MicrosoftEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "microsoft_page_size", 20)
    m365.connect(ANA)
    inbound(ms, 90)
    restore = interrupt_syncs(
        monkeypatch, after_pages=2, then=raising(RuntimeError("the process died"))
    )
    m365.sync(ANA)
    assert m365.connection(ANA)["status"] == "error"
    assert len(m365.activities()) == 40
    restore()
    m365.sync(ANA)
    activities = m365.activities()
    assert len(activities) == 90 and len(set(activities)) == 90
    assert m365.connection(ANA)["stats"]["messages_seen"] == 90


def test_a_lost_sync_state_restarts_the_folder_without_duplicates(
    m365: M365, ms: MicrosoftEmulator
) -> None:
    m365.connect(ANA)
    inbound(ms, 300)
    m365.sync(ANA)
    ms.expire_sync_states(ANA)  # every delta link of the mailbox now answers 410
    inbound(ms, 2, prefix="after")
    m365.sync(ANA)
    assert m365.connection(ANA)["status"] == "idle"
    assert len(m365.activities()) == 302
    assert m365.connection(ANA)["stats"]["messages_seen"] == 302


def test_the_same_message_in_two_mailboxes_is_one_activity(
    m365: M365, ms: MicrosoftEmulator
) -> None:
    m365.connect(ANA)
    m365.connect(BOB)
    for email, folder in ((ANA, "sentitems"), (BOB, "inbox")):
        ms.deliver(
            email,
            folder,
            sender=ANA,
            to=["joe@northwind.example"],
            cc=[BOB],
            subject="Offer",
            message_id="offer-1",
        )
    m365.sync(BOB, ANA)
    assert m365.activities() == [("email_sent", "Offer")]
    assert m365.activities(ANA) == [("email_sent", "Offer")]


def test_microsoft_is_not_created_with_a_password(m365: M365) -> None:
    response = m365.org.client.post(
        "/api/v1/connections",
        headers=m365.org.as_admin(),
        json={"user_id": m365.org.users[ANA]["id"], "provider": "microsoft", "config": {}},
    )
    assert response.status_code == 400
    assert "/connections/oauth/microsoft/start" in response.json()["error"]["message"]


def test_push_marks_the_connection_due_and_never_syncs_by_itself(
    m365: M365, ms: MicrosoftEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "microsoft_push_secret", SecretStr("push-secret"))
    client = m365.org.client
    handshake = client.post(  # as Graph sends it: an empty text/plain body
        "/api/v1/push/microsoft?validationToken=abc%20123",
        content=b"",
        headers={"Content-Type": "text/plain; charset=utf-8"},
    )
    assert handshake.status_code == 200 and handshake.text == "abc 123"
    assert handshake.headers["content-type"].startswith("text/plain")

    m365.connect(ANA)
    m365.sync(ANA)  # the sync subscribes, with the connection's clientState
    connection_id = m365.connections[ANA]
    state = push_microsoft.client_state(connection_id)
    made = sorted(s["resource"] for s in ms.subscriptions.values())
    assert made == [
        "me/events",
        "me/mailFolders('inbox')/messages",
        "me/mailFolders('sentitems')/messages",
    ]
    assert {s["clientState"] for s in ms.subscriptions.values()} == {state}
    assert {s["notificationUrl"] for s in ms.subscriptions.values()} == {
        "https://tally.test/api/v1/push/microsoft"
    }
    assert m365.connection(ANA)["next_sync_at"] > NOW.isoformat()

    bad = client.post(
        "/api/v1/push/microsoft",
        json={"value": [{"subscriptionId": "x", "clientState": f"{connection_id}.forged"}]},
    )
    assert bad.status_code == 403
    assert bad.json()["error"]["code"] == "forbidden" and bad.json()["error"]["message"]
    notification = {"subscriptionId": "x", "clientState": state, "changeType": "created"}
    good = client.post("/api/v1/push/microsoft", json={"value": [notification]})
    assert good.status_code == 200 and good.text == ""
    due = datetime.fromisoformat(m365.connection(ANA)["next_sync_at"])
    assert due <= datetime.now(UTC)
    assert m365.activities() == []  # a trigger only

    ms.deliver(ANA, sender="joe@northwind.example", to=[ANA], subject="pushed")
    SyncWorker(1).drain()
    assert m365.activities() == [("email_received", "pushed")]

    lifecycle = {**notification, "lifecycleEvent": "subscriptionRemoved"}
    ms.subscriptions.clear()
    assert client.post("/api/v1/push/microsoft", json={"value": [lifecycle]}).status_code == 200
    SyncWorker(1).drain()  # due now, and asked to renew: the subscriptions come back
    assert len(ms.subscriptions) == 3


def test_push_never_overrides_a_retry_after(
    m365: M365, ms: MicrosoftEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "microsoft_push_secret", SecretStr("push-secret"))
    m365.connect(ANA)
    inbound(ms, 3)
    ms.throttle(ANA, 300)
    m365.sync(ANA)
    waiting = m365.connection(ANA)["next_sync_at"]
    state = push_microsoft.client_state(m365.connections[ANA])
    answer = m365.org.client.post(
        "/api/v1/push/microsoft", json={"value": [{"clientState": state}]}
    )
    assert answer.status_code == 200
    assert m365.connection(ANA)["next_sync_at"] == waiting


def test_calendar_backfill_and_changes_through_the_runner(
    m365: M365, ms: MicrosoftEmulator
) -> None:
    m365.connect(ANA)
    series = []
    for i in range(200):
        series.append(
            ms.add_event(
                ANA,
                subject=f"Demo {i}",
                start=NOW - timedelta(days=30, hours=i),
                weekly=6,
                attendees=[(f"c{i}@northwind.example", "accepted")],
                online=True,
            )
        )
    [invited] = ms.add_event(
        ANA,
        subject="Their demo",
        start=NOW - timedelta(days=2),
        organizer="joe@northwind.example",
        attendees=[(ANA, "accepted"), ("joe@northwind.example", "organizer")],
    )
    m365.sync(ANA)
    assert m365.connection(ANA)["status"] == "idle", m365.connection(ANA)["last_error"]
    kinds = [kind for kind, _ in m365.activities()]
    ended = 1 + sum(
        1
        for i in range(200)
        for n in range(6)
        if NOW - timedelta(days=30, hours=i) + timedelta(weeks=n, minutes=30) <= NOW
    )
    assert kinds.count("meeting_held") == ended
    assert kinds.count("meeting_scheduled") == 1200  # the one joe organized is his
    assert m365.connection(ANA)["stats"]["events_seen"] == 1201

    ms.delete(ANA, series[0][0])  # an occurrence that took place is cancelled after all
    ms.respond(ANA, invited, ANA, "declined")  # declined after the fact
    m365.sync(ANA)
    kinds = [kind for kind, _ in m365.activities()]
    assert kinds.count("meeting_held") == ended - 2
