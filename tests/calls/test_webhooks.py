"""Telephony webhooks end to end: signatures, matching, idempotency, merging with calendar calls."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.activities import store
from app.activities.models import Activity
from app.contacts.models import ActivityContact, Contact
from app.db import session_scope
from app.models import Organization
from tests.api import Org, make_org

GENERIC = "/api/v1/calls/webhook/generic"
TWILIO = "/api/v1/calls/webhook/twilio"
AUTH_TOKEN = "0123456789abcdef0123456789abcdef"
ACCOUNT_SID = "AC" + "1" * 32
ANN_PHONE = "+32470123456"
BOB_PHONE = "+3225551234"
START = datetime(2024, 5, 14, 10, 0, tzinfo=UTC)


@dataclass
class Setup:
    client: TestClient
    org: Org
    secret: str
    ann: int
    bob_contact: int


def is_error(response: Any, status: int) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body


@pytest.fixture
def setup(client: TestClient) -> Setup:
    org = make_org(client)
    ann = org.user("ann@acme.example", aliases=["a.n@acme.example"])["id"]
    response = client.patch(
        f"/api/v1/users/{ann}", json={"phones": ["0470 12 34 56"]}, headers=org.as_admin()
    )
    assert response.status_code == 422, response.text  # no default region yet: no + is unclear
    settings = {"default_region": "BE", "twilio_account_sid": ACCOUNT_SID}
    response = client.put(
        "/api/v1/org/telephony",
        json={**settings, "twilio_auth_token": AUTH_TOKEN},
        headers=org.as_admin(),
    )
    assert response.status_code == 200, response.text
    response = client.patch(
        f"/api/v1/users/{ann}", json={"phones": ["0470 12 34 56"]}, headers=org.as_admin()
    )
    assert response.status_code == 200, response.text
    assert response.json()["phones"] == [ANN_PHONE]
    response = client.post("/api/v1/org/telephony/webhook-secret", headers=org.as_admin())
    assert response.status_code == 201, response.text
    secret = response.json()["webhook_secret"]
    with session_scope() as session:
        bob = Contact(org_id=org.id, email="bob@client.example", name="Bob Client")
        bob.phones = [BOB_PHONE]
        session.add(bob)
        session.flush()
        bob_id = bob.id
    return Setup(client, org, secret, ann, bob_id)


def call(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "call-1",
        "direction": "outbound",
        "from": ANN_PHONE,
        "to": "02 555 12 34",
        "started_at": START.isoformat(),
        "duration_seconds": 125,
        "status": "completed",
    }
    body.update(changes)
    return body


def signed(secret: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    mac = hmac.new(secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    return {
        "X-Tally-Timestamp": ts,
        "X-Tally-Signature": f"sha256={mac}",
        "Content-Type": "application/json",
    }


def flip_last(signature: str) -> str:
    """The signature with its last hex digit changed (always to a different digit)."""
    return signature[:-1] + ("1" if signature[-1] == "0" else "0")


def post_generic(s: Setup, payload: Any, **kwargs: Any) -> Any:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    headers = kwargs.pop("headers", None) or signed(s.secret, body, **kwargs)
    return s.client.post(GENERIC, params={"org": s.org.id}, content=body, headers=headers)


def twilio_sign(token: str, url: str, params: dict[str, str]) -> str:
    """Twilio's algorithm, written out independently of the app: the URL, then each parameter
    name followed by its value, sorted by name; HMAC-SHA1 with the auth token; base64."""
    data = url
    for name in sorted(params):
        data += name + params[name]
    return base64.b64encode(hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()).decode()


def twilio_form(**changes: str) -> dict[str, str]:
    form = {
        "AccountSid": ACCOUNT_SID,
        "ApiVersion": "2010-04-01",
        "CallSid": "CA" + "a" * 32,
        "From": ANN_PHONE,
        "To": BOB_PHONE,
        "Direction": "outbound-api",
        "CallStatus": "completed",
        "CallDuration": "60",
        "Timestamp": "Tue, 14 May 2024 10:01:00 +0000",
        "CallbackSource": "call-progress-events",
        "SequenceNumber": "0",
    }
    form.update(changes)
    return form


def post_twilio(s: Setup, form: dict[str, str], signature: str | None = None) -> Any:
    url = f"http://testserver{TWILIO}?org={s.org.id}"
    headers = {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Twilio-Signature": signature or twilio_sign(AUTH_TOKEN, url, form),
    }
    return s.client.post(url, content=urlencode(form), headers=headers)


def calls(org_id: int) -> list[Activity]:
    with session_scope() as session:
        return list(
            session.scalars(
                select(Activity)
                .where(Activity.org_id == org_id, Activity.type == "call")
                .order_by(Activity.occurred_at)
            )
        )


def links(activity_id: int) -> list[int]:
    with session_scope() as session:
        return list(
            session.scalars(
                select(ActivityContact.contact_id).where(ActivityContact.activity_id == activity_id)
            )
        )


def calendar_call(org_id: int, user_id: int, contact_id: int, at: datetime) -> int:
    """A `call` activity as the calendar side records it."""
    key = uuid.uuid4().hex
    row = {"user_id": user_id, "type": "call", "occurred_at": at, "source_key": key}
    row |= {"provider": "caldav", "subject": "Call Bob"}
    with session_scope() as session:
        added = store.add(session, org_id, [row], {(key, user_id, "call"): [contact_id]})
        return added.inserted[0]


# --- generic ----------------------------------------------------------------------------------


def test_a_signed_generic_call_is_recorded_and_counted(setup: Setup) -> None:
    response = post_generic(setup, call())
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "recorded"
    [activity] = calls(setup.org.id)
    assert activity.id == response.json()["activity_id"]
    assert activity.user_id == setup.ann
    assert activity.provider == "generic" and activity.connection_id is None
    assert activity.occurred_at == START
    assert activity.subject == "Call with Bob Client"
    assert activity.source_key == hashlib.sha256(b"generic:call-1").hexdigest()
    assert links(activity.id) == [setup.bob_contact]
    params: dict[str, str | int] = {
        "metric": "calls",
        "period": "day",
        "start": "2024-05-13",
        "end": "2024-05-15",
        "user_id": setup.ann,
    }
    metrics = setup.client.get("/api/v1/metrics", params=params, headers=setup.org.as_admin())
    assert metrics.status_code == 200, metrics.text
    assert [p["value"] for p in metrics.json()["series"]] == [0, 1, 0]
    timeline = setup.client.get(
        "/api/v1/activities", params={"type": "call"}, headers=setup.org.as_admin()
    )
    [item] = timeline.json()["items"]
    assert item["source"] == {"provider": "generic", "connection_id": None}
    assert item["contact_ids"] == [setup.bob_contact]


def test_bad_signatures_are_refused_and_nothing_is_stored(setup: Setup) -> None:
    body = json.dumps(call()).encode()
    good = signed(setup.secret, body)
    for headers in (
        signed("whsec_wrong", body),
        {**good, "X-Tally-Signature": flip_last(good["X-Tally-Signature"])},
        {**good, "X-Tally-Signature": "sha256="},
        {**good, "X-Tally-Timestamp": str(int(good["X-Tally-Timestamp"]) + 1)},
        {"Content-Type": "application/json"},
        {**good, "X-Tally-Timestamp": "soon"},
    ):
        is_error(post_generic(setup, body, headers=headers), 401)
    tampered = json.dumps(call(duration_seconds=9999)).encode()
    is_error(post_generic(setup, tampered, headers=good), 401)
    assert calls(setup.org.id) == []


def test_an_old_or_future_timestamp_is_a_replay(setup: Setup) -> None:
    now = int(time.time())
    for moment in (now - 330, now - 3600, now + 330):  # margins: a slow test machine
        is_error(post_generic(setup, call(), timestamp=moment), 401)
    assert post_generic(setup, call(), timestamp=now - 240).status_code == 200
    assert len(calls(setup.org.id)) == 1


def test_no_secret_or_unknown_org_is_refused(client: TestClient, setup: Setup) -> None:
    other = make_org(client, name="Other", domains=("other.example",))
    body = json.dumps(call()).encode()
    response = client.post(
        GENERIC, params={"org": other.id}, content=body, headers=signed(setup.secret, body)
    )
    is_error(response, 401)
    response = client.post(
        GENERIC, params={"org": 999999}, content=body, headers=signed(setup.secret, body)
    )
    is_error(response, 401)
    is_error(client.post(GENERIC, content=body, headers=signed(setup.secret, body)), 422)
    is_error(client.post("/api/v1/calls/webhook/zoom", params={"org": setup.org.id}), 404)
    assert calls(setup.org.id) == []


def test_malformed_payloads_are_4xx_and_store_nothing(setup: Setup) -> None:
    for payload in (
        b"{not json",
        b"[]",
        json.dumps({"id": "x"}).encode(),
        json.dumps(call(started_at="2024-05-14T10:00:00")).encode(),  # no offset
        json.dumps(call(direction="sideways")).encode(),
        json.dumps(call(duration_seconds=-5)).encode(),
        json.dumps(call(status="ringing")).encode(),
        json.dumps(call(id="")).encode(),
    ):
        response = post_generic(setup, payload)
        assert response.status_code in (400, 422), (payload, response.text)
        is_error(response, response.status_code)
    assert calls(setup.org.id) == []


def test_unanswered_or_empty_calls_do_not_count(setup: Setup) -> None:
    variants: list[dict[str, Any]] = [
        {"status": "no-answer"},
        {"status": "busy"},
        {"duration_seconds": 0},
    ]
    for i, changes in enumerate(variants):
        response = post_generic(setup, call(id=f"c{i}", **changes))
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "ignored"
    assert calls(setup.org.id) == []


def test_an_unknown_rep_number_is_ignored(setup: Setup) -> None:
    response = post_generic(setup, call(**{"from": "+32470999999"}))
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "ignored"
    assert response.json()["reason"]
    # inbound: the rep is the callee, so Ann calling out is not "to" her
    response = post_generic(setup, call(id="c2", direction="inbound"))
    assert response.json()["status"] == "ignored"
    assert calls(setup.org.id) == []


def test_the_rep_can_be_named_by_any_of_their_addresses(setup: Setup) -> None:
    payload = call(**{"from": "+32470999999", "user_email": "A.N@acme.example"})
    response = post_generic(setup, payload)
    assert response.json()["status"] == "recorded", response.text
    assert calls(setup.org.id)[0].user_id == setup.ann


def test_an_inbound_call_matches_the_callee(setup: Setup) -> None:
    response = post_generic(
        setup, call(direction="inbound", **{"from": BOB_PHONE, "to": ANN_PHONE})
    )
    assert response.json()["status"] == "recorded", response.text
    [activity] = calls(setup.org.id)
    assert activity.user_id == setup.ann and links(activity.id) == [setup.bob_contact]


def test_an_unknown_contact_still_counts_for_the_rep(setup: Setup) -> None:
    response = post_generic(setup, call(to="+442071838750"))
    assert response.json()["status"] == "recorded", response.text
    [activity] = calls(setup.org.id)
    assert links(activity.id) == []
    assert activity.subject == "Call with +442071838750"


def test_the_same_call_twice_is_one_call(setup: Setup) -> None:
    first = post_generic(setup, call())
    second = post_generic(setup, call())
    assert first.json()["status"] == "recorded"
    assert second.json() == {
        "status": "duplicate",
        "activity_id": first.json()["activity_id"],
        "reason": "already recorded",
    }
    assert len(calls(setup.org.id)) == 1


def test_a_calendar_call_within_five_minutes_is_the_same_call(setup: Setup) -> None:
    existing = calendar_call(setup.org.id, setup.ann, setup.bob_contact, START)
    response = post_generic(setup, call(started_at=(START + timedelta(minutes=4)).isoformat()))
    assert response.json()["status"] == "duplicate", response.text
    assert response.json()["activity_id"] == existing
    assert [a.id for a in calls(setup.org.id)] == [existing]


def test_a_calendar_call_six_minutes_away_is_another_call(setup: Setup) -> None:
    calendar_call(setup.org.id, setup.ann, setup.bob_contact, START)
    response = post_generic(setup, call(started_at=(START + timedelta(minutes=6)).isoformat()))
    assert response.json()["status"] == "recorded", response.text
    assert len(calls(setup.org.id)) == 2


# --- Twilio -----------------------------------------------------------------------------------


def test_a_signed_twilio_callback_is_recorded(setup: Setup) -> None:
    response = post_twilio(setup, twilio_form())
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "recorded"
    [activity] = calls(setup.org.id)
    assert activity.provider == "twilio" and activity.user_id == setup.ann
    assert activity.occurred_at == datetime(2024, 5, 14, 10, 0, tzinfo=UTC)  # Timestamp - 60 s
    assert links(activity.id) == [setup.bob_contact]
    # Twilio retries, or a replay of the same signed request: still one call
    assert post_twilio(setup, twilio_form()).json()["status"] == "duplicate"
    assert len(calls(setup.org.id)) == 1


def test_a_bad_twilio_signature_is_refused(setup: Setup) -> None:
    url = f"http://testserver{TWILIO}?org={setup.org.id}"
    form = twilio_form()
    for signature in (
        twilio_sign("f" * 32, url, form),
        twilio_sign(AUTH_TOKEN, url.replace("org=", "org=0"), form),
        twilio_sign(AUTH_TOKEN, url, {**form, "CallDuration": "6000"}),
        "garbage",
    ):
        is_error(post_twilio(setup, form, signature), 401)
    response = setup.client.post(
        url,
        content=urlencode(form),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    is_error(response, 401)
    assert calls(setup.org.id) == []


def test_a_twilio_callback_that_is_not_a_finished_call(setup: Setup) -> None:
    response = post_twilio(setup, twilio_form(CallStatus="no-answer", CallDuration="0"))
    assert response.json()["status"] == "ignored", response.text
    form = twilio_form()
    del form["CallSid"]
    is_error(post_twilio(setup, form), 422)
    is_error(post_twilio(setup, twilio_form(Timestamp="yesterday-ish")), 422)
    assert calls(setup.org.id) == []


def test_twilio_and_calendar_merge_too(setup: Setup) -> None:
    existing = calendar_call(setup.org.id, setup.ann, setup.bob_contact, START)
    response = post_twilio(setup, twilio_form())
    assert response.json() == {
        "status": "duplicate",
        "activity_id": existing,
        "reason": "the same call is already recorded",
    }


# --- settings ---------------------------------------------------------------------------------


def test_secrets_never_appear_and_only_admins_manage_telephony(setup: Setup) -> None:
    client, org = setup.client, setup.org
    body = client.get("/api/v1/org/telephony", headers=org.as_admin()).json()
    assert body == {
        "twilio_account_sid": ACCOUNT_SID,
        "default_region": "BE",
        "twilio_auth_token_set": True,
        "webhook_secret_set": True,
        "generic_webhook_path": f"{GENERIC}?org={org.id}",
        "twilio_webhook_path": f"{TWILIO}?org={org.id}",
    }
    text = json.dumps(body)
    assert AUTH_TOKEN not in text and setup.secret not in text
    with session_scope() as session:
        stored = session.get_one(Organization, org.id)
        assert AUTH_TOKEN.encode() not in (stored.telephony_secret or b"")
        assert AUTH_TOKEN not in json.dumps(stored.telephony)
    org.user("rep@acme.example")
    org.user("boss@acme.example", role="manager")
    for who in ("rep@acme.example", "boss@acme.example"):
        headers = org.as_user(who)
        is_error(client.get("/api/v1/org/telephony", headers=headers), 403)
        is_error(
            client.put("/api/v1/org/telephony", json={"default_region": "US"}, headers=headers),
            403,
        )
        is_error(client.post("/api/v1/org/telephony/webhook-secret", headers=headers), 403)
    # a new secret replaces the old one; clearing the auth token turns Twilio off
    new = client.post("/api/v1/org/telephony/webhook-secret", headers=org.as_admin()).json()
    assert new["webhook_secret"] != setup.secret
    is_error(post_generic(setup, call()), 401)
    setup.secret = new["webhook_secret"]
    assert post_generic(setup, call()).status_code == 200
    cleared = client.put(
        "/api/v1/org/telephony", json={"twilio_auth_token": None}, headers=org.as_admin()
    ).json()
    assert cleared["twilio_auth_token_set"] is False and cleared["webhook_secret_set"] is True
    assert cleared["default_region"] == "BE"  # fields left out are unchanged
    is_error(post_twilio(setup, twilio_form(CallSid="CA" + "b" * 32)), 401)


def test_invalid_telephony_settings_are_422(setup: Setup) -> None:
    for body in (
        {"default_region": "XX"},
        {"twilio_account_sid": "nope"},
        {"twilio_auth_token": "short"},
    ):
        is_error(
            setup.client.put("/api/v1/org/telephony", json=body, headers=setup.org.as_admin()),
            422,
        )
