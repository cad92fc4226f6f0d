"""The evaluation against a real organization: every kind opens for its subject, once; open
alerts follow their numbers; cleared ones resolve; returning ones open a new row; quota periods
attained are announced once; no second open alert, even from two evaluations at once."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.exc import IntegrityError

from app.alerts.models import Alert
from app.db import session_scope
from app.models import Connection, utcnow
from tests.alerts.scene import NOW, Scene, scene
from tests.metrics import facts
from tests.quotas.funnel import funnel


@pytest.fixture
def s(client: TestClient) -> Scene:
    return scene(funnel(client))


def expected(s: Scene) -> set[tuple[str, str]]:
    q = s.quotas
    return {
        ("behind_pace", f"quota:{q['emails']}"),
        ("behind_pace", f"quota:{q['revenue']}"),
        ("low_coverage", f"quota:{q['revenue']}"),
        ("deal_going_cold", f"deal:{s.deal}"),
        ("few_new_opportunities", f"user:{s.f.ids['bob']}"),
        ("activity_drop", f"user:{s.f.ids['cid']}"),
        ("connection_broken", f"connection:{s.connection}"),
    }


def test_every_kind_opens_once_for_its_subject(s: Scene) -> None:
    summary = s.evaluate()
    assert set(s.open_alerts()) == expected(s)
    assert summary.opened == 7
    again = s.evaluate()
    assert (again.opened, again.resolved, again.updated, again.still_open) == (0, 0, 0, 7)
    assert len(s.all_alerts()) == 7  # no second row for anything
    alerts = s.open_alerts()
    emails = alerts[("behind_pace", f"quota:{s.quotas['emails']}")]
    assert emails.message.startswith("Ann: 5 of 20 emails sent with 63% of the month gone; pace")
    assert emails.evidence["actual"] == 5 and emails.user_id == s.f.ids["ann"]
    cold = alerts[("deal_going_cold", f"deal:{s.deal}")]
    assert (cold.deal_id, cold.user_id, cold.evidence["quiet_days"]) == (s.deal, s.f.ids["ann"], 15)
    assert alerts[("activity_drop", f"user:{s.f.ids['cid']}")].evidence["mean"] == 6
    assert alerts[("few_new_opportunities", f"user:{s.f.ids['bob']}")].evidence["average"] == 2
    broken = alerts[("connection_broken", f"connection:{s.connection}")]
    assert (broken.connection_id, broken.user_id) == (s.connection, s.f.ids["dan"])
    opened = [data for event, data in s.events() if event == "alert.opened"]
    assert sorted(d["id"] for d in opened) == sorted(a.id for a in alerts.values())
    assert {d["kind"] for d in opened} == {k for k, _ in expected(s)}


def test_resolved_when_the_condition_clears_and_a_new_row_when_it_returns(s: Scene) -> None:
    s.evaluate()
    key = ("behind_pace", f"quota:{s.quotas['emails']}")
    first = s.open_alerts()[key]
    s.f.activities("ann", "email_sent", "2024-05-19", 10)  # 15 of 20 with 63% gone: pace 1.19
    summary = s.evaluate()
    assert key not in s.open_alerts() and summary.resolved == 1
    resolved = next(a for a in s.all_alerts() if a.id == first.id)
    assert resolved.resolved_at == NOW
    assert [d["id"] for e, d in s.events() if e == "alert.resolved"] == [first.id]
    # June: a new period with nothing sent yet, 63% gone: behind again, as a new alert
    june = NOW + timedelta(days=31)
    s.evaluate(june)
    reopened = s.open_alerts()[key]
    assert reopened.id != first.id and reopened.opened_at == june
    assert [a.id for a in s.all_alerts() if (a.kind, a.subject_key) == key] == [
        first.id,
        reopened.id,
    ]


def test_an_open_alert_keeps_its_row_with_the_latest_numbers(s: Scene) -> None:
    s.evaluate()
    key = ("deal_going_cold", f"deal:{s.deal}")
    before = s.open_alerts()[key]
    summary = s.evaluate(NOW + timedelta(days=2))
    after = s.open_alerts()[key]
    assert after.id == before.id and after.opened_at == before.opened_at
    assert (before.evidence["quiet_days"], after.evidence["quiet_days"]) == (15, 17)
    assert summary.updated >= 1


def test_a_deal_warmed_up_by_any_users_activity_with_its_contacts_resolves(s: Scene) -> None:
    s.evaluate()
    with session_scope() as session:
        contact = facts.contact(session, s.org_id, "joe@northwind.example")
    patched = s.f.org.client.patch(
        f"/api/v1/deals/{s.deal}", json={"contact_ids": [contact]}, headers=s.f.org.as_admin()
    )
    assert patched.status_code == 200, patched.text
    s.f.activities("bob", "email_sent", "2024-05-18", 1, "joe@northwind.example")  # not the owner
    s.evaluate()
    assert ("deal_going_cold", f"deal:{s.deal}") not in s.open_alerts()


def test_a_connection_in_error_opens_after_24_hours_of_failing(s: Scene) -> None:
    with session_scope() as session:
        row = session.get_one(Connection, s.connection)
        row.status, row.last_synced_at = "error", NOW - timedelta(hours=23)
    s.evaluate()
    assert ("connection_broken", f"connection:{s.connection}") not in s.open_alerts()
    s.evaluate(NOW + timedelta(hours=2))
    assert ("connection_broken", f"connection:{s.connection}") in s.open_alerts()


def test_thresholds_are_the_organizations(s: Scene) -> None:
    put = s.f.org.client.put(
        "/api/v1/org/alert-settings",
        json={"pace_below": 0.3, "activity_min_mean": 7},
        headers=s.f.org.as_admin(),
    )
    assert put.status_code == 200, put.text
    s.evaluate()
    opened = set(s.open_alerts())
    assert ("behind_pace", f"quota:{s.quotas['emails']}") not in opened  # pace 0.40
    assert ("behind_pace", f"quota:{s.quotas['revenue']}") in opened  # pace 0
    assert ("activity_drop", f"user:{s.f.ids['cid']}") not in opened  # mean 6 < 7


def test_a_quota_attained_is_announced_once_per_period(s: Scene) -> None:
    s.f.activities("ann", "email_sent", "2024-05-19", 15)  # 20 of 20
    s.evaluate()
    s.evaluate(NOW + timedelta(hours=1))
    attained = [d for e, d in s.events() if e == "quota.attained"]
    assert len(attained) == 1
    (data,) = attained
    assert data["quota_id"] == s.quotas["emails"]
    assert (data["metric"], data["period"], data["period_start"]) == (
        "emails_sent",
        "month",
        "2024-05-01",
    )
    assert (data["target"], data["actual"], data["attainment"]) == (20, 20, 1)
    assert data["subject"] == {"user_id": s.f.ids["ann"]}


def test_the_database_refuses_a_second_open_alert(s: Scene) -> None:
    s.evaluate()
    with pytest.raises(IntegrityError), session_scope() as session:
        session.add(
            Alert(
                org_id=s.org_id,
                kind="deal_going_cold",
                subject_key=f"deal:{s.deal}",
                message="again",
                evidence={},
                opened_at=utcnow(),
            )
        )
        session.flush()


def test_two_evaluations_at_once_leave_one_open_alert_each(s: Scene) -> None:
    barrier = threading.Barrier(2)
    failures: list[BaseException] = []

    def run() -> None:
        barrier.wait()
        try:
            s.evaluate()
        except Exception as error:  # the loser of the race: its transaction rolled back
            failures.append(error)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(failures) <= 1
    assert set(s.open_alerts()) == expected(s)
    assert len(s.all_alerts()) == 7
