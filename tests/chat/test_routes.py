"""POST /activities/ingest/chat end to end on both databases: signatures and replays, an
admin key, roles, bad payloads (4xx, nothing stored), idempotency, a late message, and the
chat_conversations metric, quota and timeline it feeds; the chat settings."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app.activities.models import Activity
from app.chat.models import ChatChannel, ChatMessageRow
from app.db import session_scope
from tests.api import Org, make_org

INGEST = "/api/v1/activities/ingest/chat"
JOE = "joe@northwind.example"


@dataclass
class Setup:
    client: TestClient
    org: Org
    secret: str
    ana: int


@pytest.fixture
def setup(client: TestClient) -> Setup:
    org = make_org(client)
    ana = org.user("ana@acme.example", aliases=["a.silva@acme.example"])["id"]
    org.user("mia@acme.example", role="manager")
    response = client.post("/api/v1/org/telephony/webhook-secret", headers=org.as_admin())
    assert response.status_code == 201, response.text
    return Setup(client, org, response.json()["webhook_secret"], ana)


def signed(secret: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """The documented scheme, written out independently of the app."""
    ts = str(int(time.time()) if timestamp is None else timestamp)
    mac = hmac.new(secret.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {
        "X-Tally-Timestamp": ts,
        "X-Tally-Signature": f"sha256={mac}",
        "Content-Type": "application/json",
    }


def payload(*messages: tuple[str, str | None, str], **fields: Any) -> dict[str, Any]:
    return {
        "source": "whatsapp",
        "channel_id": "+32470000001",
        "messages": [
            {"id": i, "sender": s, "sent_at": t, "text_length": 40} for i, s, t in messages
        ],
        "participants": ["ana@acme.example"],
        **fields,
    }


CONVERSATION = payload(
    ("wamid.1", JOE, "2024-05-14T09:00:00+02:00"),
    ("wamid.2", "A.Silva@acme.example", "2024-05-14T09:05:00+02:00"),
)


def post(s: Setup, body: Any, headers: dict[str, str] | None = None, **kw: Any) -> Any:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return s.client.post(
        INGEST,
        params={"org": s.org.id},
        content=raw,
        headers=headers if headers is not None else signed(s.secret, raw, **kw),
    )


def is_error(response: Any, status: int) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body


def stored(org_id: int) -> tuple[int, int]:
    """(messages, activities) of the organization."""
    with session_scope() as session:
        messages = session.scalar(
            select(func.count())
            .select_from(ChatMessageRow)
            .join(ChatChannel, ChatChannel.id == ChatMessageRow.channel_pk)
            .where(ChatChannel.org_id == org_id)
        )
        activities = session.scalar(
            select(func.count()).select_from(Activity).where(Activity.org_id == org_id)
        )
        return int(messages or 0), int(activities or 0)


def test_a_signed_conversation_is_counted_everywhere(setup: Setup) -> None:
    response = post(setup, CONVERSATION)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "stored": 2,
        "duplicates": 0,
        "activities_added": 1,
        "activities_removed": 0,
        "activities_changed": 0,
    }
    admin = setup.org.as_admin()
    timeline = setup.client.get(
        "/api/v1/activities", params={"type": "chat_conversation"}, headers=admin
    )
    assert timeline.status_code == 200, timeline.text
    [item] = timeline.json()["items"]
    assert item["user_id"] == setup.ana
    assert item["occurred_at"].startswith("2024-05-14T07:00:00")
    assert item["source"] == {"provider": "whatsapp", "connection_id": None}
    [contact] = setup.client.get("/api/v1/contacts", headers=admin).json()["items"]
    assert contact["emails"] == [JOE] and item["contact_ids"] == [contact["id"]]
    assert contact["first_seen_at"].startswith("2024-05-14T07:00:00")
    params: dict[str, str | int] = {
        "metric": "chat_conversations",
        "period": "day",
        "start": "2024-05-13",
        "end": "2024-05-15",
        "user_id": setup.ana,
    }
    metrics = setup.client.get("/api/v1/metrics", params=params, headers=admin)
    assert metrics.status_code == 200, metrics.text
    assert [p["value"] for p in metrics.json()["series"]] == [0, 1, 0]
    engaged = setup.client.get(
        "/api/v1/metrics", params={**params, "metric": "contacts_engaged"}, headers=admin
    )
    assert [p["value"] for p in engaged.json()["series"]] == [0, 1, 0]
    quota = {
        "metric": "chat_conversations",
        "period": "week",
        "target": 4,
        "user_id": setup.ana,
        "effective_from": "2024-05-01",
    }
    created = setup.client.post("/api/v1/quotas", json=quota, headers=admin)
    assert created.status_code == 201, created.text
    report = setup.client.get(
        "/api/v1/quotas/attainment",
        params={"date": "2024-05-15", "user_id": setup.ana},
        headers=admin,
    ).json()
    [week] = report["items"]
    assert (week["actual"], week["attainment"]) == (1, 0.25)


def test_delivering_again_changes_nothing(setup: Setup) -> None:
    assert post(setup, CONVERSATION).status_code == 200
    again = post(setup, CONVERSATION)
    assert again.status_code == 200, again.text
    assert again.json()["stored"] == 0 and again.json()["duplicates"] == 2
    assert again.json()["activities_added"] == 0
    assert stored(setup.org.id) == (2, 1)


def test_a_late_message_joins_two_conversations(setup: Setup) -> None:
    mia = setup.org.users["mia@acme.example"]["id"]
    first = payload(
        ("m1", "ana@acme.example", "2024-05-14T09:00:00Z"),
        ("m2", JOE, "2024-05-14T09:10:00Z"),
    )
    second = payload(
        ("m4", "sue@southwind.example", "2024-05-14T16:00:00Z"),
        ("m5", "mia@acme.example", "2024-05-14T16:10:00Z"),
    )
    assert post(setup, first).json()["activities_added"] == 1
    assert post(setup, second).json()["activities_added"] == 1
    late = post(setup, payload(("m3", "kim@acme.example", "2024-05-14T12:30:00Z")))
    assert late.json()["activities_added"] == 1 and late.json()["activities_removed"] == 1
    items = setup.client.get(
        "/api/v1/activities", params={"type": "chat_conversation"}, headers=setup.org.as_admin()
    ).json()["items"]
    assert sorted((i["user_id"], i["occurred_at"][:16], len(i["contact_ids"])) for i in items) == [
        (setup.ana, "2024-05-14T09:00", 2),
        (mia, "2024-05-14T09:00", 2),
    ]


def test_an_admin_key_may_post_and_other_roles_may_not(setup: Setup) -> None:
    body = json.dumps(CONVERSATION).encode()
    headers = {"Content-Type": "application/json"}
    admin = setup.client.post(INGEST, content=body, headers={**headers, **setup.org.as_admin()})
    assert admin.status_code == 200, admin.text
    for email in ("ana@acme.example", "mia@acme.example"):
        response = setup.client.post(
            INGEST, content=body, headers={**headers, **setup.org.as_user(email)}
        )
        is_error(response, 403)
    elsewhere = setup.client.post(
        INGEST,
        params={"org": setup.org.id + 1},
        content=body,
        headers={**headers, **setup.org.as_admin()},
    )
    is_error(elsewhere, 403)
    bad_key = {**headers, "Authorization": "Bearer nope"}
    is_error(setup.client.post(INGEST, content=body, headers=bad_key), 401)
    assert stored(setup.org.id) == (2, 1)


def test_bad_signatures_and_replays_are_refused_and_store_nothing(
    client: TestClient, setup: Setup
) -> None:
    body = json.dumps(CONVERSATION).encode()
    good = signed(setup.secret, body)
    now = int(time.time())
    tampered = json.dumps(payload(("wamid.1", JOE, "2024-05-14T09:00:00Z"))).encode()
    for raw, headers in (
        (body, signed("whsec_wrong", body)),
        (body, {**good, "X-Tally-Signature": "sha256=" + "0" * 64}),
        (body, {"Content-Type": "application/json"}),
        (body, {**good, "X-Tally-Timestamp": "soon"}),
        (body, signed(setup.secret, body, timestamp=now - 330)),  # a replay
        (body, signed(setup.secret, body, timestamp=now + 330)),
        (tampered, good),
    ):
        is_error(post(setup, raw, headers=headers), 401)
    other = make_org(client, name="Other", domains=("other.example",))  # no secret
    for org_id in (other.id, 999_999):
        response = client.post(INGEST, params={"org": org_id}, content=body, headers=good)
        is_error(response, 401)
    is_error(client.post(INGEST, content=body, headers=good), 401)  # no org, no key
    assert stored(setup.org.id) == (0, 0)
    assert post(setup, CONVERSATION, timestamp=now - 240).status_code == 200


BAD: list[tuple[str, Any]] = [
    ("not json", b"{not json"),
    ("a list", b"[]"),
    ("no messages", payload()),
    ("a source that is no token", {**CONVERSATION, "source": "Whats App"}),
    ("a long source", {**CONVERSATION, "source": "w" * 33}),
    ("no channel", {**CONVERSATION, "channel_id": ""}),
    ("a time without offset", payload(("m", JOE, "2024-05-14T09:00:00"))),
    ("not a time", payload(("m", JOE, "yesterday"))),
    ("an empty id", payload(("", JOE, "2024-05-14T09:00:00Z"))),
    ("a long id", payload(("x" * 201, JOE, "2024-05-14T09:00:00Z"))),
    ("a NUL in a sender", payload(("m", "jo\x00e@x.example", "2024-05-14T09:00:00Z"))),
    (
        "a negative length",
        {**CONVERSATION, "messages": [{**CONVERSATION["messages"][0], "text_length": -1}]},
    ),
    (
        "a boolean length",
        {**CONVERSATION, "messages": [{**CONVERSATION["messages"][0], "text_length": True}]},
    ),
    ("too many messages", payload(*[(f"m{i}", JOE, "2024-05-14T09:00:00Z") for i in range(1001)])),
    ("too many participants", {**CONVERSATION, "participants": ["a@b.example"] * 1001}),
]


@pytest.mark.parametrize("body", [b for _, b in BAD], ids=[n for n, _ in BAD])
def test_bad_payloads_are_4xx_and_store_nothing(setup: Setup, body: Any) -> None:
    response = post(setup, body)
    assert response.status_code in (400, 422), response.text
    is_error(response, response.status_code)
    assert stored(setup.org.id) == (0, 0)


def test_unmappable_senders_and_extra_fields_are_accepted(setup: Setup) -> None:
    body = payload(
        ("m1", "U024BE7LH", "2024-05-14T09:00:00Z"),
        ("m2", None, "2024-05-14T09:01:00Z"),
        ("m3", "ana@acme.example", "2024-05-14T09:02:00Z"),
    )
    body["messages"][0]["text"] = "never kept"
    response = post(setup, body)
    assert response.status_code == 200, response.text
    assert response.json()["activities_added"] == 0
    assert stored(setup.org.id) == (3, 0)


def test_chat_settings(setup: Setup) -> None:
    path = "/api/v1/org/chat-settings"
    rep = setup.org.as_user("ana@acme.example")
    assert setup.client.get(path, headers=rep).json() == {"gap_minutes": 240}
    is_error(setup.client.put(path, json={"gap_minutes": 30}, headers=rep), 403)
    for bad in ({"gap_minutes": 0}, {"gap_minutes": True}, {"gap_minutes": "30"}, {"x": 1}):
        is_error(setup.client.put(path, json=bad, headers=setup.org.as_admin()), 422)
    assert post(setup, CONVERSATION).json()["activities_added"] == 1
    changed = setup.client.put(path, json={"gap_minutes": 5}, headers=setup.org.as_admin())
    assert changed.status_code == 200 and changed.json() == {"gap_minutes": 5}
    assert stored(setup.org.id) == (2, 0)  # the messages are exactly 5 minutes apart
    assert setup.client.put(path, json={}, headers=setup.org.as_admin()).json() == {
        "gap_minutes": 240
    }
    assert stored(setup.org.id) == (2, 1)


def test_an_admin_sees_every_channel_a_tool_posted_to(setup: Setup) -> None:
    s = setup
    named = post(s, {**CONVERSATION, "channel_name": "Northwind (Joe)"})
    assert named.status_code == 200, named.text
    other = payload(("m1", JOE, "2024-05-15T09:00:00+02:00"), source="crisp", channel_id="s-9")
    assert post(s, other).status_code == 200
    # a later post without a name keeps the one given
    later = payload(("wamid.3", JOE, "2024-05-20T09:00:00+02:00"))
    assert post(s, later).status_code == 200

    def listed(**params: Any) -> Any:
        return s.client.get("/api/v1/chat/channels", params=params, headers=s.org.as_admin())

    first = listed(limit=1)
    assert first.status_code == 200, first.text
    [crisp] = first.json()["items"]  # the newest first
    assert (crisp["source"], crisp["channel_id"], crisp["messages"]) == ("crisp", "s-9", 1)
    rest = listed(limit=1, cursor=first.json()["next_cursor"]).json()
    [whatsapp] = rest["items"]
    assert rest["next_cursor"] is None
    assert whatsapp["name"] == "Northwind (Joe)" and whatsapp["messages"] == 3
    assert whatsapp["last_message_at"].startswith("2024-05-20T07:00:00")
    assert (whatsapp["connection_id"], whatsapp["synced_to"], whatsapp["kind"]) == (
        None,
        None,
        None,
    )
    assert [c["source"] for c in listed(source="whatsapp").json()["items"]] == ["whatsapp"]
    assert listed(source="Not A Source").status_code == 422
    assert listed(cursor="garbage").status_code == 400
    for who in ("ana@acme.example", "mia@acme.example"):  # it shows colleagues' customers
        answer = s.client.get("/api/v1/chat/channels", headers=s.org.as_user(who))
        assert answer.status_code == 403, answer.text
    other_org = make_org(s.client, name="Other")
    mine = s.client.get("/api/v1/chat/channels", headers=other_org.as_admin())
    assert mine.json()["items"] == []  # another organization sees none of them


def test_a_channel_name_the_columns_cannot_hold_is_refused(setup: Setup) -> None:
    for name in ("x" * 201, "two\nlines", ""):
        answer = post(setup, {**CONVERSATION, "channel_name": name})
        assert answer.status_code == 422, (name, answer.text)
    with session_scope() as session:
        assert session.scalar(select(func.count()).select_from(ChatChannel)) == 0
