"""The consent bookkeeping every OAuth provider shares: a started flow is kept encrypted, used
once, only by its provider, only until it expires; a finished consent creates the connection
once and a second consent (a reconnect) refreshes it instead of adding another."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from app.connections import oauth
from app.connections.models import OAuthFlow
from app.db import Database, session_scope
from app.errors import BadRequest
from app.models import Connection, ConnectionStatus, User, UserAddress, utcnow
from app.security import decrypt_secret
from app.users import service as users
from tests.api import make_org

FLOW = {"state": "st-1", "code_verifier": "v" * 64, "nonce": "n-1"}


@pytest.fixture
def ana(client: TestClient) -> int:
    org = make_org(client)
    return int(org.user("ana@acme.example")["id"])


def keep(user_id: int, state: str = "st-1", provider: str = "google", **shift: int) -> None:
    with session_scope() as session:
        user = session.get_one(User, user_id)
        now = utcnow() + timedelta(**shift)
        oauth.keep_flow(session, user, provider, state, FLOW, now=now)


def take(provider: str, state: str | None) -> dict[str, object]:
    with session_scope() as session:
        pending = oauth.take_flow(session, provider, state)
    assert pending.provider == provider
    return pending.usable(now=utcnow())


def test_a_kept_flow_comes_back_once_and_is_stored_encrypted(ana: int) -> None:
    keep(ana)
    with session_scope() as session:
        [row] = session.scalars(select(OAuthFlow)).all()
        assert b"code_verifier" not in row.flow and b"v" * 64 not in row.flow
        assert row.state_hash != "st-1" and len(row.state_hash) == 64
    with session_scope() as session:
        pending = oauth.take_flow(session, "google", "st-1")
    assert (pending.user_id, pending.provider, pending.usable(now=utcnow())) == (
        ana,
        "google",
        FLOW,
    )
    with pytest.raises(BadRequest, match="already used"):
        take("google", "st-1")


@pytest.mark.parametrize(
    ("provider", "state", "message"),
    [
        ("google", None, "no state"),
        ("google", "", "no state"),
        ("google", "st-other", "unknown"),
        ("microsoft", "st-1", "unknown"),  # a Google consent cannot finish as Microsoft's
    ],
)
def test_a_callback_without_its_flow_is_refused(
    ana: int, provider: str, state: str | None, message: str
) -> None:
    keep(ana)
    with pytest.raises(BadRequest, match=message):
        take(provider, state)


def test_an_expired_flow_is_refused_and_gone(ana: int) -> None:
    keep(ana, minutes=-16)  # started 16 minutes ago: the flow lives 15
    with pytest.raises(BadRequest, match="expired"):
        take("google", "st-1")
    with session_scope() as session:
        assert session.scalar(select(func.count()).select_from(OAuthFlow)) == 0


def test_starting_a_flow_clears_everybody_s_expired_ones(ana: int) -> None:
    keep(ana, state="old", minutes=-20)
    keep(ana, state="new")
    with session_scope() as session:
        assert session.scalar(select(func.count()).select_from(OAuthFlow)) == 1
    assert take("google", "new") == FLOW


def test_a_consent_creates_the_connection_and_a_reconnect_refreshes_it(
    database: Database, ana: int
) -> None:
    with session_scope() as session:
        user = session.get_one(User, ana)
        first = oauth.connect(
            session,
            user,
            "gmail",
            account="ana@acme.example",
            config={"label": "work"},
            secret={"refresh_token": "rt-1"},
        )
        first_id = first.id
        first.status = ConnectionStatus.needs_reconnect
        first.last_error = "Reconnect needed: revoked"
        first.cursors = {"gmail": "history-42"}
    with session_scope() as session:
        user = session.get_one(User, ana)
        again = oauth.connect(
            session,
            user,
            "gmail",
            account="ana@acme.example",
            config={},
            secret={"refresh_token": "rt-2"},
        )
        assert again.id == first_id
        assert again.status == ConnectionStatus.pending and again.last_error is None
        assert again.cursors == {"gmail": "history-42"}  # resumes where it stopped
        assert again.config == {"label": "work", "account": "ana@acme.example"}
        assert again.secret is not None and b"rt-2" not in again.secret
        assert decrypt_secret(again.secret) == {"refresh_token": "rt-2"}
        other = oauth.connect(
            session, user, "gmail", account="ana.private@gmail.example", config={}, secret={}
        )
        assert other.id != first_id  # another account of the same user is another connection
        assert session.scalar(select(func.count()).select_from(Connection)) == 2


def test_aliases_a_provider_reports_are_learned_unless_a_colleague_has_them(
    client: TestClient,
) -> None:
    org = make_org(client)
    ana = int(org.user("ana@acme.example")["id"])
    org.user("bob@acme.example", aliases=["sales@acme.example"])
    with session_scope() as session:
        user = session.get_one(User, ana)
        added = users.learn_addresses(
            session,
            user,
            ["ana@acme.example", "A.Silva@Acme.example", "sales@acme.example", "not-an-address"],
        )
        assert added == ["a.silva@acme.example"]
        mine = set(session.scalars(select(UserAddress.email).where(UserAddress.user_id == ana)))
        assert mine == {"ana@acme.example", "a.silva@acme.example"}


def test_an_unknown_oauth_provider_is_a_404_with_the_error_body(client: TestClient) -> None:
    org = make_org(client)
    for path in ("/api/v1/connections/oauth/yahoo/start", "/api/v1/connections/oauth/imap/start"):
        response = client.get(path, headers=org.as_admin())
        assert response.status_code == 404, response.text
        assert response.json()["error"]["code"] == "not_found"
    response = client.get("/api/v1/connections/oauth/yahoo/callback?state=x&code=y")
    assert response.status_code == 404 and set(response.json()) == {"error"}


def test_starting_a_consent_needs_a_key(client: TestClient) -> None:
    response = client.get("/api/v1/connections/oauth/google/start")
    assert response.status_code == 401 and set(response.json()) == {"error"}
