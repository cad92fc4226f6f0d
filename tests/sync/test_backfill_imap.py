"""Reaching further back in an IMAP mailbox, end to end against a real Dovecot: mail older than
the window comes once a user widens it (POST /connections/{id}/backfill), and what the
server is asked to FETCH then is only that older mail, never what was fetched before."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.db import session_scope
from app.models import Connection
from connectors.imap.transport import GuardedIMAPClient
from tests.api import make_org
from tests.fixtures.dovecot import DovecotServer
from tests.sync.test_imap_sync import Mailboxes, raw

ANA = "ana@acme.example"
JOE = "Joe <joe@northwind.example>"
NOW = datetime.now(UTC).replace(microsecond=0)
_SUBJECT = re.compile(rb"^Subject:[ \t]*(.*?)\r?$", re.I | re.M)


def months_ago(months: float) -> datetime:
    return NOW - timedelta(days=round(months * 30.44))


class Fetches:
    """The subjects of the messages the connector asked the server for, one list per FETCH
    command, read from the server's answers (the Dovecot fixture's own client, which APPENDs,
    is not a GuardedIMAPClient and is not counted)."""

    def __init__(self) -> None:
        self.commands: list[list[str]] = []
        self._lock = threading.Lock()

    def record(self, answer: dict[int, dict[bytes, Any]]) -> None:
        subjects = []
        for data in answer.values():
            headers = next(v for k, v in data.items() if k.upper().startswith(b"BODY[HEADER"))
            found = _SUBJECT.search(headers)
            subjects.append(found.group(1).decode() if found else "")
        with self._lock:
            self.commands.append(sorted(subjects))

    def take(self) -> list[str]:
        """Every subject fetched since the last call, in order, repeats kept."""
        with self._lock:
            taken = sorted(s for command in self.commands for s in command)
            self.commands.clear()
        return taken


@pytest.fixture
def fetches(monkeypatch: pytest.MonkeyPatch) -> Iterator[Fetches]:
    seen = Fetches()
    real = GuardedIMAPClient.fetch

    def fetch(self: GuardedIMAPClient, *args: Any, **kwargs: Any) -> Any:
        answer = real(self, *args, **kwargs)
        seen.record(answer)
        return answer

    monkeypatch.setattr(GuardedIMAPClient, "fetch", fetch)
    yield seen


@pytest.fixture
def boxes(client: TestClient, dovecot: DovecotServer) -> Mailboxes:
    org = make_org(client)
    org.user(ANA)
    return Mailboxes(org, dovecot)


def widen(boxes: Mailboxes, start: datetime) -> dict[str, Any]:
    response = boxes.org.client.post(
        f"/api/v1/connections/{boxes.connections[ANA]}/backfill",
        json={"from": start.date().isoformat()},
        headers=boxes.org.as_user(ANA),
    )
    assert response.status_code == 202, response.text
    body: dict[str, Any] = response.json()
    return body


def subjects(boxes: Mailboxes) -> list[str]:
    return sorted(subject for _type, subject in boxes.activities())


def deliver_history(boxes: Mailboxes) -> None:
    boxes.deliver(
        ANA,
        "INBOX",
        raw(JOE, ANA, subject="Recent question", when=NOW - timedelta(days=3)),
        raw(JOE, ANA, subject="Old deal", when=months_ago(14)),
        raw(JOE, ANA, subject="Old follow-up", when=months_ago(15)),
        raw(JOE, ANA, subject="Ancient", when=months_ago(20)),  # before even the wider window
    )
    boxes.deliver(
        ANA,
        "Sent",
        raw(ANA, "joe@northwind.example", subject="Recent answer", when=NOW - timedelta(days=2)),
        raw(ANA, "joe@northwind.example", subject="Old proposal", when=months_ago(14)),
    )


OLD = ["Old deal", "Old follow-up", "Old proposal"]
RECENT = ["Recent answer", "Recent question"]


def test_mail_older_than_the_window_comes_once_it_is_widened_and_nothing_is_fetched_twice(
    boxes: Mailboxes, fetches: Fetches
) -> None:
    boxes.connect(ANA)
    deliver_history(boxes)
    boxes.sync(ANA)
    assert subjects(boxes) == RECENT  # 12 months by default: the older mail is not fetched
    assert fetches.take() == RECENT
    assert boxes.connection(ANA)["stats"]["messages_seen"] == 2

    shown = widen(boxes, months_ago(18))
    assert shown["config"]["history_from"] == months_ago(18).date().isoformat()
    assert shown["status"] == "pending"
    boxes.sync(ANA)
    assert fetches.take() == OLD  # only the stretch between 18 and 12 months ago
    assert subjects(boxes) == sorted(OLD + RECENT)  # each once
    connection = boxes.connection(ANA)
    assert (connection["status"], connection["last_error"]) == ("idle", None)
    assert connection["stats"]["messages_seen"] == 5
    assert connection["stats"]["activities_created"] == 5

    boxes.sync(ANA)  # nothing new
    assert fetches.take() == []
    assert subjects(boxes) == sorted(OLD + RECENT)


def test_a_mailbox_synced_before_windows_could_widen_gets_only_the_gap(
    boxes: Mailboxes, fetches: Fetches
) -> None:
    """A cursor written before it recorded what it covers, widened before any run of this
    version: it is taken to cover the default window, so the gap is still read."""
    boxes.connect(ANA)
    deliver_history(boxes)
    boxes.sync(ANA)
    assert fetches.take() == RECENT
    with session_scope() as session:
        connection = session.get_one(Connection, boxes.connections[ANA])
        states = json.loads(connection.cursors["imap"])
        for state in states.values():
            for key in ("history_top", "covered_from", "backfill_before"):
                del state[key]
        assert set(next(iter(states.values()))) == {
            "uidvalidity",
            "last_uid",
            "backfill_below",
            "modseq",
        }
        connection.cursors = {"imap": json.dumps(states)}

    widen(boxes, months_ago(18))
    boxes.sync(ANA)
    assert fetches.take() == OLD
    assert subjects(boxes) == sorted(OLD + RECENT)


def test_old_mail_filed_after_the_first_sync_is_not_fetched_again_by_the_widening(
    boxes: Mailboxes, fetches: Fetches
) -> None:
    """Mail that arrives after the first sync is read by the incremental pass whatever its
    date (a message dragged in from an archive keeps its old INTERNALDATE); the widening
    reads only the folder's history from before it."""
    boxes.connect(ANA)
    deliver_history(boxes)
    boxes.sync(ANA)
    fetches.take()
    boxes.deliver(
        ANA, "INBOX", raw(JOE, ANA, subject="Filed from the archive", when=months_ago(13))
    )
    boxes.sync(ANA)
    assert fetches.take() == ["Filed from the archive"]

    widen(boxes, months_ago(18))
    boxes.sync(ANA)
    assert fetches.take() == OLD
    assert subjects(boxes) == sorted([*OLD, *RECENT, "Filed from the archive"])


def test_widening_twice_reads_each_stretch_once(boxes: Mailboxes, fetches: Fetches) -> None:
    boxes.connect(ANA)
    deliver_history(boxes)
    boxes.sync(ANA)
    fetches.take()
    widen(boxes, months_ago(14.5))
    boxes.sync(ANA)
    assert fetches.take() == ["Old deal", "Old proposal"]
    widen(boxes, months_ago(24))
    boxes.sync(ANA)
    assert fetches.take() == ["Ancient", "Old follow-up"]
    assert subjects(boxes) == sorted([*OLD, *RECENT, "Ancient"])
