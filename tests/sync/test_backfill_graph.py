"""Reaching further back in a Microsoft 365 mailbox and calendar, end to end against the Graph
emulator (consent through the API, the real worker and runner; SQLite and PostgreSQL): mail
and meetings older than the window come once a user widens it (POST
/connections/{id}/backfill), and what Graph is asked for then is only that older stretch,
never what was fetched before (the emulator counts what its pages served)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import httpx2
import pytest

from app.config import settings
from app.db import session_scope
from app.models import Connection
from tests.emulators.microsoft import MicrosoftEmulator
from tests.fakes import interrupt_syncs, raising
from tests.sync.test_microsoft_sync import ANA, M365, NOW, m365, ms

__all__ = ["m365", "ms"]  # the fixtures, shared with tests/sync/test_microsoft_sync.py

JOE = "Joe <joe@northwind.example>"
OLD = ["Old deal", "Old follow-up", "Old proposal"]
RECENT = ["Recent answer", "Recent question"]
died = raising(RuntimeError("the process died"))


def months_ago(months: float) -> datetime:
    return NOW - timedelta(days=round(months * 30.44))


def widen(m365: M365, start: datetime) -> dict[str, Any]:
    response = m365.org.client.post(
        f"/api/v1/connections/{m365.connections[ANA]}/backfill",
        json={"from": start.date().isoformat()},
        headers=m365.org.as_user(ANA),
    )
    assert response.status_code == 202, response.text
    body: dict[str, Any] = response.json()
    return body


def served(ms: MicrosoftEmulator) -> list[str]:
    """The subjects Graph's pages served since the last call, repeats kept."""
    taken = sorted(ms.served.elements())
    ms.served.clear()
    return taken


def subjects(m365: M365) -> list[str]:
    return sorted(subject for _kind, subject in m365.activities())


def deliver_history(ms: MicrosoftEmulator) -> None:
    for subject, when in (
        ("Recent question", NOW - timedelta(days=3)),
        ("Old deal", months_ago(14)),
        ("Old follow-up", months_ago(15)),
        ("Ancient", months_ago(20)),  # before even the wider window
    ):
        ms.deliver(ANA, sender=JOE, to=[ANA], subject=subject, when=when)
    for subject, when in (
        ("Recent answer", NOW - timedelta(days=2)),
        ("Old proposal", months_ago(14)),
    ):
        ms.deliver(ANA, "sentitems", sender=ANA, to=[JOE], subject=subject, when=when)


def test_mail_older_than_the_window_comes_once_it_is_widened_and_nothing_is_fetched_twice(
    m365: M365, ms: MicrosoftEmulator
) -> None:
    m365.connect(ANA)
    deliver_history(ms)
    m365.sync(ANA)
    assert subjects(m365) == RECENT  # 12 months by default: the older mail is not fetched
    assert served(ms) == RECENT
    assert m365.connection(ANA)["stats"]["messages_seen"] == 2

    shown = widen(m365, months_ago(18))
    assert shown["config"]["history_from"] == months_ago(18).date().isoformat()
    assert shown["status"] == "pending"
    calls = dict(ms.calls)
    m365.sync(ANA)
    assert served(ms) == OLD  # only the stretch between 18 and 12 months ago
    assert subjects(m365) == sorted(OLD + RECENT)  # each once
    connection = m365.connection(ANA)
    assert (connection["status"], connection["last_error"]) == ("idle", None)
    assert connection["stats"]["messages_seen"] == 5
    assert connection["stats"]["activities_created"] == 5
    # one list page per folder, the headers in them: no message read on its own
    assert ms.calls["mail-list"] - calls.get("mail-list", 0) == 2
    assert ms.calls["batch"] == calls.get("batch", 0)

    m365.sync(ANA)  # nothing new
    assert served(ms) == []
    assert subjects(m365) == sorted(OLD + RECENT)


def test_a_mailbox_synced_before_windows_could_widen_gets_only_the_gap(
    m365: M365, ms: MicrosoftEmulator
) -> None:
    """A cursor written before it recorded what it covers: it is taken to cover the
    default window, so the gap is still read, and only the gap."""
    m365.connect(ANA)
    deliver_history(ms)
    m365.sync(ANA)
    served(ms)
    with session_scope() as session:
        connection = session.get_one(Connection, m365.connections[ANA])
        state = json.loads(connection.cursors["microsoft_mail"])
        del state["covered"], state["gaps"]
        connection.cursors = {**connection.cursors, "microsoft_mail": json.dumps(state)}

    widen(m365, months_ago(18))
    m365.sync(ANA)
    assert served(ms) == OLD
    assert subjects(m365) == sorted(OLD + RECENT)


def test_widening_twice_reads_each_stretch_once(m365: M365, ms: MicrosoftEmulator) -> None:
    m365.connect(ANA)
    deliver_history(ms)
    m365.sync(ANA)
    served(ms)
    widen(m365, months_ago(14.5))
    m365.sync(ANA)
    assert served(ms) == ["Old deal", "Old proposal"]
    widen(m365, months_ago(24))
    m365.sync(ANA)
    assert served(ms) == ["Ancient", "Old follow-up"]
    assert subjects(m365) == sorted([*OLD, *RECENT, "Ancient"])


def test_a_lost_sync_state_reads_the_widened_window_in_one_round(
    m365: M365, ms: MicrosoftEmulator
) -> None:
    """Graph forgot the folders' delta rounds: each starts again from the widened start, and
    no gap is listed besides (it would read the older stretch twice)."""
    m365.connect(ANA)
    deliver_history(ms)
    m365.sync(ANA)
    served(ms)
    widen(m365, months_ago(18))
    ms.expire_sync_states(ANA)
    m365.sync(ANA)
    assert served(ms) == sorted(OLD + RECENT)
    assert ms.calls["mail-list"] == 0
    assert subjects(m365) == sorted(OLD + RECENT)
    assert m365.connection(ANA)["stats"]["messages_seen"] == 5


def test_a_crash_mid_gap_resumes_after_the_last_page_stored(
    m365: M365, ms: MicrosoftEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "microsoft_page_size", 20)
    m365.connect(ANA)
    ms.deliver(ANA, sender=JOE, to=[ANA], subject="Recent", when=NOW - timedelta(days=1))
    old = [f"Old {n:02}" for n in range(50)]  # "Old 00" the newest
    for n, subject in enumerate(old):
        ms.deliver(ANA, sender=JOE, to=[ANA], subject=subject, when=months_ago(13) - timedelta(n))
    m365.sync(ANA)
    assert subjects(m365) == ["Recent"]
    widen(m365, months_ago(18))
    served(ms)
    # the two folders' delta pages (nothing new), then the Inbox gap's first page
    restore = interrupt_syncs(monkeypatch, after_pages=3, then=died, connector="microsoft_mail")
    m365.sync(ANA)
    assert m365.connection(ANA)["status"] == "error"
    assert subjects(m365) == sorted(["Recent", *old[:20]])  # newest first
    restore()
    served(ms)
    m365.sync(ANA)
    # resumed from the stored nextLink: the stored page is not asked for again
    assert served(ms) == old[20:]
    assert subjects(m365) == sorted(["Recent", *old])  # each once
    connection = m365.connection(ANA)
    assert (connection["status"], connection["last_error"]) == ("idle", None)
    assert connection["stats"]["activities_created"] == 51


def test_a_crash_mid_gap_of_a_calendar_resumes_after_the_last_page_stored(
    m365: M365, ms: MicrosoftEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    m365.connect(ANA)
    old = [f"Meeting {n:03}" for n in range(250)]  # "Meeting 000" the oldest
    for n, subject in enumerate(old):
        start = months_ago(17.5) + timedelta(hours=10 + 12 * n)
        ms.add_event(ANA, subject=subject, start=start, attendees=[(JOE, "accepted")])
    m365.sync(ANA)
    assert subjects(m365) == []
    widen(m365, months_ago(18))
    # its round's page of changes (none), then the gap's first page of 100, oldest first
    restore = interrupt_syncs(monkeypatch, after_pages=2, then=died, connector="microsoft_calendar")
    m365.sync(ANA)
    assert m365.connection(ANA)["status"] == "error"
    assert sorted(set(subjects(m365))) == old[:100]
    restore()
    served(ms)
    m365.sync(ANA)
    assert served(ms) == old[100:]  # resumed from the stored nextLink
    assert subjects(m365) == sorted(old * 2)  # each meeting scheduled and held, once
    assert m365.connection(ANA)["status"] == "idle"


def test_graph_requests_per_widening(m365: M365, ms: MicrosoftEmulator) -> None:
    """1,000 older received messages in the Inbox cost 4 list pages of 250, headers in them,
    plus one page for the Sent Items' empty gap; 200 older events, 2 calendarView pages."""
    m365.connect(ANA)
    for n in range(1000):
        when = months_ago(13) - timedelta(hours=n)
        ms.deliver(ANA, sender=f"c{n}@northwind.example", to=[ANA], subject=f"m{n}", when=when)
    for n in range(200):
        start = months_ago(13) - timedelta(days=n, hours=-3)
        ms.add_event(ANA, subject=f"e{n}", start=start, attendees=[(JOE, "accepted")])
    m365.sync(ANA)
    assert subjects(m365) == []
    before = dict(ms.calls)
    widen(m365, months_ago(24))
    m365.sync(ANA)
    made = {k: v - before.get(k, 0) for k, v in ms.calls.items() if v != before.get(k, 0)}
    # each folder's and the calendar's delta round, asked for its changes: one page each
    assert made == {"mail-delta": 2, "mail-list": 5, "calendar-delta": 1 + 2}
    assert len(m365.activities()) == 1000 + 200 * 2  # meetings: scheduled and held


def test_meetings_older_than_the_window_count_once_it_is_widened(
    m365: M365, ms: MicrosoftEmulator
) -> None:
    m365.connect(ANA)
    ms.add_event(
        ANA, subject="Recent demo", start=NOW - timedelta(days=5), attendees=[(JOE, "accepted")]
    )
    ms.add_event(ANA, subject="Old demo", start=months_ago(14), attendees=[(JOE, "accepted")])
    # a weekly series across the window's start: 5 occurrences before it, 5 inside
    first = (NOW - timedelta(days=settings.backfill_days, weeks=5, hours=-2)).replace(second=0)
    ms.add_event(ANA, subject="Old series", start=first, weekly=10, attendees=[(JOE, "accepted")])
    m365.sync(ANA)

    def held() -> list[str]:
        return sorted(s for kind, s in m365.activities() if kind == "meeting_held")

    assert held() == ["Old series"] * 5 + ["Recent demo"]
    served(ms)
    widen(m365, months_ago(18))
    m365.sync(ANA)
    connection = m365.connection(ANA)
    assert (connection["status"], connection["last_error"]) == ("idle", None)
    assert held() == ["Old demo", *["Old series"] * 10, "Recent demo"]  # none doubled
    # the gap's round: the events before the old window only (the series' master with them)
    assert served(ms) == ["Old demo", "Old series"]

    m365.sync(ANA)  # nothing new: the gap is not read again, nothing changes
    assert served(ms) == []
    assert held() == ["Old demo", *["Old series"] * 10, "Recent demo"]


def test_the_emulator_lists_messages_as_graph_documents(m365: M365, ms: MicrosoftEmulator) -> None:
    """The list query the widening sends is held to Graph's documented rules
    (https://learn.microsoft.com/graph/api/user-list-messages)."""
    m365.connect(ANA)
    for n in range(12):
        ms.deliver(ANA, sender=JOE, to=[ANA], subject=f"m{n}", when=months_ago(13) - timedelta(n))
    token = next(t for t, email in ms.access_tokens.items() if email == ANA)
    url = f"{ms.graph}/me/mailFolders/inbox/messages"
    with httpx2.Client(verify=ms.ssl_context()) as http:

        def get(target: str, **params: str) -> httpx2.Response:
            auth = {"Authorization": f"Bearer {token}"}
            return http.get(target, params=params or None, headers=auth)

        first = get(url).json()  # 10 a page by default, the next link carries the query
        assert len(first["value"]) == 10 and "%24skip=10" in first["@odata.nextLink"]
        assert len(get(first["@odata.nextLink"]).json()["value"]) == 2
        unfiltered = get(url, **{"$orderby": "receivedDateTime desc"})
        assert unfiltered.status_code == 400
        assert unfiltered.json()["error"]["code"] == "InefficientFilter"
        assert get(url, **{"$top": "1001"}).status_code == 400
        since = months_ago(13) - timedelta(days=2, hours=1)
        listed = get(
            url,
            **{
                "$filter": f"receivedDateTime ge {since:%Y-%m-%dT%H:%M:%SZ}",
                "$orderby": "receivedDateTime desc",
                "$select": "subject",
            },
        ).json()
        assert [m["subject"] for m in listed["value"]] == ["m0", "m1", "m2"]
