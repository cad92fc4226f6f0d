"""Google end to end: OAuth consent through the API, the worker syncs Gmail and Calendar from
the local Google emulator, failures end in states a person can read. SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from fastapi.testclient import TestClient
from pydantic import SecretStr

from app.config import settings
from app.connections import push_google
from app.db import session_scope
from app.models import Connection
from app.sync.worker import SyncWorker
from tests.api import Org, make_org
from tests.emulators.google import GoogleEmulator
from tests.fakes import interrupt_syncs, raising

NOW = datetime.now(UTC).replace(microsecond=0)
ANA, BOB = "ana@acme.example", "bob@acme.example"


@pytest.fixture
def google(monkeypatch: pytest.MonkeyPatch) -> Iterator[GoogleEmulator]:
    with GoogleEmulator() as emulator:
        monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")  # the emulator speaks plain http
        for name, value in {
            "google_client_id": emulator.client_id,
            "google_client_secret": SecretStr(emulator.client_secret),
            "google_api_url": emulator.url,
            "google_token_uri": emulator.url + "token",
            "google_auth_uri": emulator.url + "o/oauth2/auth",
            "google_quota_units_per_minute": 10_000_000,
            "google_calendar_requests_per_minute": 100_000,
            "google_push_token": SecretStr("push-secret"),
            "google_pubsub_topic": "projects/tally/topics/gmail",
        }.items():
            monkeypatch.setattr(settings, name, value)
        yield emulator


class Accounts:
    """Tally users with Google accounts at the emulator."""

    def __init__(self, org: Org, google: GoogleEmulator) -> None:
        self.org, self.google = org, google
        self.connections: dict[tuple[str, str], int] = {}

    def connect(self, email: str) -> dict[str, object]:
        started = self.org.client.get(
            "/api/v1/connections/oauth/google/start", headers=self.org.as_user(email)
        )
        assert started.status_code == 200, started.text
        url = started.json()["authorization_url"]
        assert url.startswith(self.google.url)  # never Google itself
        consent = requests.get(url, allow_redirects=False, timeout=10)
        assert consent.status_code == 302
        back = urlsplit(consent.headers["Location"])
        answer = self.org.client.get(f"{back.path}?{back.query}")
        assert answer.status_code == 200, answer.text
        body: dict[str, object] = answer.json()
        for connection in body["connections"]:  # type: ignore[attr-defined]
            self.connections[(email, connection["provider"])] = connection["id"]
        return body

    def fill(self, email: str, count: int) -> None:
        """`count` messages from as many people, one an hour before the last."""
        for number in range(count):
            when = NOW - timedelta(hours=number + 1)
            self.mail(email, f"c{number}@northwind.example", email, f"m{number}", when=when)

    def mail(self, email: str, sender: str, to: str, subject: str, **extra: object) -> str:
        labels = extra.pop("labels", ("INBOX",))
        msgid = extra.pop("msgid", subject.replace(" ", "."))
        when = extra.pop("when", NOW - timedelta(days=2))
        assert isinstance(when, datetime)
        headers = {
            "From": sender,
            "To": to,
            "Subject": subject,
            "Date": when.strftime("%a, %d %b %Y %H:%M:%S +0000"),
            "Message-ID": f"<{msgid}@mail.example>",
            **{k: str(v) for k, v in extra.items()},
        }
        return self.google.deliver(email, headers, labels=labels, when=when)  # type: ignore[arg-type]

    def sync(self, *emails: str, provider: str = "gmail") -> None:
        self.org.sync(*(self.connections[(email, provider)] for email in emails))

    def connection(self, email: str, provider: str = "gmail") -> dict[str, Any]:
        return self.org.connection(self.connections[(email, provider)])

    def activities(self, email: str | None = None) -> list[tuple[str, str]]:
        query = f"user_id={self.org.users[email]['id']}&" if email else ""
        items = self.org.client.get(
            f"/api/v1/activities?{query}limit=1000", headers=self.org.as_admin()
        ).json()["items"]
        return sorted((a["type"], a["subject"] or "") for a in items)


@pytest.fixture
def accounts(client: TestClient, google: GoogleEmulator) -> Accounts:
    org = make_org(client)
    org.user(ANA, aliases=[])
    org.user(BOB)
    google.account(ANA, aliases=["a.silva@acme.example"])
    google.account(BOB)
    return Accounts(org, google)


def test_connect_once_then_gmail_and_calendar_sync_themselves(accounts: Accounts) -> None:
    body = accounts.connect(ANA)
    assert body["account"] == ANA
    assert sorted(c["provider"] for c in body["connections"]) == ["gmail", "google_calendar"]  # type: ignore[attr-defined,index]
    assert body["aliases_added"] == ["a.silva@acme.example"]
    user = accounts.org.client.get(
        f"/api/v1/users/{accounts.org.users[ANA]['id']}", headers=accounts.org.as_admin()
    ).json()
    assert "a.silva@acme.example" in json.dumps(user)
    connection = accounts.connection(ANA)
    assert "refresh" not in json.dumps(connection)  # the secret is never returned

    accounts.mail(ANA, "Joe <joe@northwind.example>", ANA, "Question")
    accounts.mail(ANA, "a.silva@acme.example", "joe@northwind.example", "Answer", labels=("SENT",))
    accounts.mail(ANA, ANA, "joe@northwind.example", "Draft", labels=("DRAFT",))
    accounts.mail(ANA, "bob@acme.example", ANA, "Lunch?")  # internal: not an activity
    accounts.google.put_event(
        ANA,
        {
            "summary": "Demo with Northwind",
            "start": {"dateTime": (NOW - timedelta(days=1)).isoformat()},
            "end": {"dateTime": (NOW - timedelta(days=1, minutes=-30)).isoformat()},
            "attendees": [
                {"email": ANA, "responseStatus": "accepted", "self": True},
                {"email": "joe@northwind.example", "responseStatus": "accepted"},
                {"email": "room-1@resource.calendar.google.com", "resource": True},
            ],
            "conferenceData": {
                "entryPoints": [
                    {"entryPointType": "video", "uri": "https://meet.google.com/abc-defg-hij"},
                    {"entryPointType": "phone", "uri": "tel:+1-555-0100"},
                ]
            },
            "created": (NOW - timedelta(days=5)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        },
    )
    SyncWorker(2).drain()  # both connections are due at once after the consent
    assert accounts.activities() == [
        ("email_received", "Question"),
        ("email_sent", "Answer"),
        ("meeting_held", "Demo with Northwind"),
        ("meeting_scheduled", "Demo with Northwind"),
    ]
    for provider in ("gmail", "google_calendar"):
        state = accounts.connection(ANA, provider)
        assert state["status"] == "idle" and state["last_error"] is None, state

    accounts.mail(ANA, "Kim <kim@globex.example>", ANA, "New lead", when=NOW)
    accounts.sync(ANA)
    assert ("email_received", "New lead") in accounts.activities()
    accounts.sync(ANA)
    assert len(accounts.activities()) == 5

    # a reconnect reuses the same connections and resumes from their cursors
    before = dict(accounts.connections)
    accounts.connect(ANA)
    assert accounts.connections == before
    SyncWorker(2).drain()
    assert len(accounts.activities()) == 5


def test_the_same_message_in_two_reps_mailboxes_is_one_activity(accounts: Accounts) -> None:
    accounts.connect(ANA)
    accounts.connect(BOB)
    for email, labels in ((ANA, ("SENT",)), (BOB, ("INBOX",))):
        accounts.mail(
            email,
            ANA,
            "joe@northwind.example",
            "Offer",
            Cc=BOB,
            labels=labels,
            msgid="offer-1",
        )
    SyncWorker(2).drain()
    assert accounts.activities() == [("email_sent", "Offer")]
    assert accounts.activities(ANA) == [("email_sent", "Offer")]


def test_a_revoked_consent_asks_for_a_reconnect_and_is_not_retried(
    accounts: Accounts,
) -> None:
    accounts.connect(ANA)
    accounts.mail(ANA, "joe@northwind.example", ANA, "Hello")
    SyncWorker(2).drain()
    accounts.google.revoke(ANA)
    accounts.mail(ANA, "kim@globex.example", ANA, "After revoke", when=NOW)
    accounts.sync(ANA)
    state = accounts.connection(ANA)
    assert state["status"] == "needs_reconnect"
    assert (
        state["last_error"] == "Reconnect needed: Google access was revoked or expired: reconnect"
    )
    assert "rt-" not in json.dumps(state)
    with session_scope() as session:
        row = session.get_one(Connection, accounts.connections[(ANA, "gmail")])
        assert row.next_sync_at is None
    calls = accounts.google.stats.http_requests
    SyncWorker(2).drain()  # nothing due: nothing is retried in a loop
    SyncWorker(2).drain()
    assert accounts.google.stats.http_requests - calls <= 4  # at most the calendar's own run
    accounts.connect(ANA)  # the user consents again
    SyncWorker(2).drain()
    assert accounts.connection(ANA)["status"] == "idle"
    assert ("email_received", "After revoke") in accounts.activities()


def test_a_crash_between_pages_loses_and_doubles_nothing(
    accounts: Accounts, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "google_page_size", 10)
    accounts.connect(ANA)
    accounts.fill(ANA, 35)
    restore = interrupt_syncs(
        monkeypatch, after_pages=3, then=raising(ConnectionResetError("the network went away"))
    )
    accounts.sync(ANA)
    state = accounts.connection(ANA)
    assert state["status"] == "error"
    kept = len(accounts.activities())
    assert 0 < kept < 35
    restore()
    accounts.sync(ANA)
    activities = accounts.activities()
    assert len(activities) == 35 and len(set(activities)) == 35
    assert accounts.connection(ANA)["status"] == "idle"


def test_google_connections_are_made_by_the_oauth_flow_only(accounts: Accounts) -> None:
    response = accounts.org.client.post(
        "/api/v1/connections",
        headers=accounts.org.as_admin(),
        json={"user_id": accounts.org.users[ANA]["id"], "provider": "gmail", "config": {}},
    )
    assert response.status_code == 400
    assert "/connections/oauth/google/start" in response.json()["error"]["message"]


def test_a_refused_consent_creates_nothing(accounts: Accounts) -> None:
    started = accounts.org.client.get(
        "/api/v1/connections/oauth/google/start", headers=accounts.org.as_user(ANA)
    ).json()
    state = dict(p.split("=", 1) for p in urlsplit(started["authorization_url"]).query.split("&"))[
        "state"
    ]
    answer = accounts.org.client.get(
        f"/api/v1/connections/oauth/google/callback?state={state}&error=access_denied"
    )
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "bad_request"
    listed = accounts.org.client.get("/api/v1/connections", headers=accounts.org.as_admin())
    assert listed.json()["items"] == []


def test_only_the_granted_scopes_become_connections(accounts: Accounts) -> None:
    from tests.emulators.google import CALENDAR_EVENTS

    accounts.google.granted = [
        "openid",
        "https://www.googleapis.com/auth/userinfo.email",
        CALENDAR_EVENTS,
    ]
    body = accounts.connect(ANA)
    assert [c["provider"] for c in body["connections"]] == ["google_calendar"]  # type: ignore[attr-defined,index]
    assert body["aliases_added"] == []


def _pubsub(address: str) -> dict[str, object]:
    data = base64.b64encode(json.dumps({"emailAddress": address, "historyId": "1"}).encode())
    return {"message": {"data": data.decode(), "messageId": "1"}, "subscription": "projects/p/s"}


def test_gmail_push_marks_the_mailbox_due(accounts: Accounts) -> None:
    accounts.connect(ANA)
    SyncWorker(2).drain()
    assert accounts.google.account(ANA).watches  # users.watch was called on the first sync
    with session_scope() as session:
        due = session.get_one(Connection, accounts.connections[(ANA, "gmail")]).next_sync_at
    assert due is not None and due > datetime.now(UTC)
    client = accounts.org.client
    bad = client.post("/api/v1/push/google/gmail?token=wrong", json=_pubsub(ANA))
    assert bad.status_code == 403
    assert bad.json() == {
        "error": {"code": "forbidden", "message": "the push token is missing or wrong"}
    }
    assert client.post("/api/v1/push/google/gmail", json=_pubsub(ANA)).status_code == 403
    # Gmail names the mailbox as its owner wrote it: matched whatever the case
    good = client.post("/api/v1/push/google/gmail?token=push-secret", json=_pubsub(ANA.upper()))
    assert good.status_code == 204
    with session_scope() as session:
        due = session.get_one(Connection, accounts.connections[(ANA, "gmail")]).next_sync_at
        other = session.get_one(Connection, accounts.connections[(ANA, "google_calendar")])
    assert due is not None and due <= datetime.now(UTC)
    assert other.next_sync_at is not None and other.next_sync_at > datetime.now(UTC)
    unknown = client.post("/api/v1/push/google/gmail?token=push-secret", json=_pubsub("x@y.z"))
    assert unknown.status_code == 204  # acknowledged, or Pub/Sub redelivers forever
    junk = client.post(
        "/api/v1/push/google/gmail?token=push-secret", json={"message": {"data": "!!"}}
    )
    assert junk.status_code == 400


def test_calendar_push_checks_the_channel_token(accounts: Accounts) -> None:
    accounts.connect(ANA)
    SyncWorker(2).drain()
    connection_id = accounts.connections[(ANA, "google_calendar")]
    channels = accounts.google.account(ANA).channels
    assert len(channels) == 1 and channels[0]["token"] == push_google.channel_token(connection_id)
    assert channels[0]["address"].endswith("/api/v1/push/google/calendar")
    client = accounts.org.client
    headers = {"X-Goog-Channel-ID": channels[0]["id"], "X-Goog-Resource-State": "exists"}
    forged = client.post(
        "/api/v1/push/google/calendar",
        headers={**headers, "X-Goog-Channel-Token": f"{connection_id}.00"},
    )
    assert forged.status_code == 403 and forged.json()["error"]["code"] == "forbidden"
    good = client.post(
        "/api/v1/push/google/calendar",
        headers={**headers, "X-Goog-Channel-Token": channels[0]["token"]},
    )
    assert good.status_code == 204
    with session_scope() as session:
        due = session.get_one(Connection, connection_id).next_sync_at
    assert due is not None and due <= datetime.now(UTC)


def test_an_expired_sync_token_resyncs_the_calendar_without_duplicates(
    accounts: Accounts,
) -> None:
    accounts.connect(ANA)
    accounts.google.put_event(
        ANA,
        {
            "summary": "Kickoff",
            "start": {"dateTime": (NOW - timedelta(days=2)).isoformat()},
            "end": {"dateTime": (NOW - timedelta(days=2, minutes=-45)).isoformat()},
            "attendees": [{"email": ANA, "self": True}, {"email": "joe@northwind.example"}],
        },
    )
    SyncWorker(2).drain()
    before = accounts.activities()
    assert ("meeting_held", "Kickoff") in before
    accounts.google.expire_sync_tokens(ANA)
    accounts.sync(ANA, provider="google_calendar")
    state = accounts.connection(ANA, "google_calendar")
    assert state["status"] == "idle" and state["last_error"] is None
    assert accounts.activities() == before


def test_a_quota_longer_than_the_wait_leaves_the_connection_waiting(
    accounts: Accounts, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "google_page_size", 20)
    monkeypatch.setattr(settings, "google_max_wait_seconds", 0.5)
    accounts.connect(ANA)
    accounts.fill(ANA, 60)
    accounts.google.quota_units["gmail"] = 700  # 30 s windows: room for about one page
    accounts.google.window = 30.0
    accounts.sync(ANA)
    state = accounts.connection(ANA)
    assert state["status"] == "idle" and "rate limit" in str(state["last_error"])
    with session_scope() as session:
        due = session.get_one(Connection, accounts.connections[(ANA, "gmail")]).next_sync_at
    assert due is not None and due > datetime.now(UTC) + timedelta(seconds=5)
    kept = len(accounts.activities())
    assert 0 < kept < 60
    accounts.google.quota_units["gmail"] = None  # the next minute
    accounts.sync(ANA)
    assert len(accounts.activities()) == 60


def test_an_invitation_from_another_calendar_system_makes_no_email(accounts: Accounts) -> None:
    from tests.connectors.test_gmail_mime import invitation, plain
    from tests.emulators.google import GMAIL_METADATA, GMAIL_READONLY

    accounts.connect(ANA)
    accounts.google.deliver_raw(ANA, invitation("Demo with Globex"))  # BlackBerry's iMIP
    accounts.google.deliver_raw(ANA, plain("Offer"))
    SyncWorker(2).drain()
    assert accounts.activities() == [("email_received", "Offer")]
    gmail = accounts.connection(ANA)
    assert gmail["deviations"] == []  # counted as the spec says
    assert GMAIL_READONLY in gmail["config"]["scopes"]
    assert GMAIL_METADATA not in gmail["config"]["scopes"]
    assert accounts.google.stats.body_bytes == 0  # and no body was read to do it


def test_the_metadata_only_mode_counts_such_an_invitation_and_says_so_on_the_mailbox(
    accounts: Accounts, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.connectors.test_gmail_mime import invitation, plain
    from tests.emulators.google import GMAIL_METADATA, GMAIL_READONLY

    monkeypatch.setattr(settings, "google_gmail_metadata_only", True)
    accounts.connect(ANA)
    accounts.google.deliver_raw(ANA, invitation("Demo with Globex"))
    accounts.google.deliver_raw(ANA, plain("Offer"))
    SyncWorker(2).drain()
    # the documented deviation: the invitation's MIME parts are not visible
    assert accounts.activities() == [
        ("email_received", "Demo with Globex"),
        ("email_received", "Offer"),
    ]
    gmail = accounts.connection(ANA)
    assert GMAIL_METADATA in gmail["config"]["scopes"]
    assert GMAIL_READONLY not in gmail["config"]["scopes"]
    (deviation,) = gmail["deviations"]
    assert "gmail.metadata" in deviation and "Invitations" in deviation
    assert accounts.connection(ANA, "google_calendar")["deviations"] == []


def test_gmail_names_when_to_come_back_and_the_connection_waits_until_then(
    accounts: Accounts, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "google_page_size", 20)
    monkeypatch.setattr(settings, "google_max_wait_seconds", 5.0)
    accounts.connect(ANA)
    accounts.fill(ANA, 60)
    accounts.google.quota_units["gmail"] = 700  # 30 s windows: room for about one page
    accounts.google.window = 30.0
    accounts.google.gmail_penalty = 900.0  # twentyhq/twenty#17850: "usually ~15 minutes out"
    accounts.sync(ANA)
    state = accounts.connection(ANA)
    assert state["status"] == "idle" and "rate limit" in str(state["last_error"])
    with session_scope() as session:
        due = session.get_one(Connection, accounts.connections[(ANA, "gmail")]).next_sync_at
    assert due is not None
    now = datetime.now(UTC)
    assert now + timedelta(minutes=14) < due < now + timedelta(minutes=16)
