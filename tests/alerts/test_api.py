"""GET /alerts, GET /alerts/{id}, acknowledge and the settings, as each role sees them."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.alerts.scene import Scene, scene
from tests.api import make_org
from tests.quotas.funnel import funnel


@pytest.fixture
def s(client: TestClient) -> Scene:
    s = scene(funnel(client))
    s.evaluate()
    return s


def items(s: Scene, who: str, **params: Any) -> list[dict[str, Any]]:
    body = s.f.ok("/alerts", who, limit=1000, **params)
    assert body["next_cursor"] is None
    result: list[dict[str, Any]] = body["items"]
    return result


Seen = tuple[str, tuple[tuple[str, int], ...]]


def seen(kind: str, subject: dict[str, int]) -> Seen:
    return kind, tuple(sorted(subject.items()))


def kinds(found: list[dict[str, Any]]) -> list[Seen]:
    return sorted(seen(a["kind"], a["subject"]) for a in found)


def test_each_role_sees_the_alerts_about_what_it_may_see(s: Scene) -> None:
    ids, q = s.f.ids, s.quotas
    ann = [
        seen("behind_pace", {"quota_id": q["emails"], "user_id": ids["ann"]}),
        seen("behind_pace", {"quota_id": q["revenue"], "user_id": ids["ann"]}),
        seen("deal_going_cold", {"deal_id": s.deal, "user_id": ids["ann"]}),
        seen("low_coverage", {"quota_id": q["revenue"], "user_id": ids["ann"]}),
    ]
    team_a = [
        *ann,
        seen("activity_drop", {"user_id": ids["cid"]}),
        seen("few_new_opportunities", {"user_id": ids["bob"]}),
    ]
    dan = [seen("connection_broken", {"connection_id": s.connection, "user_id": ids["dan"]})]
    assert kinds(items(s, "ann")) == sorted(ann)
    assert kinds(items(s, "bob")) == [seen("few_new_opportunities", {"user_id": ids["bob"]})]
    assert kinds(items(s, "mia")) == sorted(team_a)
    assert kinds(items(s, "max")) == dan
    assert kinds(items(s, "dan")) == dan
    assert kinds(items(s, "admin")) == sorted(team_a + dan)
    one = items(s, "ann", kind="deal_going_cold")[0]
    assert set(one) == {
        "id",
        "kind",
        "subject",
        "message",
        "evidence",
        "opened_at",
        "resolved_at",
        "acknowledged_at",
    }
    assert s.f.ok(f"/alerts/{one['id']}", "mia") == one
    for who in ("bob", "max", "dan"):
        response = s.f.get(f"/alerts/{one['id']}", who)
        assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


def test_team_alerts_are_the_teams_managers(s: Scene) -> None:
    team_quota = s.f.quota("emails_sent", 100, team_id=s.f.team)
    s.evaluate()
    subject = {"quota_id": team_quota, "team_id": s.f.team}
    alert = seen("behind_pace", subject)
    assert alert in kinds(items(s, "mia"))
    assert alert in kinds(items(s, "admin"))
    assert alert not in kinds(items(s, "ann"))
    assert alert not in kinds(items(s, "max"))
    assert alert in kinds(items(s, "mia", team_id=s.f.team))


def test_filters(s: Scene) -> None:
    ids = s.f.ids
    assert {a["kind"] for a in items(s, "admin", kind="low_coverage")} == {"low_coverage"}
    assert {a["subject"]["user_id"] for a in items(s, "admin", user_id=ids["bob"])} == {ids["bob"]}
    team_b = items(s, "admin", team_id=ids["team_b"])
    assert [a["kind"] for a in team_b] == ["connection_broken"]
    assert len(items(s, "admin", status="open")) == 7
    assert items(s, "admin", status="resolved") == []
    s.f.activities("ann", "email_sent", "2024-05-19", 10)
    s.evaluate()
    resolved = items(s, "admin", status="resolved")
    assert [a["subject"].get("quota_id") for a in resolved] == [s.quotas["emails"]]
    assert resolved[0]["resolved_at"] is not None
    # a user or team the caller cannot see is a 404, as elsewhere
    assert s.f.get("/alerts", "mia", user_id=ids["dan"]).status_code == 404
    assert s.f.get("/alerts", "mia", team_id=ids["team_b"]).status_code == 404
    assert s.f.get("/alerts", "ann", user_id=ids["bob"]).status_code == 404
    for bad in ({"kind": "nope"}, {"status": "closed"}, {"user_id": 0}):
        assert s.f.get("/alerts", "admin", **bad).status_code == 422, bad


def test_pages_newest_first(s: Scene) -> None:
    everything = [a["id"] for a in items(s, "admin")]
    assert everything == sorted(everything, reverse=True)
    seen: list[int] = []
    cursor = None
    while True:
        body = s.f.ok("/alerts", "admin", limit=3, cursor=cursor)
        seen += [a["id"] for a in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == everything


def test_acknowledge(s: Scene) -> None:
    alert = items(s, "ann", kind="deal_going_cold")[0]
    url = f"/api/v1/alerts/{alert['id']}/acknowledge"
    client = s.f.org.client
    assert client.post(url, headers=s.f.org.as_user("bob@acme.example")).status_code == 404
    first = client.post(url, headers=s.f.org.as_user("ann@acme.example"))
    assert first.status_code == 200, first.text
    assert first.json()["acknowledged_at"] is not None
    again = client.post(url, headers=s.f.org.as_user("mia@acme.example"))
    assert again.json()["acknowledged_at"] == first.json()["acknowledged_at"]
    assert s.f.ok(f"/alerts/{alert['id']}", "ann")["acknowledged_at"] is not None
    s.evaluate()  # still holds: the same row, still acknowledged
    assert s.f.ok(f"/alerts/{alert['id']}", "ann")["acknowledged_at"] is not None


def test_settings(s: Scene) -> None:
    client, org = s.f.org.client, s.f.org
    defaults = s.f.ok("/org/alert-settings", "ann")
    assert defaults["pace_below"] == 0.7 and defaults["pace_min_elapsed"] == 0.25
    assert defaults["coverage_below"] == 3.0 and defaults["connection_error_hours"] == 24
    assert defaults["activity_baseline_weeks"] == 8 and defaults["opportunities_recent_days"] == 30
    url = "/api/v1/org/alert-settings"
    for who in ("ann@acme.example", "mia@acme.example"):
        response = client.put(url, json={"pace_below": 0.5}, headers=org.as_user(who))
        assert response.status_code == 403
    for bad in (
        {"pace_min_elapsed": 1.5},
        {"pace_below": -1},
        {"activity_baseline_weeks": 0},
        {"unknown": 1},
        {"connection_error_hours": "soon"},
    ):
        response = client.put(url, json=bad, headers=org.as_admin())
        assert response.status_code == 422, (bad, response.text)
    put = client.put(url, json={"pace_below": 0.5}, headers=org.as_admin())
    assert put.status_code == 200, put.text
    assert put.json() == {**defaults, "pace_below": 0.5}
    assert s.f.ok("/org/alert-settings", "ann") == {**defaults, "pace_below": 0.5}
    # a PUT replaces: what it leaves out goes back to the default
    client.put(url, json={"coverage_below": 2}, headers=org.as_admin())
    assert s.f.ok("/org/alert-settings", "ann") == {**defaults, "coverage_below": 2}


def test_another_organization_sees_nothing(s: Scene) -> None:
    other = make_org(s.f.org.client, name="Umbrella", domains=("umbrella.example",))
    alert = items(s, "admin")[0]
    response = s.f.org.client.get(f"/api/v1/alerts/{alert['id']}", headers=other.as_admin())
    assert response.status_code == 404
    ack = f"/api/v1/alerts/{alert['id']}/acknowledge"
    assert s.f.org.client.post(ack, headers=other.as_admin()).status_code == 404
    listed = s.f.org.client.get("/api/v1/alerts", headers=other.as_admin())
    assert listed.json()["items"] == []
    settings = s.f.org.client.get("/api/v1/org/alert-settings", headers=other.as_admin())
    assert settings.json()["pace_below"] == 0.7
