"""GET /activities: filters, time bounds in the org's zone, newest first, cursor pagination."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.contacts.models import Company, Contact
from app.db import Database, session_scope
from app.models import Connection
from tests.api import Org, make_org
from tests.factories import message
from tests.world import World

ACTIVITIES = "/api/v1/activities"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def error_body(response: Any, status: int) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    assert isinstance(body["error"]["code"], str) and isinstance(body["error"]["message"], str)


def cursor(values: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


@dataclass
class Sales:
    org: Org
    world: World
    ids: dict[str, int]  # users, teams, contacts and companies by short name
    connections: dict[str, int]

    def get(self, who: str = "admin", **params: Any) -> Any:
        headers = self.org.as_admin() if who == "admin" else self.org.as_user(f"{who}@acme.example")
        return self.org.client.get(ACTIVITIES, params=params, headers=headers)

    def items(self, who: str = "admin", **params: Any) -> list[dict[str, Any]]:
        response = self.get(who, **params)
        assert response.status_code == 200, response.text
        assert response.json()["next_cursor"] is None
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    def subjects(self, who: str = "admin", **params: Any) -> list[str]:
        return [i["subject"] for i in self.items(who, **params)]


def with_connections(org: Org, *names: str) -> tuple[World, dict[str, int]]:
    """An IMAP connection row for each named user, and a World that ingests into them."""
    users = {n: org.users[f"{n}@acme.example"]["id"] for n in names}
    connections = {}
    with session_scope() as session:
        for name, user_id in users.items():
            row = Connection(org_id=org.id, user_id=user_id, provider="imap", config={}, cursors={})
            session.add(row)
            session.flush()
            connections[name] = row.id
    return World(org.id, users, connections), connections


@pytest.fixture
def sales(client: TestClient) -> Sales:
    org = make_org(client)
    mia = org.user("mia@acme.example", role="manager")
    east = org.team("East", manager_id=mia["id"])
    west = org.team("West")
    org.user("ana@acme.example", team_id=east["id"])
    org.user("bob@acme.example", team_id=west["id"])
    world, connections = with_connections(org, "ana", "bob")
    world.ingest(
        "ana",
        message(
            "ana@acme.example",
            ("Joe <joe@northwind.example>", "kim@globex.example"),
            folder_role="sent",
            subject="a1 proposal",
            date=at("2026-03-02T09:30"),
        ),
        message(
            "Kim <kim@globex.example>",
            ("ana@acme.example",),
            subject="a2 question",
            date=at("2026-03-03T08:00"),
        ),
        message(
            "ana@acme.example",
            ("pat@gmail.com",),
            folder_role="sent",
            subject="a3 personal address",
            date=at("2026-03-05T12:00"),
        ),
        # 00:30 on Monday 2 March in Brussels, still Sunday 1 March in UTC
        message(
            "ana@acme.example",
            ("joe@northwind.example",),
            folder_role="sent",
            subject="a0 early monday",
            date=at("2026-03-01T23:30"),
        ),
    )
    world.ingest(
        "bob",
        message(
            "bob@acme.example",
            ("joe@northwind.example",),
            folder_role="sent",
            subject="b1 follow-up",
            date=at("2026-03-04T10:00"),
        ),
    )
    ids = {
        "mia": mia["id"],
        "ana": org.users["ana@acme.example"]["id"],
        "bob": org.users["bob@acme.example"]["id"],
        "east": east["id"],
        "west": west["id"],
    }
    with session_scope() as session:
        for contact in session.scalars(select(Contact)):
            ids[contact.email.split("@")[0]] = contact.id
        for company in session.scalars(select(Company)):
            ids[company.domain] = company.id
    return Sales(org, world, ids, connections)


def test_items_carry_the_documented_fields_newest_first(sales: Sales) -> None:
    response = sales.get()
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"items", "next_cursor"} and body["next_cursor"] is None
    items = body["items"]
    assert [i["subject"] for i in items] == [
        "a3 personal address",
        "b1 follow-up",
        "a2 question",
        "a1 proposal",
        "a0 early monday",
    ]
    for item in items:
        assert {
            "id",
            "type",
            "occurred_at",
            "user_id",
            "contact_ids",
            "company_ids",
            "source",
        } <= set(item)
        assert datetime.fromisoformat(item["occurred_at"]).utcoffset() is not None
    first = next(i for i in items if i["subject"] == "a1 proposal")
    assert first["type"] == "email_sent" and first["user_id"] == sales.ids["ana"]
    assert datetime.fromisoformat(first["occurred_at"]) == at("2026-03-02T09:30")
    assert sorted(first["contact_ids"]) == sorted([sales.ids["joe"], sales.ids["kim"]])
    assert sorted(first["company_ids"]) == sorted(
        [sales.ids["northwind.example"], sales.ids["globex.example"]]
    )
    assert first["source"] == {"provider": "imap", "connection_id": sales.connections["ana"]}
    received = next(i for i in items if i["subject"] == "a2 question")
    assert received["type"] == "email_received" and received["contact_ids"] == [sales.ids["kim"]]
    personal = next(i for i in items if i["subject"] == "a3 personal address")
    assert personal["contact_ids"] == [sales.ids["pat"]] and personal["company_ids"] == []
    bobs = next(i for i in items if i["subject"] == "b1 follow-up")
    assert bobs["source"] == {"provider": "imap", "connection_id": sales.connections["bob"]}


def test_filters(sales: Sales) -> None:
    ids = sales.ids
    assert sales.subjects(user_id=ids["bob"]) == ["b1 follow-up"]
    assert sales.subjects(user_id=ids["ana"]) == [
        "a3 personal address",
        "a2 question",
        "a1 proposal",
        "a0 early monday",
    ]
    assert sales.subjects(team_id=ids["west"]) == ["b1 follow-up"]
    assert sales.subjects(team_id=ids["east"]) == sales.subjects(user_id=ids["ana"])
    assert sales.subjects(type="email_received") == ["a2 question"]
    assert sales.subjects(type="meeting_held") == []
    assert sales.subjects(contact_id=ids["joe"]) == [
        "b1 follow-up",
        "a1 proposal",
        "a0 early monday",
    ]
    assert sales.subjects(contact_id=ids["kim"]) == ["a2 question", "a1 proposal"]
    assert sales.subjects(company_id=ids["globex.example"]) == ["a2 question", "a1 proposal"]
    assert sales.subjects(company_id=ids["northwind.example"]) == sales.subjects(
        contact_id=ids["joe"]
    )
    # filters combine
    assert sales.subjects(user_id=ids["ana"], contact_id=ids["joe"], type="email_sent") == [
        "a1 proposal",
        "a0 early monday",
    ]
    assert sales.subjects(user_id=ids["bob"], company_id=ids["globex.example"]) == []


def test_a_manager_filters_by_their_team(sales: Sales) -> None:
    assert sales.subjects("mia", team_id=sales.ids["east"])[-1] == "a0 early monday"
    assert "b1 follow-up" not in sales.subjects("mia")


def test_unknown_filter_values(sales: Sales) -> None:
    error_body(sales.get(type="email"), 422)
    error_body(sales.get(user_id="ana"), 422)
    error_body(sales.get(user_id=999999), 404)
    error_body(sales.get(team_id=999999), 404)
    assert sales.subjects(contact_id=999999) == []
    assert sales.subjects(company_id=999999) == []


def test_an_id_beyond_any_integer_column_is_not_a_server_error(
    lenient: TestClient, sales: Sales
) -> None:
    wrong = []
    for name in ("user_id", "team_id", "contact_id", "company_id"):
        response = lenient.get(ACTIVITIES, params={name: 10**20}, headers=sales.org.as_admin())
        if response.status_code not in (200, 400, 404, 422):
            wrong.append((name, response.status_code, response.text))
        elif response.status_code == 200:
            assert response.json()["items"] == []
        else:
            error_body(response, response.status_code)
    assert not wrong, "\n".join(map(repr, wrong))


def test_dates_are_whole_days_in_the_orgs_zone(sales: Sales) -> None:
    # 2 March in Brussels runs from 1 March 23:00 UTC to 2 March 23:00 UTC
    assert sales.subjects(start="2026-03-02", end="2026-03-02") == [
        "a1 proposal",
        "a0 early monday",
    ]
    assert sales.subjects(end="2026-03-01") == []
    assert sales.subjects(start="2026-03-03") == [
        "a3 personal address",
        "b1 follow-up",
        "a2 question",
    ]
    assert sales.subjects(start="2026-03-03", end="2026-03-04") == ["b1 follow-up", "a2 question"]


def test_the_same_dates_in_another_zone_cut_elsewhere(client: TestClient) -> None:
    org = make_org(client, timezone="America/New_York")
    org.user("ana@acme.example")
    world, _ = with_connections(org, "ana")
    # 02:00 UTC on 3 March is still 2 March in New York
    world.ingest(
        "ana", message("ana@acme.example", folder_role="sent", date=at("2026-03-03T02:00"))
    )
    headers = org.as_admin()
    day = client.get(
        ACTIVITIES, params={"start": "2026-03-02", "end": "2026-03-02"}, headers=headers
    )
    assert len(day.json()["items"]) == 1
    after = client.get(ACTIVITIES, params={"start": "2026-03-03"}, headers=headers)
    assert after.json()["items"] == []


def test_iso_datetimes_with_an_offset(sales: Sales) -> None:
    # a1 happened at 09:30 UTC = 10:30 in Brussels; the start is inclusive
    assert sales.subjects(start="2026-03-02T10:30:00+01:00", end="2026-03-03T00:00:00+00:00") == [
        "a1 proposal"
    ]
    assert sales.subjects(start="2026-03-02T09:30:01Z", end="2026-03-03T09:00:01+01:00") == [
        "a2 question"
    ]
    assert sales.subjects(start="2026-03-04T05:00:00-05:00", end="2026-03-04T10:00:01+00:00") == [
        "b1 follow-up"
    ]
    # mixing a date and a datetime
    assert sales.subjects(start="2026-03-05", end="2026-03-05T12:00:00.001+00:00") == [
        "a3 personal address"
    ]


BAD_BOUNDS = [
    {"start": "2026-03-02T10:30:00"},  # naive: in which zone?
    {"end": "2026-03-02 10:30"},
    {"start": "yesterday"},
    {"start": "2026-02-30"},
    {"end": "2026-13-01"},
    {"start": "02/03/2026"},
    {"start": ""},
]


def test_bad_time_bounds_are_a_400(sales: Sales) -> None:
    wrong = []
    for params in BAD_BOUNDS:
        response = sales.get(**params)
        if response.status_code != 400 or set(response.json()) != {"error"}:
            wrong.append((params, response.status_code, response.text))
    assert not wrong, "\n".join(map(repr, wrong))


EXTREME_BOUNDS = [
    {"end": "9999-12-31"},
    {"start": "0001-01-01"},
    {"start": "0001-01-01T00:00:00+01:00"},
    {"end": "9999-12-31T23:59:59-01:00"},
]


def test_extreme_but_valid_bounds_are_not_a_server_error(lenient: TestClient, sales: Sales) -> None:
    wrong = []
    for params in EXTREME_BOUNDS:
        response = lenient.get(ACTIVITIES, params=params, headers=sales.org.as_admin())
        if response.status_code not in (200, 400):
            wrong.append((params, response.status_code, response.text))
        elif response.status_code == 400:
            error_body(response, 400)
    assert not wrong, "\n".join(map(repr, wrong))


@pytest.fixture
def lenient(database: Database) -> Iterator[TestClient]:
    from app.main import create_app

    with TestClient(create_app(), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def busy(client: TestClient) -> Sales:
    """37 activities, several sharing one instant, for paging."""
    org = make_org(client)
    org.user("ana@acme.example")
    world, connections = with_connections(org, "ana")
    start = at("2026-01-05T08:00")
    messages = []
    for n in range(37):
        when = start + timedelta(hours=n // 4)  # four at each instant
        messages.append(
            message("ana@acme.example", folder_role="sent", subject=f"m{n:02d}", date=when)
        )
    world.ingest("ana", *messages)
    return Sales(org, world, {}, connections)


def walk(sales: Sales, **params: Any) -> tuple[list[dict[str, Any]], int]:
    """Every page from the first; the items in order and the number of pages."""
    items: list[dict[str, Any]] = []
    pages, next_cursor = 0, None
    while True:
        query = {**params, **({"cursor": next_cursor} if next_cursor else {})}
        response = sales.get(**query)
        assert response.status_code == 200, response.text
        body = response.json()
        items.extend(body["items"])
        pages += 1
        next_cursor = body["next_cursor"]
        if next_cursor is None:
            return items, pages
        assert pages < 100, "the cursor never runs out"


def test_pages_cover_everything_once_newest_first(busy: Sales) -> None:
    everything = busy.get(limit=1000).json()["items"]
    assert len(everything) == 37
    keys = [(datetime.fromisoformat(i["occurred_at"]), i["id"]) for i in everything]
    assert keys == sorted(keys, reverse=True)
    assert {i["subject"] for i in everything} == {f"m{n:02d}" for n in range(37)}
    for limit in (1, 3, 4, 36, 37):
        items, pages = walk(busy, limit=limit)
        assert [i["id"] for i in items] == [i["id"] for i in everything], limit
        assert pages == -(-37 // limit), limit


def test_pages_with_a_filter_and_a_default_limit(busy: Sales) -> None:
    items, pages = walk(busy, limit=3, start="2026-01-05T10:00:00+00:00")
    # instants 10:00 .. 17:00 UTC hold messages 8..36
    assert pages == 10 and len(items) == 29
    assert {i["subject"] for i in items} == {f"m{n:02d}" for n in range(8, 37)}
    assert len(busy.get().json()["items"]) == 37  # default limit 100


def test_an_exactly_full_last_page_gives_no_cursor(busy: Sales) -> None:
    body = busy.get(limit=37).json()
    assert len(body["items"]) == 37 and body["next_cursor"] is None


def test_a_limit_out_of_range_is_a_422(busy: Sales) -> None:
    for limit in (0, -1, 1001, 10**12, "ten", ""):
        error_body(busy.get(limit=limit), 422)
    assert len(busy.get(limit=1000).json()["items"]) == 37


GARBAGE_CURSORS = [
    "garbage!!",
    "not-base64-at-all",
    cursor({"a": 1}),
    cursor([]),
    cursor(["yesterday", 1]),
    cursor(["2026-01-05T08:00:00", 1]),  # naive
    cursor(["2026-01-05T08:00:00+00:00", "x"]),
    cursor(["2026-01-05T08:00:00+00:00", None]),
    cursor([None, None]),
    base64.urlsafe_b64encode(b"\xff\xfe\x00").decode(),
]


def test_a_garbage_cursor_is_a_400(busy: Sales) -> None:
    for bad in GARBAGE_CURSORS:
        error_body(busy.get(cursor=bad), 400)


FORGED_CURSORS = {
    "infinity": base64.urlsafe_b64encode(b'["2026-01-05T08:00:00+00:00", Infinity]').decode(),
    "float-overflow": base64.urlsafe_b64encode(b'["2026-01-05T08:00:00+00:00", 1e400]').decode(),
    "huge-id": cursor(["2026-01-05T08:00:00+00:00", 10**30]),
    "year-one": cursor(["0001-01-01T00:00:00+01:00", 1]),
}


def test_a_forged_cursor_is_not_a_server_error(lenient: TestClient, busy: Sales) -> None:
    wrong = []
    for name, odd in FORGED_CURSORS.items():
        response = lenient.get(ACTIVITIES, params={"cursor": odd}, headers=busy.org.as_admin())
        if response.status_code not in (200, 400):
            wrong.append((name, response.status_code, response.text))
        elif response.status_code == 400:
            error_body(response, 400)
    assert not wrong, "\n".join(map(repr, wrong))
