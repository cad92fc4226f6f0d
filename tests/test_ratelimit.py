"""A brake on guessing: failed authentications and failed keyless calls are counted per client
address (and per key prefix) in the database, and answered 429 rate_limited with Retry-After
once over the limit; whoever proves who they are is never slowed."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import subprocess
import sys
import time
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import select

from app import ratelimit
from app.config import settings
from app.db import Database, session_scope
from app.main import create_app
from app.models import RateLimitHit, utcnow
from tests.api import ADMIN, auth, make_org
from tests.conftest import ROOT

ME = "/api/v1/users/me"
LIMIT = 30  # settings.rate_limit_failures_per_address, the documented default
KEY_LIMIT = 10  # settings.rate_limit_failures_per_key


def from_address(client: TestClient, address: str) -> TestClient:
    """The same app, reached from another client address."""
    return TestClient(client.app, client=(address, 40000))


def made_up_key(prefix: str = "tly_") -> str:
    return prefix + secrets.token_urlsafe(32)[: 43 - len(prefix) + 4]


def is_rate_limited(response: Any) -> int:
    assert response.status_code == 429, response.text
    assert response.json() == {
        "error": {"code": "rate_limited", "message": response.json()["error"]["message"]}
    }
    wait = int(response.headers["Retry-After"])
    assert 1 <= wait <= settings.rate_limit_window_seconds
    return wait


def test_the_defaults_are_the_documented_ones() -> None:
    assert settings.rate_limit_failures_per_address == LIMIT
    assert settings.rate_limit_failures_per_key == KEY_LIMIT
    assert settings.rate_limit_window_seconds == 60


def test_guessing_keys_is_answered_429_after_the_limit(client: TestClient) -> None:
    org = make_org(client)
    for _ in range(40):  # neither successes nor missing keys count
        assert client.get(ME, headers=org.as_admin()).status_code == 200
        assert client.get(ME).status_code == 401
    started = time.monotonic()
    answers = [client.get(ME, headers=auth(made_up_key())).status_code for _ in range(60)]
    assert answers == [401] * LIMIT + [429] * (60 - LIMIT), answers
    assert time.monotonic() - started < 30
    is_rate_limited(client.get("/api/v1/activities", headers=auth(made_up_key())))
    # the brake is on failures: a valid key from the same address still works
    assert client.get(ME, headers=org.as_admin()).status_code == 200
    # another address is not concerned
    assert (
        from_address(client, "192.0.2.10").get(ME, headers=auth(made_up_key())).status_code == 401
    )


def test_guesses_at_one_key_are_braked_from_every_address_but_the_key_still_works(
    client: TestClient,
) -> None:
    org = make_org(client)
    prefix = org.admin_key[: ratelimit.KEY_PREFIX_CHARS]
    answers = [
        from_address(client, f"198.51.100.{n}").get(ME, headers=auth(made_up_key(prefix)))
        for n in range(KEY_LIMIT + 2)
    ]
    assert [a.status_code for a in answers] == [401] * KEY_LIMIT + [429, 429]
    is_rate_limited(answers[-1])
    assert client.get(ME, headers=org.as_admin()).status_code == 200  # never slowed
    is_rate_limited(client.get(ME, headers=auth(made_up_key(prefix))))
    assert client.get(ME, headers=auth(made_up_key())).status_code == 401  # another prefix


def test_the_count_is_shared_by_every_api_process(client: TestClient, database: Database) -> None:
    """Failures another process recorded (a second uvicorn worker) brake this one."""
    address = "203.0.113.50"
    script = (
        "import sys\n"
        "from app import ratelimit\n"
        "from app.db import Database, set_database\n"
        "set_database(Database(sys.argv[1]))\n"
        f"subject = ratelimit.Subject('auth-address:{address}', {LIMIT})\n"
        f"for _ in range({LIMIT}): ratelimit.record_failure([subject])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, database.url], cwd=ROOT, capture_output=True, timeout=120
    )
    assert done.returncode == 0, done.stderr.decode()
    elsewhere = from_address(client, address)
    is_rate_limited(elsewhere.get(ME, headers=auth(made_up_key())))


def test_a_new_window_starts_the_count_again_and_old_rows_go(database: Database) -> None:
    subject = ratelimit.Subject("auth-address:192.0.2.99", 2)
    now = utcnow()
    assert ratelimit.record_failure([subject], now=now) is None
    assert ratelimit.record_failure([subject], now=now) is None
    wait = ratelimit.record_failure([subject], now=now)
    assert wait is not None and 1 <= wait <= settings.rate_limit_window_seconds
    later = now + timedelta(seconds=settings.rate_limit_window_seconds)
    assert ratelimit.record_failure([subject], now=later) is None
    with session_scope() as session:
        assert session.scalars(select(RateLimitHit.count)).all() == [1]


def test_the_instance_admin_token_is_refused_once_over_even_when_right(client: TestClient) -> None:
    org = {"name": "Acme", "domains": ["acme.example"], "timezone": "Europe/Brussels"}
    for _ in range(LIMIT):
        response = client.post(
            "/api/v1/orgs", json=org, headers=auth("guess-" + secrets.token_hex(4))
        )
        assert response.status_code == 401
    is_rate_limited(client.post("/api/v1/orgs", json=org, headers=ADMIN))
    assert (
        from_address(client, "192.0.2.20").post("/api/v1/orgs", json=org, headers=ADMIN).status_code
        == 201
    )


def _signed(secret: str, body: bytes) -> dict[str, str]:
    ts = str(int(time.time()))
    mac = hmac.new(secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    return {
        "X-Tally-Timestamp": ts,
        "X-Tally-Signature": f"sha256={mac}",
        "Content-Type": "application/json",
    }


def test_forged_call_webhooks_are_braked_but_signed_ones_pass(client: TestClient) -> None:
    org = make_org(client)
    secret = client.post("/api/v1/org/telephony/webhook-secret", headers=org.as_admin()).json()[
        "webhook_secret"
    ]
    admin = client.get(ME, headers=org.as_admin()).json()["email"]
    call = {
        "id": "call-1",
        "direction": "outbound",
        "from": "+32470123456",
        "to": "+3225551234",
        "started_at": "2026-03-02T10:00:00+01:00",
        "duration_seconds": 60,
        "status": "completed",
        "user_email": admin,
    }
    body = json.dumps(call).encode()
    url = "/api/v1/calls/webhook/generic"
    forged = [
        client.post(url, params={"org": org.id}, content=body, headers=_signed("whsec_guess", body))
        for _ in range(LIMIT + 1)
    ]
    assert [f.status_code for f in forged] == [401] * LIMIT + [429]
    is_rate_limited(forged[-1])
    signed = client.post(url, params={"org": org.id}, content=body, headers=_signed(secret, body))
    assert signed.status_code == 200 and signed.json()["status"] == "recorded", signed.text
    twilio = client.post("/api/v1/calls/webhook/twilio", params={"org": org.id}, content=b"a=b")
    is_rate_limited(twilio)


def test_made_up_oauth_states_are_braked(client: TestClient) -> None:
    answers = [
        client.get(
            "/api/v1/connections/oauth/google/callback", params={"state": f"s{n}", "code": "c"}
        )
        for n in range(LIMIT + 1)
    ]
    assert all(a.status_code in (400, 404) for a in answers[:LIMIT]), answers[0].text
    is_rate_limited(answers[-1])


@pytest.fixture
def push_token(monkeypatch: pytest.MonkeyPatch) -> str:
    token = "push-" + secrets.token_hex(8)
    monkeypatch.setattr(settings, "google_push_token", SecretStr(token))
    return token


def test_gmail_push_with_a_wrong_token_is_braked_before_the_token_is_compared(
    client: TestClient, push_token: str
) -> None:
    data = base64.urlsafe_b64encode(
        json.dumps({"emailAddress": "a@acme.example", "historyId": 1}).encode()
    )
    body = {"message": {"data": data.decode()}}
    path = "/api/v1/push/google/gmail"
    for _ in range(LIMIT):
        assert client.post(path, params={"token": "wrong"}, json=body).status_code == 403
    is_rate_limited(client.post(path, params={"token": push_token}, json=body))
    other = from_address(client, "192.0.2.30")
    assert other.post(path, params={"token": push_token}, json=body).status_code == 204
    # forged Graph notifications count the same way, but only as failures
    graph = {"value": [{"clientState": "1.forged"}]}
    is_rate_limited(client.post("/api/v1/push/microsoft", json=graph))


def test_every_route_documents_429_with_retry_after() -> None:
    spec = create_app().openapi()
    for path, item in spec["paths"].items():
        if not path.startswith("/api/v1/"):
            continue
        for method, operation in item.items():
            answer = operation["responses"].get("429")
            assert answer is not None, (method, path)
            assert "Retry-After" in answer.get("headers", {}), (method, path)
