"""Keyset pages of GET /activities, /contacts and /companies equal the straightforward query.

Random histories (ties at one instant, several users, teams, contacts and companies) are
written through app.activities.store, then every page is walked for each role and filter and
compared with one plain ordered query written the obvious way (the rule as it was before the
lists were made fast), on SQLite and PostgreSQL.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from app.activities import store
from app.activities.models import Activity
from app.contacts.models import ActivityContact, Company, Contact
from app.db import session_scope
from app.models import User
from tests.api import Org, make_org

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
TYPES = ("email_sent", "email_received", "call")
NAMES = ("Ana Abbot", "Bo Cabral", "Cy Abel", "Di_a Ol%", "ÉLODIE Cab", None)
WHO = ("admin", "mia", "ana")  # an admin, the manager of East (ana, bob), a rep


@dataclass
class History:
    org: Org
    users: dict[str, int]  # ana, bob, cleo (West), mia (manager of East)
    teams: dict[str, int]
    contacts: list[int]
    companies: list[int]

    def headers(self, who: str) -> dict[str, str]:
        return self.org.as_admin() if who == "admin" else self.org.as_user(f"{who}@acme.example")

    def walk(self, path: str, who: str, limit: int, **params: Any) -> list[int]:
        ids: list[int] = []
        cursor = None
        for _ in range(200):
            query = {**params, "limit": limit, **({"cursor": cursor} if cursor else {})}
            response = self.org.client.get(path, params=query, headers=self.headers(who))
            assert response.status_code == 200, response.text
            body = response.json()
            ids += [item["id"] for item in body["items"]]
            cursor = body["next_cursor"]
            if cursor is None:
                return ids
        raise AssertionError("the cursor never runs out")


Event = tuple[int, str, int, frozenset[int]]  # user index, type, minute, contact indexes
events = st.lists(
    st.tuples(
        st.integers(0, 3),
        st.sampled_from(TYPES),
        st.integers(0, 6),  # few instants: many ties
        st.frozensets(st.integers(0, len(NAMES) - 1), max_size=3),
    ),
    max_size=30,
)


def build(client: TestClient, history: list[Event], serial: itertools.count[int]) -> History:
    n = next(serial)
    org = make_org(client, name=f"Acme {n}")
    mia = org.user("mia@acme.example", role="manager")
    east, west = org.team("East", manager_id=mia["id"]), org.team("West")
    users = {"mia": mia["id"]}
    for name, team in (("ana", east), ("bob", east), ("cleo", west)):
        users[name] = org.user(f"{name}@acme.example", team_id=team["id"])["id"]
    order = ["ana", "bob", "cleo", "mia"]
    with session_scope() as session:
        companies = [
            Company(org_id=org.id, domain=f"c{i}.example", name=f"Cab {i}") for i in (0, 1)
        ]
        session.add_all(companies)
        session.flush()
        contacts = [
            Contact(
                org_id=org.id,
                email=f"p{i}@c{i % 2}.example" if i != 2 else "abel@gmail.com",
                name=name,
                company_id=companies[i % 2].id if i != 2 else None,
            )
            for i, name in enumerate(NAMES)
        ]
        session.add_all(contacts)
        session.flush()
        rows, links = [], {}
        for k, (who, kind, minute, linked) in enumerate(history):
            user_id = users[order[who]]
            row = {
                "user_id": user_id,
                "type": kind,
                "occurred_at": T0 + timedelta(minutes=minute),
                "source_key": f"k{k}",
                "subject": f"s{k}",
            }
            rows.append(row)
            links[(f"k{k}", user_id, kind)] = [contacts[c].id for c in linked]
        if rows:
            shared = {"provider": "imap", "connection_id": None}
            store.add(session, org.id, rows, links, shared=shared)
        return History(
            org,
            users,
            {"east": east["id"], "west": west["id"]},
            [c.id for c in contacts],
            [c.id for c in companies],
        )


def seen_users(session: Session, history: History, who: str) -> list[int]:
    if who == "admin":
        return list(session.scalars(select(User.id).where(User.org_id == history.org.id)))
    if who == "mia":
        return [history.users[n] for n in ("ana", "bob", "mia")]
    return [history.users[who]]


def plain_activities(session: Session, users: list[int], **where: Any) -> list[int]:
    query = select(Activity.id).where(Activity.user_id.in_(users))
    if "type" in where:
        query = query.where(Activity.type == where["type"])
    if "contact_id" in where:
        linked = select(ActivityContact.activity_id).where(
            ActivityContact.contact_id == where["contact_id"]
        )
        query = query.where(Activity.id.in_(linked))
    if "company_id" in where:
        linked = (
            select(ActivityContact.activity_id)
            .join(Contact, Contact.id == ActivityContact.contact_id)
            .where(Contact.company_id == where["company_id"])
        )
        query = query.where(Activity.id.in_(linked))
    if "start" in where:
        query = query.where(Activity.occurred_at >= where["start"])
    if "end" in where:
        query = query.where(Activity.occurred_at < where["end"])
    return list(session.scalars(query.order_by(Activity.occurred_at.desc(), Activity.id.desc())))


def _like(text: str) -> str:
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def plain_visible(session: Session, history: History, who: str) -> Select[int]:
    """The rule as it was: contacts reached through the activities of users one sees."""
    if who == "admin":
        return select(Contact.id).where(Contact.org_id == history.org.id)
    return (
        select(ActivityContact.contact_id)
        .join(Activity, Activity.id == ActivityContact.activity_id)
        .where(Activity.user_id.in_(seen_users(session, history, who)))
    )


def plain_contacts(session: Session, history: History, who: str, q: str) -> list[int]:
    query = select(Contact.id).where(Contact.id.in_(plain_visible(session, history, who)))
    if q:
        pattern = _like(q)
        query = query.where(
            or_(
                func.lower(Contact.name).like(pattern, escape="\\"),
                Contact.email.like(pattern, escape="\\"),
            )
        )
    return list(session.scalars(query.order_by(Contact.id)))


def plain_companies(session: Session, history: History, who: str, q: str) -> list[tuple[int, int]]:
    query = (
        select(Company.id, func.count(Contact.id))
        .join(Contact, Contact.company_id == Company.id)
        .where(
            Company.org_id == history.org.id, Contact.id.in_(plain_visible(session, history, who))
        )
        .group_by(Company.id)
    )
    if q:
        pattern = _like(q)
        query = query.where(
            or_(
                func.lower(Company.name).like(pattern, escape="\\"),
                Company.domain.like(pattern, escape="\\"),
            )
        )
    return [(i, n) for i, n in session.execute(query.order_by(Company.id))]


SETTINGS = settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@SETTINGS
@given(history=events, limit=st.integers(1, 4), minute=st.integers(0, 6))
def test_activity_pages_equal_the_plain_query(
    client: TestClient, history: list[Event], limit: int, minute: int
) -> None:
    world = build(client, history, SERIAL)
    moment = T0 + timedelta(minutes=minute)
    filters: list[dict[str, Any]] = [
        {},
        {"type": "email_received"},
        {"contact_id": world.contacts[0]},
        {"company_id": world.companies[1]},
        {"start": moment},
        {"end": moment, "type": "call"},
        {"company_id": world.companies[0], "contact_id": world.contacts[0]},
    ]
    with session_scope() as session:
        for who in WHO:
            for where in filters:
                params = {
                    k: v.isoformat() if isinstance(v, datetime) else v for k, v in where.items()
                }
                got = world.walk("/api/v1/activities", who, limit, **params)
                users = seen_users(session, world, who)
                assert got == plain_activities(session, users, **where), (who, where)
            for team in ("east", "west"):
                if who == "ana":
                    continue
                members = [
                    world.users[n] for n in (("ana", "bob") if team == "east" else ("cleo",))
                ]
                if who == "mia" and team == "west":
                    continue
                got = world.walk("/api/v1/activities", who, limit, team_id=world.teams[team])
                assert got == plain_activities(session, members), (who, team)


@SETTINGS
@given(
    history=events,
    limit=st.integers(1, 4),
    q=st.sampled_from(["", "a", "ab", "AB", "cab", "_", "%", "Ol%", "élodie", "c1.ex", "gmail"]),
)
def test_contact_and_company_pages_equal_the_plain_query(
    client: TestClient, history: list[Event], limit: int, q: str
) -> None:
    world = build(client, history, SERIAL)
    params = {"q": q} if q else {}
    with session_scope() as session:
        for who in WHO:
            got = world.walk("/api/v1/contacts", who, limit, **params)
            assert got == plain_contacts(session, world, who, q), (who, q)
            expected = plain_companies(session, world, who, q)
            assert world.walk("/api/v1/companies", who, limit, **params) == [i for i, _ in expected]
            response = world.org.client.get(
                "/api/v1/companies", params={**params, "limit": 1000}, headers=world.headers(who)
            )
            counts = [(c["id"], c["contact_count"]) for c in response.json()["items"]]
            assert counts == expected, (who, q)


SERIAL = itertools.count()


def test_a_cursor_holds_its_place_while_activities_arrive(client: TestClient) -> None:
    world = build(client, [(0, "call", m % 3, frozenset({0})) for m in range(7)], SERIAL)
    path, headers = "/api/v1/activities", world.headers("admin")
    first = client.get(path, params={"limit": 3}, headers=headers).json()
    with session_scope() as session:
        rows = [
            {"user_id": world.users["ana"], "type": "call", "occurred_at": when, "source_key": key}
            for key, when in (
                ("newest", T0 + timedelta(days=1)),
                ("oldest", T0 - timedelta(days=1)),
            )
        ]
        shared = {"provider": "imap", "connection_id": None, "subject": None}
        store.add(session, world.org.id, rows, {}, shared=shared)
    rest: list[int] = []
    cursor = first["next_cursor"]
    while cursor:
        body = client.get(path, params={"limit": 3, "cursor": cursor}, headers=headers).json()
        rest += [item["id"] for item in body["items"]]
        cursor = body["next_cursor"]
    with session_scope() as session:
        everything = plain_activities(session, seen_users(session, world, "admin"))
        newest = session.scalar(select(Activity.id).where(Activity.source_key == "newest"))
    shown = [item["id"] for item in first["items"]]
    assert everything == [newest, *shown, *rest]  # the newer one is not slipped into page 2


def test_bad_contact_and_company_cursors_are_a_400(client: TestClient) -> None:
    world = build(client, [], SERIAL)
    for path in ("/api/v1/contacts", "/api/v1/companies"):
        for bad in ("garbage!!", "W10", "WyJ4Il0", "e30"):  # [], ["x"], {}
            response = client.get(path, params={"cursor": bad}, headers=world.headers("admin"))
            assert response.status_code == 400, (path, bad, response.text)
            assert set(response.json()["error"]) == {"code", "message"}


def test_statistics_are_refreshed_once_tables_change(client: TestClient) -> None:
    from sqlalchemy import text

    from app import statistics

    with session_scope() as session:
        statistics.refresh(session)  # whatever earlier tests left behind
    world = build(client, [], SERIAL)
    with session_scope() as session:
        rows = [
            {"user_id": world.users["ana"], "type": "call", "occurred_at": T0 + timedelta(days=k)}
            | {"source_key": f"s{k}", "subject": None}
            for k in range(80)
        ]
        links = {(f"s{k}", world.users["ana"], "call"): [world.contacts[k % 6]] for k in range(80)}
        store.add(session, world.org.id, rows, links, shared={"provider": "imap"})
        if session.get_bind().dialect.name == "postgresql":
            # this backend's counters reach pg_stat_user_tables when it commits, not later;
            # 80 days x 1 contact: 80 new contact_days rows, past the 10 % + 50 rule
            session.execute(text("SELECT pg_stat_force_next_flush()"))
    with session_scope() as session:
        analyzed = statistics.refresh(session)
    assert {"activities", "activity_contacts", "contact_days"} <= set(analyzed)
    with session_scope() as session:
        assert "activities" not in statistics.refresh(session)  # nothing changed since
        if session.get_bind().dialect.name == "sqlite":
            stat = "SELECT count(*) FROM sqlite_stat1 WHERE tbl = 'activities'"
        else:
            stat = "SELECT count(*) FROM pg_stats WHERE tablename = 'activities'"
        assert session.scalar(text(stat))
