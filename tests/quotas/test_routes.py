"""Metrics, quotas and attainment through the API, on SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from app.db import session_scope
from tests.api import Org, make_org
from tests.metrics import facts

BRUSSELS = ZoneInfo("Europe/Brussels")


@dataclass
class World:
    """Team A (manager Mia; reps Ann and Bob) and team B (manager Max; rep Cid)."""

    org: Org
    team_a: int
    team_b: int
    ids: dict[str, int]

    def get(self, who: str, path: str, **params: Any) -> Any:
        return self.org.client.get(path, params=params, headers=self.headers(who))

    def post(self, who: str, path: str, body: dict[str, Any]) -> Any:
        return self.org.client.post(path, json=body, headers=self.headers(who))

    def headers(self, who: str) -> dict[str, str]:
        return self.org.as_admin() if who == "admin" else self.org.as_user(f"{who}@acme.example")


@pytest.fixture
def world(client: TestClient) -> World:
    org = make_org(client)
    mia = org.user("mia@acme.example", role="manager")
    max_ = org.user("max@acme.example", role="manager")
    team_a = org.team("A", manager_id=mia["id"])["id"]
    team_b = org.team("B", manager_id=max_["id"])["id"]
    ids = {"mia": mia["id"], "max": max_["id"]}
    for name, team in (("ann", team_a), ("bob", team_a), ("cid", team_b)):
        ids[name] = org.user(f"{name}@acme.example", team_id=team)["id"]
    return World(org, team_a, team_b, ids)


def local(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=BRUSSELS).astimezone(UTC)


def record(org_id: int, user_id: int, kind: str, when: str, *contacts: str) -> None:
    """One activity at a Brussels wall-clock time, linked to contacts made on demand."""
    with session_scope() as session:
        facts.activity(session, org_id, user_id, kind, local(when), contacts)


def values(response: Any) -> list[tuple[str, str, Any]]:
    assert response.status_code == 200, response.text
    return [(p["period_start"], p["period_end"], p["value"]) for p in response.json()["series"]]


WEEKS = {"metric": "emails_sent", "period": "week", "start": "2024-05-06", "end": "2024-05-27"}


def test_weekly_series_splits_at_local_midnight_monday(world: World) -> None:
    ann = world.ids["ann"]
    record(world.org.id, ann, "email_sent", "2024-05-13T00:10")
    record(world.org.id, ann, "email_sent", "2024-05-19T23:30")  # 21:30 UTC, still that week
    record(world.org.id, ann, "email_sent", "2024-05-20T00:30")  # 22:30 UTC Sunday: next week
    record(world.org.id, ann, "email_received", "2024-05-14T10:00")  # another metric
    body = world.get("ann", "/api/v1/metrics", **WEEKS)
    assert body.json()["subject"] == {"user_id": ann}
    assert values(body) == [
        ("2024-05-06", "2024-05-12", 0),
        ("2024-05-13", "2024-05-19", 2),
        ("2024-05-20", "2024-05-26", 1),
        ("2024-05-27", "2024-06-02", 0),
    ]


def test_daily_series_across_spring_forward(world: World) -> None:
    ann = world.ids["ann"]
    record(world.org.id, ann, "call", "2024-03-31T23:30")  # a 23-hour day: 21:30 UTC
    record(world.org.id, ann, "call", "2024-04-01T00:15")
    params = {"metric": "calls", "period": "day", "start": "2024-03-30", "end": "2024-04-01"}
    assert [v for _, _, v in values(world.get("ann", "/api/v1/metrics", **params))] == [0, 1, 1]


def test_sunday_week_start_and_fiscal_quarters(client: TestClient) -> None:
    org = make_org(client, week_start="sunday", fiscal_year_start_month=4)
    me = org.client.get("/api/v1/users/me", headers=org.as_admin()).json()["id"]
    record(org.id, me, "meeting_held", "2024-05-19T09:00")  # a Sunday: starts a week
    record(org.id, me, "meeting_held", "2024-03-31T12:00")  # last day of fiscal Q4
    weeks = {
        "metric": "meetings_held",
        "period": "week",
        "start": "2024-05-18",
        "end": "2024-05-19",
    }
    assert values(client.get("/api/v1/metrics", params=weeks, headers=org.as_admin())) == [
        ("2024-05-12", "2024-05-18", 0),
        ("2024-05-19", "2024-05-25", 1),
    ]
    quarters = {**weeks, "period": "quarter", "start": "2024-03-01", "end": "2024-07-01"}
    assert values(client.get("/api/v1/metrics", params=quarters, headers=org.as_admin())) == [
        ("2024-01-01", "2024-03-31", 1),
        ("2024-04-01", "2024-06-30", 1),
        ("2024-07-01", "2024-09-30", 0),
    ]


def test_team_sums_and_distinct_contacts(world: World) -> None:
    org, ids = world.org.id, world.ids
    record(org, ids["ann"], "email_sent", "2024-05-14T09:00", "x@north.example")
    record(org, ids["ann"], "email_received", "2024-05-15T09:00", "x@north.example", "y@n.example")
    record(org, ids["bob"], "email_sent", "2024-05-14T09:00", "x@north.example", "z@s.example")
    record(org, ids["bob"], "email_sent", "2024-05-21T09:00", "x@north.example")
    record(org, ids["cid"], "email_sent", "2024-05-14T09:00", "w@e.example")  # other team
    team = {"team_id": world.team_a}
    sent = values(world.get("mia", "/api/v1/metrics", **WEEKS, **team))
    assert [v for _, _, v in sent] == [0, 2, 1, 0]
    engaged = {**WEEKS, "metric": "contacts_engaged"}
    by_ann = values(world.get("mia", "/api/v1/metrics", **engaged, user_id=ids["ann"]))
    by_bob = values(world.get("mia", "/api/v1/metrics", **engaged, user_id=ids["bob"]))
    by_team = values(world.get("mia", "/api/v1/metrics", **engaged, **team))
    assert [v for _, _, v in by_ann] == [0, 2, 0, 0]
    assert [v for _, _, v in by_bob] == [0, 2, 1, 0]
    assert [v for _, _, v in by_team] == [0, 3, 1, 0]
    subject = world.get("mia", "/api/v1/metrics", **engaged, **team).json()["subject"]
    assert subject == {"team_id": world.team_a}


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"metric": "emails"}, 422),
        ({"period": "fortnight"}, 422),
        ({"start": "2024-05-27", "end": "2024-05-06"}, 400),
        ({"start": "not-a-date"}, 422),
        ({"period": "day", "start": "2020-01-01", "end": "2024-01-01"}, 400),  # > 1000 periods
        ({"period": "year", "start": "0001-01-01", "end": "0001-01-01"}, 400),
        ({"user_id": 1, "team_id": 1}, 422),
    ],
)
def test_metric_bad_input(world: World, params: dict[str, Any], status: int) -> None:
    response = world.get("admin", "/api/v1/metrics", **{**WEEKS, **params})
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] in {"bad_request", "validation_error"}


def test_who_sees_whose_metrics(world: World, client: TestClient) -> None:
    ids = world.ids
    assert world.get("ann", "/api/v1/metrics", **WEEKS, user_id=ids["bob"]).status_code == 404
    assert world.get("ann", "/api/v1/metrics", **WEEKS, team_id=world.team_a).status_code == 404
    assert world.get("mia", "/api/v1/metrics", **WEEKS, user_id=ids["ann"]).status_code == 200
    assert world.get("mia", "/api/v1/metrics", **WEEKS, user_id=ids["cid"]).status_code == 404
    assert world.get("mia", "/api/v1/metrics", **WEEKS, team_id=world.team_b).status_code == 404
    assert world.get("admin", "/api/v1/metrics", **WEEKS, team_id=world.team_b).status_code == 200
    other = make_org(client, name="Globex", domains=("globex.example",))
    params: dict[str, str | int] = {**WEEKS, "user_id": ids["ann"]}
    response = client.get("/api/v1/metrics", params=params, headers=other.as_admin())
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert client.get("/api/v1/metrics", params=WEEKS).status_code == 401


def quota(world: World, **fields: Any) -> dict[str, Any]:
    body = {"metric": "emails_sent", "period": "week", "target": 10, **fields}
    body.setdefault("effective_from", "2024-05-01")
    return body


def test_quota_lifecycle(world: World) -> None:
    ann = world.ids["ann"]
    created = world.post("admin", "/api/v1/quotas", quota(world, user_id=ann))
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["user_id"] == ann
    assert body["team_id"] is None
    assert (body["target"], body["effective_to"]) == (10, None)
    path = f"/api/v1/quotas/{body['id']}"
    assert world.get("ann", path).json()["id"] == body["id"]
    patch = {"target": 12, "effective_to": "2024-12-31"}
    changed = world.org.client.patch(path, json=patch, headers=world.org.as_admin())
    assert changed.status_code == 200, changed.text
    assert (changed.json()["target"], changed.json()["effective_to"]) == (12, "2024-12-31")
    cleared = world.org.client.patch(
        path, json={"effective_to": None}, headers=world.headers("mia")
    )
    assert cleared.json()["effective_to"] is None
    reversed_dates = {"effective_from": "2024-05-01", "effective_to": "2024-04-01"}
    for bad in ({"target": None}, {"target": 0}, reversed_dates):
        response = world.org.client.patch(path, json=bad, headers=world.org.as_admin())
        assert response.status_code == 422, (bad, response.text)
    # an end before the start the quota has: a conflict with it, not a malformed body
    ends_early = {"effective_to": "2024-04-01"}
    response = world.org.client.patch(path, json=ends_early, headers=world.org.as_admin())
    assert response.status_code == 409, response.text
    assert world.org.client.delete(path, headers=world.org.as_admin()).status_code == 204
    assert world.get("admin", path).status_code == 404


@pytest.mark.parametrize(
    ("fields", "status"),
    [
        ({"metric": "emails"}, 422),
        ({"period": "fortnight"}, 422),
        ({"target": 0}, 422),
        ({"target": -5}, 422),
        ({"effective_from": "2024-05-01", "effective_to": "2024-04-30"}, 422),
        ({"both": True}, 422),
        ({"neither": True}, 422),
        ({"target": "1e13"}, 422),
        ({"target": "NaN"}, 422),
        ({"user_id": 10**9}, 404),
    ],
)
def test_quota_validation(world: World, fields: dict[str, Any], status: int) -> None:
    body = quota(world, user_id=world.ids["ann"])
    fields = dict(fields)  # the parameters are shared by both backends' runs
    if fields.pop("both", False):
        body["team_id"] = world.team_a
    if fields.pop("neither", False):
        del body["user_id"]
    response = world.post("admin", "/api/v1/quotas", {**body, **fields})
    assert response.status_code == status, response.text


def test_overlapping_quotas_conflict(world: World) -> None:
    ann = world.ids["ann"]
    first = quota(world, user_id=ann, effective_to="2024-06-30")
    assert world.post("admin", "/api/v1/quotas", first).status_code == 201
    clash = quota(world, user_id=ann, effective_from="2024-06-30")
    assert world.post("admin", "/api/v1/quotas", clash).status_code == 409
    after = quota(world, user_id=ann, effective_from="2024-07-01")
    assert world.post("admin", "/api/v1/quotas", after).status_code == 201
    monthly = quota(world, user_id=ann, period="month")  # another period is another target
    assert world.post("admin", "/api/v1/quotas", monthly).status_code == 201


def test_quota_roles(world: World, client: TestClient) -> None:
    ids, post = world.ids, world.post
    assert post("ann", "/api/v1/quotas", quota(world, user_id=ids["ann"])).status_code == 403
    assert post("mia", "/api/v1/quotas", quota(world, user_id=ids["mia"])).status_code == 403
    assert post("mia", "/api/v1/quotas", quota(world, user_id=ids["cid"])).status_code == 404
    assert post("mia", "/api/v1/quotas", quota(world, team_id=world.team_b)).status_code == 404
    ann_quota = post("mia", "/api/v1/quotas", quota(world, user_id=ids["ann"])).json()["id"]
    bob_quota = post("mia", "/api/v1/quotas", quota(world, user_id=ids["bob"])).json()["id"]
    team_quota = post("mia", "/api/v1/quotas", quota(world, team_id=world.team_a)).json()["id"]
    cid_quota = post("admin", "/api/v1/quotas", quota(world, user_id=ids["cid"])).json()["id"]
    assert world.get("ann", f"/api/v1/quotas/{ann_quota}").status_code == 200
    assert world.get("ann", f"/api/v1/quotas/{bob_quota}").status_code == 404
    assert world.get("ann", f"/api/v1/quotas/{team_quota}").status_code == 404
    own = f"/api/v1/quotas/{ann_quota}"
    assert client.patch(own, json={"target": 1}, headers=world.headers("ann")).status_code == 403
    assert client.delete(own, headers=world.headers("ann")).status_code == 403
    assert world.get("mia", f"/api/v1/quotas/{cid_quota}").status_code == 404
    listed = {q["id"] for q in world.get("ann", "/api/v1/quotas").json()["items"]}
    assert listed == {ann_quota}
    listed = {q["id"] for q in world.get("mia", "/api/v1/quotas").json()["items"]}
    assert listed == {ann_quota, bob_quota, team_quota}
    by_team = world.get("mia", "/api/v1/quotas", team_id=world.team_a).json()["items"]
    assert [q["id"] for q in by_team] == [team_quota]
    assert world.get("ann", "/api/v1/quotas", user_id=ids["bob"]).status_code == 404
    other = make_org(client, name="Globex", domains=("globex.example",))
    assert client.get(own, headers=other.as_admin()).status_code == 404
    assert client.get("/api/v1/quotas", headers=other.as_admin()).json()["items"] == []


def test_quota_pages(world: World) -> None:
    for metric in ("emails_sent", "emails_received", "calls"):
        body = quota(world, user_id=world.ids["bob"], metric=metric)
        assert world.post("admin", "/api/v1/quotas", body).status_code == 201
    seen: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = world.get("admin", "/api/v1/quotas", **params).json()
        seen += [q["metric"] for q in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ["emails_sent", "emails_received", "calls"]
    assert world.get("admin", "/api/v1/quotas", cursor="!!").status_code == 400


def test_attainment_on_a_past_date(world: World) -> None:
    org, ids, post = world.org.id, world.ids, world.post
    for when in ("2024-05-13T10:00", "2024-05-14T10:00", "2024-05-15T23:30"):
        record(org, ids["ann"], "email_sent", when)
    record(org, ids["ann"], "email_sent", "2024-05-16T00:30")  # after the end of the 15th
    record(org, ids["ann"], "email_sent", "2024-05-12T23:59")  # the week before
    record(org, ids["bob"], "email_sent", "2024-05-15T08:00")
    weekly = post("admin", "/api/v1/quotas", quota(world, user_id=ids["ann"])).json()["id"]
    post("admin", "/api/v1/quotas", quota(world, user_id=ids["bob"], target=12))
    post("admin", "/api/v1/quotas", quota(world, user_id=ids["ann"], period="month", target=40))
    ended = quota(world, user_id=ids["ann"], metric="calls", effective_to="2024-05-14")
    later = quota(world, user_id=ids["ann"], metric="calls", effective_from="2024-05-16")
    for body in (ended, later):  # neither is in force on the 15th
        assert post("admin", "/api/v1/quotas", body).status_code == 201
    team = post("admin", "/api/v1/quotas", quota(world, team_id=world.team_a, target=25))
    report = world.get("ann", "/api/v1/quotas/attainment", date="2024-05-15").json()
    assert report["date"] == "2024-05-15"
    assert datetime.fromisoformat(report["as_of"]) == local("2024-05-16T00:00")
    week, month = report["items"]
    assert week["quota_id"] == weekly
    assert (week["period_start"], week["period_end"]) == ("2024-05-13", "2024-05-19")
    assert (week["target"], week["actual"]) == (10, 3)
    assert week["elapsed_share"] == pytest.approx(3 / 7)
    assert week["attainment"] == pytest.approx(0.3)
    assert week["pace"] == pytest.approx(0.7)
    assert week["forecast"] == pytest.approx(7.0)
    assert week["members_target_sum"] is None
    assert (month["period_start"], month["period_end"], month["actual"]) == (
        "2024-05-01",
        "2024-05-31",
        4,
    )
    assert month["elapsed_share"] == pytest.approx(15 / 31)
    by_team = world.get("mia", "/api/v1/quotas/attainment", date="2024-05-15", team_id=world.team_a)
    (item,) = by_team.json()["items"]
    assert item["quota_id"] == team.json()["id"]
    assert (item["actual"], item["members_target_sum"], item["gap"]) == (4, 22, 3)
    assert item["attainment"] == pytest.approx(4 / 25)


def test_attainment_defaults_and_visibility(world: World) -> None:
    today = world.get("ann", "/api/v1/quotas/attainment")
    assert today.status_code == 200, today.text
    assert today.json()["date"] == datetime.now(BRUSSELS).date().isoformat()
    assert today.json()["items"] == []
    params = {"date": "2024-05-15", "user_id": world.ids["bob"]}
    assert world.get("ann", "/api/v1/quotas/attainment", **params).status_code == 404
    assert world.get("mia", "/api/v1/quotas/attainment", **params).status_code == 200
    bad = world.get("ann", "/api/v1/quotas/attainment", date="2024-13-01")
    assert bad.status_code == 422
    assert world.get("ann", "/api/v1/quotas/attainment", date="9999-12-31").status_code == 400
