"""End to end against a real Dovecot: connect through the API, the worker syncs, counts follow."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.config import settings
from app.sync.worker import SyncWorker
from tests.api import Org, make_org
from tests.fakes import interrupt_syncs
from tests.fixtures.dovecot import DovecotServer

DATA = Path(__file__).resolve().parent.parent / "data"
NOW = datetime.now(UTC).replace(microsecond=0)


def raw(
    sender: str,
    to: str,
    *,
    subject: str = "Hello",
    msgid: str | None = None,
    when: datetime = NOW - timedelta(days=3),
    cc: str = "",
    bcc: str = "",
) -> bytes:
    lines = [
        f"From: {sender}",
        f"To: {to}",
        f"Subject: {subject}",
        f"Date: {format_datetime(when)}",
        f"Message-ID: <{msgid or uuid.uuid4().hex}@mail>",
    ]
    lines += [f"Cc: {cc}"] * bool(cc) + [f"Bcc: {bcc}"] * bool(bcc)
    return ("\r\n".join(lines) + "\r\n\r\nHi there.\r\n").encode()


def sent_at(message: bytes) -> datetime | None:
    header = BytesHeaderParser(policy=compat32).parsebytes(message).get("date")
    try:
        return parsedate_to_datetime(str(header)) if header else None
    except (TypeError, ValueError):
        return None


class Mailboxes:
    """Tally users with Dovecot mailboxes: appends mail and runs the sync worker."""

    def __init__(self, org: Org, dovecot: DovecotServer) -> None:
        self.org, self.dovecot = org, dovecot
        self.logins: dict[str, str] = {}
        self.connections: dict[str, int] = {}

    def connect(self, email: str, *, password: str = "pw", real_password: str = "pw") -> int:
        login = f"{email.split('@')[0]}.{uuid.uuid4().hex[:8]}@imap.test"
        self.dovecot.add_user(login, real_password)
        self.logins[email] = login
        response = self.org.client.post(
            "/api/v1/connections",
            headers=self.org.as_admin(),
            json={
                "user_id": self.org.users[email]["id"],
                "provider": "imap",
                "config": {
                    "host": self.dovecot.host,
                    "port": self.dovecot.port,
                    "username": login,
                    "password": password,
                    "security": "none",
                },
            },
        )
        assert response.status_code == 201, response.text
        self.connections[email] = response.json()["id"]
        return self.connections[email]

    def deliver(self, email: str, folder: str, *messages: bytes) -> None:
        """APPEND with INTERNALDATE = the Date header, as if delivered when it was sent."""
        self.dovecot.append_many(self.logins[email], folder, [(m, sent_at(m)) for m in messages])

    def sync(self, *emails: str) -> None:
        self.org.sync(*(self.connections[email] for email in emails))

    def connection(self, email: str) -> dict[str, Any]:
        return self.org.connection(self.connections[email])

    def activities(self, email: str | None = None) -> list[tuple[str, str]]:
        query = f"?user_id={self.org.users[email]['id']}" if email else ""
        items = self.org.client.get(
            f"/api/v1/activities{query}&limit=1000" if query else "/api/v1/activities?limit=1000",
            headers=self.org.as_admin(),
        ).json()["items"]
        return sorted((a["type"], a["subject"]) for a in items)


@pytest.fixture
def boxes(client: TestClient, dovecot: DovecotServer) -> Mailboxes:
    org = make_org(client)
    org.user("ana@acme.example")
    org.user("bob@acme.example")
    return Mailboxes(org, dovecot)


def test_backfill_then_incremental_sync(boxes: Mailboxes) -> None:
    boxes.connect("ana@acme.example")
    boxes.deliver(
        "ana@acme.example",
        "INBOX",
        raw("Joe <joe@northwind.example>", "ana@acme.example", subject="Question"),
        raw(
            "news@northwind.example",
            "ana@acme.example",
            subject="Old",
            when=NOW - timedelta(days=500),
        ),  # outside the 12-month window
        raw("bob@acme.example", "ana@acme.example", subject="Lunch?"),
    )
    boxes.deliver(
        "ana@acme.example",
        "Sent",
        raw("ana@acme.example", "joe@northwind.example", subject="Answer"),
    )
    boxes.sync("ana@acme.example")
    assert boxes.activities() == [("email_received", "Question"), ("email_sent", "Answer")]
    connection = boxes.connection("ana@acme.example")
    assert connection["status"] == "idle" and connection["last_error"] is None
    assert connection["stats"]["messages_seen"] == 3  # type: ignore[index]

    boxes.deliver(
        "ana@acme.example",
        "INBOX",
        raw("Kim <kim@globex.co.uk>", "ana@acme.example", subject="New lead"),
    )
    boxes.sync("ana@acme.example")
    assert ("email_received", "New lead") in boxes.activities()
    assert len(boxes.activities()) == 3
    boxes.sync("ana@acme.example")  # nothing new: nothing changes
    assert len(boxes.activities()) == 3


def test_a_uidvalidity_change_relists_without_duplicating(
    boxes: Mailboxes, dovecot: DovecotServer
) -> None:
    boxes.connect("ana@acme.example")
    boxes.deliver(
        "ana@acme.example",
        "INBOX",
        *[raw(f"c{i}@northwind.example", "ana@acme.example", subject=f"m{i}") for i in range(5)],
    )
    boxes.sync("ana@acme.example")
    dovecot.set_uidvalidity(boxes.logins["ana@acme.example"], "INBOX", 4242)
    boxes.sync("ana@acme.example")
    assert len(boxes.activities()) == 5
    assert boxes.connection("ana@acme.example")["status"] == "idle"


def test_a_message_in_the_senders_sent_folder_and_a_colleagues_inbox_is_one_activity(
    boxes: Mailboxes,
) -> None:
    boxes.connect("ana@acme.example")
    boxes.connect("bob@acme.example")
    message = raw(
        "ana@acme.example",
        "joe@northwind.example",
        cc="bob@acme.example",
        subject="Offer",
        msgid="offer-1",
    )
    boxes.deliver("ana@acme.example", "Sent", message)
    boxes.deliver("bob@acme.example", "INBOX", message)
    boxes.sync("bob@acme.example", "ana@acme.example")
    assert boxes.activities() == [("email_sent", "Offer")]
    assert boxes.activities("ana@acme.example") == [("email_sent", "Offer")]


def test_a_wrong_password_asks_for_a_reconnect(boxes: Mailboxes) -> None:
    boxes.connect("ana@acme.example", password="typo", real_password="right")
    boxes.sync("ana@acme.example")
    connection = boxes.connection("ana@acme.example")
    assert connection["status"] == "needs_reconnect"
    assert str(connection["last_error"]).startswith("Reconnect needed: ")
    assert "typo" not in str(connection) and "right" not in str(connection["last_error"])
    boxes.org.client.patch(
        f"/api/v1/connections/{boxes.connections['ana@acme.example']}",
        json={"config": {"password": "right"}},
        headers=boxes.org.as_admin(),
    )
    SyncWorker(1).drain()
    assert boxes.connection("ana@acme.example")["status"] == "idle"


def test_the_server_going_away_mid_sync_loses_and_doubles_nothing(
    boxes: Mailboxes, dovecot: DovecotServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "imap_batch_size", 2)
    boxes.connect("ana@acme.example")
    boxes.deliver(
        "ana@acme.example",
        "INBOX",
        *[raw(f"c{i}@northwind.example", "ana@acme.example", subject=f"m{i}") for i in range(7)],
    )
    restore = interrupt_syncs(monkeypatch, after_pages=1, then=dovecot.stop)
    try:
        boxes.sync("ana@acme.example")
    finally:
        dovecot.start()
    connection = boxes.connection("ana@acme.example")
    assert connection["status"] == "error" and connection["last_error"]
    assert len(boxes.activities()) == 2  # the first page is kept
    restore()
    boxes.sync("ana@acme.example")  # retried later (here: on demand)
    assert len(boxes.activities()) == 7
    assert boxes.connection("ana@acme.example")["status"] == "idle"


def test_every_message_of_the_mime_corpus_goes_through_without_stopping_the_sync(
    boxes: Mailboxes,
) -> None:
    files = sorted(
        p
        for p in (DATA / "mime").rglob("*")
        if p.is_file() and p.name != "LICENSE" and p.stat().st_size
    )  # an IMAP server refuses a zero-byte message
    boxes.connect("ana@acme.example")
    boxes.deliver("ana@acme.example", "INBOX", *[p.read_bytes() for p in files])
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(settings, "backfill_days", 365 * 40)  # the corpus is from 1996–2019
        boxes.sync("ana@acme.example")
    connection = boxes.connection("ana@acme.example")
    stats = connection["stats"]
    assert connection["status"] == "idle", connection["last_error"]
    assert stats["messages_seen"] == len(files)  # type: ignore[index]
    assert stats["messages_imported"] + stats["messages_filtered"] + stats[
        "messages_failed"
    ] == len(files)  # type: ignore[index]
