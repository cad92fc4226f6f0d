"""Reaching further back in Gmail and Google Calendar, end to end through the API against the
Google emulator: mail and meetings older than the window come once a user widens it (POST
/connections/{id}/backfill), and the messages Gmail is asked for then are only the older
ones, never one Tally already read."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest

from app.config import settings
from app.db import session_scope
from app.models import Connection
from tests.emulators.google import GoogleEmulator
from tests.fakes import interrupt_syncs, raising
from tests.sync.test_google_sync import ANA, NOW, Accounts, accounts, google

__all__ = ["accounts", "google"]  # the fixtures this module uses

JOE = "Joe <joe@northwind.example>"
OLD = [
    ("email_received", "Old deal"),
    ("email_received", "Old follow-up"),
    ("email_sent", "Old proposal"),
]
RECENT = [("email_received", "Recent question"), ("email_sent", "Recent answer")]


def months_ago(months: float) -> datetime:
    return NOW - timedelta(days=round(months * 30.44))


def widen(accounts: Accounts, start: datetime, provider: str = "gmail") -> dict[str, Any]:
    response = accounts.org.client.post(
        f"/api/v1/connections/{accounts.connections[(ANA, provider)]}/backfill",
        json={"from": start.date().isoformat()},
        headers=accounts.org.as_user(ANA),
    )
    assert response.status_code == 202, response.text
    body: dict[str, Any] = response.json()
    return body


class Gets:
    """How many messages.get the emulator served (a batch counts its parts) since last asked."""

    def __init__(self, google: GoogleEmulator) -> None:
        self.google = google
        self.seen = self.served()

    def served(self) -> int:
        return self.google.stats.by_method.get("messages.get", 0)

    def take(self) -> int:
        now = self.served()
        taken, self.seen = now - self.seen, now
        return taken


def deliver_history(accounts: Accounts) -> None:
    mail = accounts.mail
    mail(ANA, JOE, ANA, "Recent question", when=NOW - timedelta(days=3))
    mail(
        ANA,
        ANA,
        "joe@northwind.example",
        "Recent answer",
        when=NOW - timedelta(days=2),
        labels=("SENT",),
    )
    mail(ANA, JOE, ANA, "Old deal", when=months_ago(14))
    mail(ANA, JOE, ANA, "Old follow-up", when=months_ago(15))
    mail(ANA, ANA, "joe@northwind.example", "Old proposal", when=months_ago(14), labels=("SENT",))
    mail(ANA, JOE, ANA, "Ancient", when=months_ago(20))  # before even the wider window


def test_mail_older_than_the_window_comes_once_widened_and_nothing_is_read_twice(
    accounts: Accounts,
) -> None:
    accounts.connect(ANA)
    deliver_history(accounts)
    accounts.sync(ANA)
    assert accounts.activities() == sorted(RECENT)  # 12 months by default
    gets = Gets(accounts.google)

    shown = widen(accounts, months_ago(18))
    assert shown["status"] == "pending"
    accounts.sync(ANA)
    assert gets.take() == 3  # the three messages between 18 and 12 months ago, no other
    assert accounts.activities() == sorted(OLD + RECENT)  # each once
    connection = accounts.connection(ANA)
    assert (connection["status"], connection["last_error"]) == ("idle", None)

    accounts.sync(ANA)  # nothing new
    assert gets.take() == 0
    assert accounts.activities() == sorted(OLD + RECENT)


def test_a_mailbox_synced_before_windows_could_widen_gets_the_gap(accounts: Accounts) -> None:
    """A cursor from before it recorded what it covers is taken to cover the default window."""
    accounts.connect(ANA)
    deliver_history(accounts)
    accounts.sync(ANA)
    with session_scope() as session:
        connection = session.get_one(Connection, accounts.connections[(ANA, "gmail")])
        state = json.loads(connection.cursors["gmail"])
        for key in ("covered_from", "rest"):
            state.pop(key, None)
        connection.cursors = {**connection.cursors, "gmail": json.dumps(state)}
    gets = Gets(accounts.google)
    widen(accounts, months_ago(18))
    accounts.sync(ANA)
    assert gets.take() == 3
    assert accounts.activities() == sorted(OLD + RECENT)


def test_widening_twice_reads_each_stretch_once(accounts: Accounts) -> None:
    accounts.connect(ANA)
    deliver_history(accounts)
    accounts.sync(ANA)
    gets = Gets(accounts.google)
    widen(accounts, months_ago(14.5))
    accounts.sync(ANA)
    assert gets.take() == 2  # Old deal, Old proposal
    widen(accounts, months_ago(24))
    accounts.sync(ANA)
    assert gets.take() == 2  # Old follow-up, Ancient
    assert accounts.activities() == sorted([*OLD, *RECENT, ("email_received", "Ancient")])


def test_a_metadata_only_mailbox_goes_on_listing_where_its_first_backfill_stopped(
    accounts: Accounts, monkeypatch: pytest.MonkeyPatch
) -> None:
    """gmail.metadata refuses `q` (the emulator answers 403 as Gmail does): the listing goes on
    from the first message the first backfill read below its floor."""
    monkeypatch.setattr(settings, "google_gmail_metadata_only", True)
    accounts.connect(ANA)
    deliver_history(accounts)
    accounts.sync(ANA)
    assert accounts.activities() == sorted(RECENT)
    gets = Gets(accounts.google)
    widen(accounts, months_ago(18))
    accounts.sync(ANA)
    # the four older messages (the batch that reaches below 18 months holds "Ancient" too);
    # the two recent ones are not read again
    assert gets.take() == 4
    assert accounts.activities() == sorted(OLD + RECENT)
    connection = accounts.connection(ANA)
    assert (connection["status"], connection["last_error"]) == ("idle", None)


def meeting(accounts: Accounts, summary: str, start: datetime) -> None:
    accounts.google.put_event(
        ANA,
        {
            "summary": summary,
            "start": {"dateTime": start.isoformat()},
            "end": {"dateTime": (start + timedelta(minutes=30)).isoformat()},
            "attendees": [
                {"email": ANA, "responseStatus": "accepted", "self": True},
                {"email": "joe@northwind.example", "responseStatus": "accepted"},
            ],
            "created": (start - timedelta(days=3)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        },
    )


def test_meetings_older_than_the_window_come_once_the_calendar_is_widened(
    accounts: Accounts,
) -> None:
    accounts.connect(ANA)
    meeting(accounts, "Recent demo", NOW - timedelta(days=5))
    meeting(accounts, "Old kickoff", months_ago(14))
    meeting(accounts, "Ancient review", months_ago(20))
    accounts.sync(ANA, provider="google_calendar")
    before = accounts.activities()
    assert {s for _, s in before} == {"Recent demo"}

    widen(accounts, months_ago(18), provider="google_calendar")
    accounts.sync(ANA, provider="google_calendar")
    after = accounts.activities()
    assert {s for _, s in after} == {"Recent demo", "Old kickoff"}
    assert ("meeting_held", "Old kickoff") in after
    assert [a for a in after if a[1] == "Recent demo"] == before  # not doubled
    state = accounts.connection(ANA, "google_calendar")
    assert (state["status"], state["last_error"]) == ("idle", None)

    accounts.sync(ANA, provider="google_calendar")  # the new sync token: nothing changes
    assert accounts.activities() == after


def test_a_gap_listing_cut_short_resumes_where_it_stopped(
    accounts: Accounts, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "google_page_size", 2)
    accounts.connect(ANA)
    deliver_history(accounts)
    accounts.sync(ANA)
    gets = Gets(accounts.google)
    widen(accounts, months_ago(18))
    with monkeypatch.context() as patch:
        # the Gmail connector loses its network after history, then the gap's first page of two
        lost = raising(ConnectionResetError("the network went away"))
        interrupt_syncs(patch, after_pages=2, then=lost, connector="gmail")
        accounts.sync(ANA)
    assert accounts.connection(ANA)["status"] == "error"
    assert gets.take() == 2
    assert len(accounts.activities()) == 4
    accounts.sync(ANA)
    assert gets.take() == 1  # only the gap's second page
    assert accounts.activities() == sorted(OLD + RECENT)
    assert accounts.connection(ANA)["status"] == "idle"
