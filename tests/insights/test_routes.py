"""GET /insights/performers against a small org with known deals and activities, both databases.

Team East (manager Mia): reps Ann, Bob, Cid, Dan and Eve, created in that order (ids ascending).
Team West (manager Max): rep Wes. Q1 2024 (Europe/Brussels), date 2024-02-15:

| rep | won: value, created -> closed (cycle days) | lost | open | sent | held | calls | contacts |
| Ann | 3000 Jan 5 -> Jan 15 (10); 1000 Feb 1 -> Feb 21 (20) | - | 1 | 6 | 3 | 3 | x, y |
| Bob | 1500 Jan 10 -> Mar 10 (60) | 1 | - | 4 | 0 | 2 | x |
| Cid | 1500 Feb 1 -> Feb 11 (10) | - | - | 2 | 0 | 0 | - |
| Dan | - | 1 | - | 2 | 2 | 0 | - |
| Eve | - | - | - | 0 | 0 | 0 | - |

plus, outside the quarter, a deal Ann won in April and an email she sent then.

Revenue: Ann 4000, Bob 1500, Cid 1500 (tied: Bob's lower id first), Dan 0, Eve 0 (Dan first).
5 members: the top quarter is max(1, 5 // 4) = 1: Ann. Others: Bob, Cid, Dan, Eve.

| driver | Ann | others (Bob, Cid, Dan, Eve) | others' mean | ratio |
| contacts_engaged | 2 | 1, 0, 0, 0 | 0.25 | 8 |
| calls | 3 | 2, 0, 0, 0 | 0.5 | 6 |
| meetings_held | 3 | 0, 0, 2, 0 | 0.5 | 6 |
| emails_sent | 6 | 4, 2, 2, 0 | 2 | 3 |
| opportunities_created | 3 | 2, 1, 1, 0 | 1 | 3 |
| win_rate | 1 | 0.5, 1, 0, none | 0.5 | 2 |
| sales_cycle_days | 15 | 60, 10, none, none | 35 | 3/7 |
| activities_per_deal_won | 12/2 = 6 | 6/1, 2/1, none, none | 4 | 1.5 |
| activities_per_opportunity | 12/3 = 4 | 6/2, 2/1, 4/1, none | 3 | 4/3 |
| avg_deal_value | 2000 | 1500, 1500, none, none | 1500 | 4/3 |
| emails_received, meetings_scheduled | 0 | 0 | 0 | null |
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.db import session_scope
from tests.api import Org, make_org
from tests.metrics import facts

Q1 = {"period": "quarter", "date": "2024-02-15"}


@dataclass
class East:
    org: Org
    ids: dict[str, int]

    def get(self, who: str = "mia", **params: Any) -> Any:
        headers = self.org.as_admin() if who == "admin" else self.org.as_user(f"{who}@acme.example")
        return self.org.client.get("/api/v1/insights/performers", params=params, headers=headers)

    def ok(self, who: str = "mia", **params: Any) -> dict[str, Any]:
        response = self.get(who, **params)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def deal(self, owner: str, status: str, value: int, created: str, closed: str = "") -> None:
        body: dict[str, Any] = {
            "name": "Deal",
            "owner_id": self.ids[owner],
            "value": value,
            "status": status,
            "created_at": f"{created}T10:00:00+00:00",
        }
        if status == "open":
            body["stage"] = "Proposal"
        else:
            body["closed_at"] = f"{closed}T10:00:00+00:00"
        response = self.org.client.post("/api/v1/deals", json=body, headers=self.org.as_admin())
        assert response.status_code == 201, response.text

    def activities(self, owner: str, kind: str, n: int, *contacts: str, day: str = "") -> None:
        with session_scope() as session:
            for i in range(n):
                when = facts.utc(f"{day or '2024-02-05'}T09:{i:02d}")
                facts.activity(session, self.org.id, self.ids[owner], kind, when, contacts)


@pytest.fixture
def east(client: TestClient) -> East:
    org = make_org(client)
    mia = org.user("mia@acme.example", role="manager")["id"]
    max_ = org.user("max@acme.example", role="manager")["id"]
    ids = {"mia": mia, "max": max_}
    ids["east"] = org.team("East", manager_id=mia)["id"]
    ids["west"] = org.team("West", manager_id=max_)["id"]
    for name in ("ann", "bob", "cid", "dan", "eve"):
        ids[name] = org.user(f"{name}@acme.example", team_id=ids["east"])["id"]
    ids["wes"] = org.user("wes@acme.example", team_id=ids["west"])["id"]
    east = East(org, ids)
    east.deal("ann", "won", 3000, "2024-01-05", "2024-01-15")
    east.deal("ann", "won", 1000, "2024-02-01", "2024-02-21")
    east.deal("ann", "open", 5000, "2024-03-01")
    east.deal("ann", "won", 9000, "2024-04-01", "2024-04-05")  # Q2
    east.deal("bob", "won", 1500, "2024-01-10", "2024-03-10")
    east.deal("bob", "lost", 700, "2024-01-20", "2024-02-20")
    east.deal("cid", "won", 1500, "2024-02-01", "2024-02-11")
    east.deal("dan", "lost", 800, "2024-02-02", "2024-03-02")
    east.deal("wes", "won", 99000, "2024-02-01", "2024-02-11")  # another team
    east.activities("ann", "email_sent", 6, "x@n.example", "y@n.example")
    east.activities("ann", "meeting_held", 3)
    east.activities("ann", "call", 3)
    east.activities("ann", "email_sent", 1, day="2024-04-02")  # Q2
    east.activities("bob", "email_sent", 4, "x@n.example")
    east.activities("bob", "call", 2)
    east.activities("cid", "email_sent", 2)
    east.activities("dan", "email_sent", 2)
    east.activities("dan", "meeting_held", 2)
    east.activities("wes", "call", 50)
    return east


def test_the_top_quarter_and_what_sets_it_apart(east: East) -> None:
    ids = east.ids
    body = east.ok(team_id=ids["east"], **Q1)
    assert (body["team_id"], body["outcome"], body["period"]) == (ids["east"], "revenue", "quarter")
    assert (body["period_start"], body["period_end"]) == ("2024-01-01", "2024-03-31")
    assert body["as_of"] == "2024-03-31T22:00:00Z"  # the quarter's end in Brussels (CEST)
    ranked = [(m["user_id"], m["outcome"]) for m in body["members"]]
    assert ranked == [
        (ids["ann"], 4000),
        (ids["bob"], 1500),
        (ids["cid"], 1500),
        (ids["dan"], 0),
        (ids["eve"], 0),
    ]
    assert body["top_user_ids"] == [ids["ann"]]
    ann = body["members"][0]["values"]
    assert ann == {
        "emails_sent": 6,
        "emails_received": 0,
        "meetings_scheduled": 0,
        "meetings_held": 3,
        "calls": 3,
        "chat_conversations": 0,
        "contacts_engaged": 2,
        "opportunities_created": 3,
        "win_rate": 1,
        "avg_deal_value": 2000,
        "sales_cycle_days": 15,
        "activities_per_opportunity": 4,
        "activities_per_deal_won": 6,
    }
    eve = body["members"][4]["values"]
    assert eve["win_rate"] is None and eve["activities_per_opportunity"] is None
    rows = [(d["metric"], d["top_mean"], d["others_mean"], d["ratio"]) for d in body["drivers"]]
    assert rows == [
        ("contacts_engaged", 2, 0.25, 8),
        ("calls", 3, 0.5, 6),
        ("meetings_held", 3, 0.5, 6),
        ("emails_sent", 6, 2, 3),
        ("opportunities_created", 3, 1, 3),
        ("win_rate", 1, 0.5, 2),
        ("sales_cycle_days", 15, 35, pytest.approx(3 / 7)),
        ("activities_per_deal_won", 6, 4, 1.5),
        ("activities_per_opportunity", 4, 3, pytest.approx(4 / 3)),
        ("avg_deal_value", 2000, 1500, pytest.approx(4 / 3)),
        ("chat_conversations", 0, 0, None),
        ("emails_received", 0, 0, None),
        ("meetings_scheduled", 0, 0, None),
    ]
    # the admin reads the same; the date may be any day of the quarter
    assert east.ok("admin", team_id=ids["east"], period="quarter", date="2024-03-31") == body


def test_a_lower_is_better_outcome_ranks_ascending(east: East) -> None:
    body = east.ok(team_id=east.ids["east"], outcome="sales_cycle_days", **Q1)
    ids = east.ids
    # Cid 10 days, Ann 15, Bob 60; Dan and Eve won nothing: no cycle, last, by id
    assert [(m["user_id"], m["outcome"]) for m in body["members"]] == [
        (ids["cid"], 10),
        (ids["ann"], 15),
        (ids["bob"], 60),
        (ids["dan"], None),
        (ids["eve"], None),
    ]
    assert body["top_user_ids"] == [ids["cid"]]
    drivers = {d["metric"]: d for d in body["drivers"]}
    assert "sales_cycle_days" not in drivers  # the outcome sets the top apart by definition
    assert "revenue" not in drivers and "deals_won" not in drivers  # outputs are no drivers
    # Cid sent 2 e-mails; the others 6, 4, 2, 0: mean 3
    assert (drivers["emails_sent"]["top_mean"], drivers["emails_sent"]["others_mean"]) == (2, 3)


def test_other_periods_and_outcomes(east: East) -> None:
    ids = east.ids
    april = east.ok(team_id=ids["east"], period="month", date="2024-04-10")
    assert (april["period_start"], april["period_end"]) == ("2024-04-01", "2024-04-30")
    assert april["members"][0] == {
        "user_id": ids["ann"],
        "outcome": 9000,
        "values": april["members"][0]["values"],
    }
    assert april["members"][0]["values"]["emails_sent"] == 1
    deals = east.ok(team_id=ids["east"], outcome="deals_won", **Q1)
    assert [m["outcome"] for m in deals["members"]] == [2, 1, 1, 0, 0]


def test_the_current_period_counts_to_now(east: East) -> None:
    body = east.ok(team_id=east.ids["east"], period="year")
    today = datetime.now(UTC)
    assert body["period_start"] == f"{today.year}-01-01" or today.month == 12  # zone edge
    as_of = datetime.fromisoformat(body["as_of"])
    assert abs((as_of - today).total_seconds()) < 60  # to date, not the year's end


def test_a_team_of_one_and_an_empty_team(east: East) -> None:
    west = east.ok("max", team_id=east.ids["west"], **Q1)
    assert west["top_user_ids"] == [east.ids["wes"]]
    assert {d["ratio"] for d in west["drivers"]} == {None}
    assert {d["others_mean"] for d in west["drivers"]} == {None}
    calls = {d["metric"]: d for d in west["drivers"]}["calls"]
    assert calls["top_mean"] == 50
    empty = east.org.team("Empty")["id"]
    body = east.ok("admin", team_id=empty, **Q1)
    assert (body["members"], body["top_user_ids"]) == ([], [])


def test_who_may_ask(east: East, client: TestClient) -> None:
    ids = east.ids
    assert east.get("mia", team_id=ids["east"], **Q1).status_code == 200
    assert east.get("max", team_id=ids["west"], **Q1).status_code == 200
    assert east.get("admin", team_id=ids["west"], **Q1).status_code == 200
    hidden = east.get("mia", team_id=ids["west"], **Q1)  # not her team
    assert (hidden.status_code, hidden.json()["error"]["code"]) == (404, "not_found")
    mine = east.get("ann", team_id=ids["east"], **Q1)  # a rep: colleagues' figures
    assert (mine.status_code, mine.json()["error"]["code"]) == (403, "forbidden")
    assert east.get("ann", team_id=ids["west"], **Q1).status_code == 404
    other = make_org(client, name="Umbrella", domains=("umbrella.example",))
    lab = other.team("Lab")["id"]
    assert east.get("admin", team_id=lab, **Q1).status_code == 404
    assert east.get("mia", team_id=lab, **Q1).status_code == 404
    assert east.get("ann", team_id=lab, **Q1).status_code == 404
    assert east.get("admin", team_id=2**31 - 1, **Q1).status_code == 404
    unauthenticated = east.org.client.get(
        "/api/v1/insights/performers", params={"team_id": ids["east"], **Q1}
    )
    assert unauthenticated.status_code == 401


BAD_INPUT: list[tuple[dict[str, Any], int]] = [
    ({"period": "quarter"}, 422),  # no team
    ({"team_id": "TEAM", "period": "quarter"}, 422),
    ({"team_id": 0, "period": "quarter"}, 422),
    ({"team_id": 2**31, "period": "quarter"}, 422),
    ({"team_id": "{east}"}, 422),  # no period
    ({"team_id": "{east}", "period": "fortnight"}, 422),
    ({"team_id": "{east}", "period": "quarter", "outcome": "happiness"}, 422),
    ({"team_id": "{east}", "period": "quarter", "date": "2024-02-30"}, 422),
    ({"team_id": "{east}", "period": "quarter", "date": "15/02/2024"}, 422),
    ({"team_id": "{east}", "period": "quarter", "date": "0001-01-01"}, 400),
    ({"team_id": "{east}", "period": "year", "date": "2999-12-31"}, 200),
    ({"team_id": "{east}", "period": "day", "date": "1900-01-01"}, 200),
]


def test_bad_input(east: East) -> None:
    for params, status in BAD_INPUT:
        given = {k: (east.ids["east"] if v == "{east}" else v) for k, v in params.items()}
        response = east.get("admin", **given)
        assert response.status_code == status, (params, response.text)
        if status != 200:
            assert set(response.json()["error"]) == {"code", "message"}
