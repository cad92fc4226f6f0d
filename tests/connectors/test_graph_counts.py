"""What Microsoft 365 mail and calendars count, end to end (consent through the API, the
real worker and runner, counts read back through the API; SQLite and PostgreSQL): automated
mail told by its headers, the minimal-permission mode and its deviation, every occurrence
of a series counted with its master's properties."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from app.activities.models import EventCopy
from app.db import session_scope
from app.models import Connection
from connectors.microsoft import READ_BASIC_DEVIATION
from tests.emulators.microsoft import MicrosoftEmulator
from tests.sync.test_microsoft_sync import ANA, M365, NOW, m365, ms

__all__ = ["m365", "ms"]  # the fixtures, shared with tests/sync/test_microsoft_sync.py


def listed(m365: M365, path: str) -> list[dict[str, Any]]:
    answer = m365.org.client.get(f"/api/v1/{path}?limit=1000", headers=m365.org.as_admin())
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


def newsletters(ms: MicrosoftEmulator) -> None:
    """Automated mail told only by its headers, from senders that look like people."""
    for n, headers in enumerate(
        [
            {"List-Unsubscribe": "<https://news.initech.example/u>", "List-Id": "<n.initech>"},
            {"Precedence": "bulk"},
            {"Auto-Submitted": "auto-generated"},
        ]
    ):
        ms.deliver(
            ANA,
            sender=f"Initech <team{n}@initech.example>",
            to=[ANA],
            subject=f"Initech news {n}",
            headers=headers,
        )
    ms.deliver(ANA, sender="Joe <joe@northwind.example>", to=[ANA], subject="Quote please")


def test_newsletters_make_no_activity_contact_or_company(m365: M365, ms: MicrosoftEmulator) -> None:
    connected = m365.connect(ANA)["connections"][0]
    assert connected["deviations"] == [] and connected["config"]["mail_permission"] == "Mail.Read"
    newsletters(ms)
    m365.sync(ANA)
    assert m365.connection(ANA)["status"] == "idle", m365.connection(ANA)["last_error"]
    assert m365.activities() == [("email_received", "Quote please")]
    assert [c["emails"] for c in listed(m365, "contacts")] == [["joe@northwind.example"]]
    assert [c["domains"] for c in listed(m365, "companies")] == [["northwind.example"]]


def test_the_minimal_permission_shows_its_deviation_on_the_connection(
    m365: M365, ms: MicrosoftEmulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.sync import microsoft as instance

    exact = instance.microsoft_app
    monkeypatch.setattr(  # the instance set to ask for Mail.ReadBasic only
        instance, "microsoft_app", lambda: replace(exact(), mail_permission="Mail.ReadBasic")
    )
    connected = m365.connect(ANA)["connections"][0]
    assert connected["deviations"] == [READ_BASIC_DEVIATION]
    assert m365.connection(ANA)["deviations"] == [READ_BASIC_DEVIATION]
    newsletters(ms)
    m365.sync(ANA)
    # the deviation the connection shows: newsletters count as customer email
    assert len(m365.activities()) == 4
    assert ms.calls["batch"] == 0


def test_a_weekly_customer_check_in_counts_every_occurrence(
    m365: M365, ms: MicrosoftEmulator
) -> None:
    m365.connect(ANA)
    start = (NOW - timedelta(days=30)).replace(second=0)
    ids = ms.add_event(
        ANA,
        subject="Customer check-in",
        start=start,
        weekly=7,  # 5 held, 2 to come
        attendees=[("kim@globex.example", "accepted")],
        online=True,
    )
    m365.sync(ANA)
    assert m365.connection(ANA)["status"] == "idle", m365.connection(ANA)["last_error"]
    kinds = [kind for kind, subject in m365.activities() if subject == "Customer check-in"]
    assert kinds.count("meeting_scheduled") == 7
    assert kinds.count("meeting_held") == 5
    kim = [c for c in listed(m365, "contacts") if c["emails"] == ["kim@globex.example"]]
    assert len(kim) == 1
    held = [a for a in listed(m365, "activities") if a["type"] == "meeting_held"]
    assert {tuple(a["contact_ids"]) for a in held} == {(kim[0]["id"],)}

    ms.update(ANA, ids[0], isCancelled=True)  # cancelled: it stays, marked so
    ms.delete(ANA, ids[1])  # deleted from the series: Exchange sends no @removed for it
    m365.sync(ANA)
    kinds = [kind for kind, subject in m365.activities() if subject == "Customer check-in"]
    assert kinds.count("meeting_held") == 3 and kinds.count("meeting_scheduled") == 5


def test_occurrences_stored_before_the_series_were_read_whole_are_replaced(
    m365: M365, ms: MicrosoftEmulator
) -> None:
    m365.connect(ANA)
    ids = ms.add_event(
        ANA,
        subject="Customer check-in",
        start=(NOW - timedelta(days=20)).replace(second=0),
        weekly=3,
        attendees=[("kim@globex.example", "accepted")],
    )
    m365.sync(ANA)
    counted = m365.activities()
    with session_scope() as session:  # as the version that stored occurrences one by one left them
        connection = session.get_one(Connection, m365.connections[ANA])
        for copy in session.scalars(
            select(EventCopy).where(EventCopy.connection_id == connection.id)
        ).all():
            instance = copy.source_id.split("/")[1]
            session.add(
                EventCopy(
                    org_id=copy.org_id,
                    connection_id=copy.connection_id,
                    user_id=copy.user_id,
                    resource=instance,
                    source_id=instance,
                    event_key=copy.event_key,
                    version="old",
                    starts_at=copy.starts_at,
                    ends_at=copy.ends_at,
                    data=copy.data,
                )
            )
        cursors = dict(connection.cursors)
        cursors["microsoft_calendar"] = json.dumps({"v": 1, "window": None, "link": None})
        connection.cursors = cursors
    m365.sync(ANA)
    assert m365.connection(ANA)["status"] == "idle", m365.connection(ANA)["last_error"]
    with session_scope() as session:
        left = session.scalars(
            select(EventCopy.source_id).where(EventCopy.connection_id == m365.connections[ANA])
        ).all()
    assert sorted(s.split("/")[-1] for s in left) == sorted(ids)  # the old copies are gone
    assert m365.activities() == counted
