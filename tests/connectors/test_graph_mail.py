"""GraphMailConnector, GraphAuth, GraphClient and MicrosoftOAuth against the local emulator."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2
import pytest

from connectors.base import AuthExpired, ConnectorError, Page, RateLimited
from connectors.microsoft import MicrosoftApp, MicrosoftOAuth, PushTarget, connect
from connectors.microsoft.auth import refusal
from connectors.microsoft.mail import GraphMailConnector, read_page
from tests.connectors.pulling import pull_pages
from tests.emulators.microsoft import MicrosoftEmulator

NOW = datetime.now(UTC).replace(microsecond=0)
SINCE = NOW - timedelta(days=365)
REDIRECT = "http://localhost:8000/api/v1/connections/oauth/microsoft/callback"


@pytest.fixture
def ms() -> Iterator[MicrosoftEmulator]:
    emulator = MicrosoftEmulator().start()
    yield emulator
    emulator.stop()


def app_of(ms: MicrosoftEmulator) -> MicrosoftApp:
    return MicrosoftApp(
        client_id=ms.client_id,
        client_secret=ms.client_secret,
        authority=ms.authority,
        graph_url=ms.graph,
        ca_bundle=str(ms.ca_path),
        timeout=10,
    )


def consent(ms: MicrosoftEmulator, email: str) -> dict[str, Any]:
    """A user's connection secret, made by the real consent flow against the emulator."""
    client = MicrosoftOAuth(app_of(ms))
    started = client.start(REDIRECT, login_hint=email)
    back = ms.consent(started.authorization_url)
    params = dict(httpx2.URL(back).params)
    return dict(client.finish(started.flow, params, REDIRECT).secret)


def mail_of(ms: MicrosoftEmulator, email: str, **options: Any) -> GraphMailConnector:
    mail, _ = connect(app_of(ms), consent(ms, email), account=email, **options)
    mail.client._sleep = lambda seconds: None  # no real waiting in the tests
    return mail


def drain(connector: Any, cursor: str | None = None) -> tuple[list[Page], str | None]:
    return pull_pages(connector, cursor, since=SINCE)


def subjects(pages: list[Page]) -> list[str]:
    return sorted(m.subject for p in pages for m in p.messages)


def test_the_consent_flow_yields_a_token_cache_and_the_aliases(ms: MicrosoftEmulator) -> None:
    ms.add_user("ana@acme.example", aliases=["a.silva@acme.example"])
    client = MicrosoftOAuth(app_of(ms))
    started = client.start(REDIRECT, login_hint="ana@acme.example")
    assert started.state == started.flow["state"] and "code_verifier" in started.flow
    assert "code_challenge=" in started.authorization_url
    asked = httpx2.URL(started.authorization_url).params["scope"].split()
    assert f"{ms.base}/Mail.Read" in asked and f"{ms.base}/Mail.ReadBasic" not in asked
    back = ms.consent(started.authorization_url)
    found = client.finish(started.flow, dict(httpx2.URL(back).params), REDIRECT)
    assert found.account == "ana@acme.example"
    # the exact mode: nothing where it counts differently (docs/microsoft.md, "Scopes")
    assert found.config == {
        "mail_permission": "Mail.Read",
        "deviations": [],
        "tenant_id": "tenant-1",
    }
    assert found.aliases == ("a.silva@acme.example",)
    assert found.providers == ("microsoft",)
    assert set(found.secret) == {"token_cache", "home_account_id"}
    assert "rt-" in found.secret["token_cache"]  # the refresh token lives in the cache
    assert "client-secret" not in repr(client)


def test_a_refused_or_forged_consent_is_auth_expired(ms: MicrosoftEmulator) -> None:
    ms.add_user("ana@acme.example")
    client = MicrosoftOAuth(app_of(ms))
    started = client.start(REDIRECT, login_hint="ana@acme.example")
    with pytest.raises(AuthExpired, match="access_denied"):
        client.finish(started.flow, {"error": "access_denied", "state": started.state}, REDIRECT)
    back = dict(httpx2.URL(ms.consent(started.authorization_url)).params)
    with pytest.raises(AuthExpired, match="does not match"):
        client.finish(started.flow, {**back, "state": "forged"}, REDIRECT)


def test_backfill_of_inbox_and_sent_items_in_pages(ms: MicrosoftEmulator) -> None:
    ms.add_user("ana@acme.example")
    for i in range(1200):
        ms.deliver(
            "ana@acme.example",
            sender=f"Joe {i} <joe{i}@northwind.example>",
            to=["ana@acme.example"],
            subject=f"in {i}",
            when=NOW - timedelta(hours=i),
        )
    for i in range(300):
        ms.deliver(
            "ana@acme.example",
            "sentitems",
            sender="ana@acme.example",
            to=[f"kim{i}@globex.example"],
            subject=f"out {i}",
        )
    ms.deliver("ana@acme.example", sender="x@northwind.example", subject="draft", draft=True)
    ms.deliver(
        "ana@acme.example",
        sender="old@northwind.example",
        subject="too old",
        when=NOW - timedelta(days=500),
    )
    mail = mail_of(ms, "ana@acme.example")
    before = ms.graph_requests
    pages, cursor = drain(mail)
    messages = [m for p in pages for m in p.messages]
    assert len(messages) == 1500 and len({m.source_id for m in messages}) == 1500
    assert "draft" not in subjects(pages) and "too old" not in subjects(pages)
    sent = [m for m in messages if m.subject.startswith("out")]
    assert {m.folder_role for m in sent} == {"sent"}
    assert {m.folder_role for m in messages if m.subject.startswith("in")} == {"inbox"}
    first = next(m for m in messages if m.subject == "in 0")
    assert first.sender is not None and first.sender.name == "Joe 0"
    assert first.message_id and not first.message_id.startswith("<")
    assert first.date is not None and first.provider_date is not None
    # pages only: 1200/250 -> 5 pages + 300/250 -> 2 pages (the last carries the deltaLink)
    assert ms.graph_requests - before == 7
    assert cursor is not None and "deltatoken" in cursor

    again, _ = drain(mail, cursor)  # nothing changed
    assert subjects(again) == []


def test_changes_moves_and_deletions_between_syncs(ms: MicrosoftEmulator) -> None:
    ms.add_user("ana@acme.example")
    first = ms.deliver("ana@acme.example", sender="joe@northwind.example", subject="one")
    mail = mail_of(ms, "ana@acme.example", folders=("inbox", "sentitems", "archive"))
    _, cursor = drain(mail)
    ms.deliver("ana@acme.example", sender="kim@globex.example", subject="two")
    ms.move("ana@acme.example", first, "archive")
    gone = ms.deliver("ana@acme.example", sender="x@globex.example", subject="three")
    ms.delete("ana@acme.example", gone)
    pages, cursor = drain(mail, cursor)
    ids = [m.source_id for p in pages for m in p.messages]
    assert subjects(pages) == ["one", "two"]  # "one" now in archive, with the same id
    assert first in ids
    archived = next(m for p in pages for m in p.messages if m.subject == "one")
    assert archived.folder_role == "other"


def test_the_folder_round_restarts_when_graph_forgets_the_sync_state(
    ms: MicrosoftEmulator,
) -> None:
    ms.add_user("ana@acme.example")
    for i in range(30):
        ms.deliver("ana@acme.example", sender=f"c{i}@northwind.example", subject=f"m{i}")
    mail = mail_of(ms, "ana@acme.example", page_size=10)
    pages = mail.pull(None, since=SINCE)
    first = next(pages)
    assert len(first.messages) == 10
    ms.expire_sync_states("ana@acme.example")  # the next link now answers 410
    rest = list(pages)
    seen = [m.subject for p in [first, *rest] for m in p.messages]
    assert set(seen) == {f"m{i}" for i in range(30)}  # restarted: 10 repeated, none lost
    cursor = [p.cursor for p in rest if p.cursor][-1]
    ms.expire_sync_states("ana@acme.example")  # now the delta link answers 410
    ms.deliver("ana@acme.example", sender="new@northwind.example", subject="new")
    again, _ = drain(mail, cursor)
    assert "new" in subjects(again) and len(subjects(again)) == 31


def test_meeting_messages_are_calendar_traffic_and_removed_entries_are_skipped() -> None:
    items = [
        {
            "@odata.type": "#microsoft.graph.eventMessageRequest",
            "id": "a",
            "subject": "Invitation",
            "from": {"emailAddress": {"address": "joe@northwind.example"}},
        },
        {"id": "b", "@removed": {"reason": "deleted"}},
        {
            "id": "c",
            "subject": "Hi",
            "from": {"emailAddress": {"name": "", "address": "/O=EXCHANGELABS/OU=X"}},
            "toRecipients": [{"emailAddress": {"name": "Ana", "address": "Ana@Acme.example"}}],
            "sentDateTime": "2026-01-02T10:00:00Z",
        },
        {"subject": "no id"},
    ]
    messages, failures = read_page(items, "inbox")
    assert [m.source_id for m in messages] == ["a", "c"]
    assert messages[0].calendar_method == "REQUEST"
    assert messages[1].sender is None  # a legacy DN is no address
    assert messages[1].to[0].email == "ana@acme.example"
    assert messages[1].date == datetime(2026, 1, 2, 10, tzinfo=UTC)
    assert len(failures) == 1


def test_a_short_retry_after_is_waited_a_long_one_is_raised(ms: MicrosoftEmulator) -> None:
    ms.add_user("ana@acme.example")
    for i in range(30):
        ms.deliver("ana@acme.example", sender=f"c{i}@northwind.example", subject=f"m{i}")
    mail = mail_of(ms, "ana@acme.example", page_size=10)
    waits: list[float] = []
    mail.client._sleep = waits.append
    ms.throttle("ana@acme.example", 2)
    pages, cursor = drain(mail)
    assert waits == [2] and len(subjects(pages)) == 30

    ms.deliver("ana@acme.example", sender="n@northwind.example", subject="late")
    ms.throttle("ana@acme.example", 120)
    with pytest.raises(RateLimited) as raised:
        drain(mail, cursor)
    assert raised.value.retry_after == 120 and "throttling" in str(raised.value)


def test_server_errors_back_off_with_jitter_then_give_up(ms: MicrosoftEmulator) -> None:
    ms.add_user("ana@acme.example")
    mail = mail_of(ms, "ana@acme.example")
    waits: list[float] = []
    calls = {"n": 0}

    def flaky(request: httpx2.Request) -> httpx2.Response:
        calls["n"] += 1
        return httpx2.Response(503 if calls["n"] < 5 else 500, json={"error": {"code": "x"}})

    client = mail.client
    client._transport = httpx2.MockTransport(flaky)
    client.close()
    client._sleep = waits.append
    with pytest.raises(ConnectorError, match="500"):
        client.get("me")
    assert len(waits) == client.attempts - 1
    assert all(0 <= w <= min(client.backoff_cap, 2**i) for i, w in enumerate(waits))


def test_never_more_than_four_requests_in_flight_for_a_mailbox(ms: MicrosoftEmulator) -> None:
    ms.add_user("ana@acme.example")
    ms.latency = 0.05
    mail = mail_of(ms, "ana@acme.example")
    errors: list[Exception] = []

    def hit() -> None:
        try:
            for _ in range(3):
                mail.client.get("me")
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=hit) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    user = ms.user("ana@acme.example")
    assert user.max_in_flight == 4 and user.refused == 0
    assert mail.client.stats.peak_in_flight == 4


def test_the_emulator_refuses_a_fifth_concurrent_request(ms: MicrosoftEmulator) -> None:
    ms.add_user("ana@acme.example")
    ms.latency = 0.2
    mail = mail_of(ms, "ana@acme.example", max_in_flight=4)
    mail.client._slots = threading.BoundedSemaphore(8)  # as if there were no limit
    mail.client.max_wait = 0  # so the refusal surfaces
    results: list[str] = []

    def hit() -> None:
        try:
            mail.client.get("me")
            results.append("ok")
        except RateLimited as error:
            results.append(str(error))

    threads = [threading.Thread(target=hit) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count("ok") >= 4
    assert any("ApplicationThrottled" in r for r in results)


def test_a_revoked_grant_is_auth_expired_with_a_readable_reason(ms: MicrosoftEmulator) -> None:
    ms.add_user("ana@acme.example")
    ms.deliver("ana@acme.example", sender="joe@northwind.example")
    mail = mail_of(ms, "ana@acme.example")
    ms.revoke("ana@acme.example", 50173)
    with pytest.raises(AuthExpired) as raised:
        drain(mail)
    assert "password was changed or reset" in str(raised.value)
    assert "AADSTS50173" in str(raised.value)


def test_refusals_in_words() -> None:
    def message(**result: Any) -> str:
        return str(refusal(result))

    assert "disabled" in message(error="invalid_grant", error_codes=[50057])
    assert "expired after a long time" in message(
        error="invalid_grant", error_description="AADSTS70008: expired"
    )
    assert "consent" in message(error="invalid_grant", error_codes=[65001])
    assert "sign in again" in message(error="interaction_required", error_codes=[50076])
    instance = refusal({"error": "invalid_client", "error_codes": [7000215]})
    assert not isinstance(instance, AuthExpired) and "administrator" in str(instance)
    assert not isinstance(refusal({"error": "temporarily_unavailable"}), AuthExpired)
    assert isinstance(refusal({"error": "invalid_grant"}), AuthExpired)


def test_a_rotated_refresh_token_comes_back_as_a_fresh_secret(ms: MicrosoftEmulator) -> None:
    ms.add_user("ana@acme.example")
    ms.deliver("ana@acme.example", sender="joe@northwind.example")
    secret = consent(ms, "ana@acme.example")
    mail, _ = connect(app_of(ms), secret)
    drain(mail)
    assert mail.fresh_secret() is None  # the cached access token was enough
    ms.expire_access_tokens()  # 401 -> one forced refresh -> a new refresh token
    drain(mail)
    fresh = mail.fresh_secret()
    assert fresh is not None and fresh["token_cache"] != secret["token_cache"]
    assert mail.fresh_secret() is None  # handed out once
    assert ms.grants[-1][0] == "refresh_token"
    # the old cache's refresh token was spent by the rotation: only the fresh cache works
    ms.expire_access_tokens()
    stale, _ = connect(app_of(ms), secret)
    with pytest.raises(AuthExpired):
        drain(stale)
    ms.expire_access_tokens()
    current, _ = connect(app_of(ms), {**secret, **fresh})
    drain(current)


def test_links_to_another_host_are_refused(ms: MicrosoftEmulator) -> None:
    ms.add_user("ana@acme.example")
    mail = mail_of(ms, "ana@acme.example")
    with pytest.raises(ConnectorError, match="another host"):
        mail.client.get("https://evil.example/v1.0/me")


def test_push_subscriptions_are_created_kept_in_the_cursor_and_renewed(
    ms: MicrosoftEmulator,
) -> None:
    ms.add_user("ana@acme.example")
    target = PushTarget("https://tally.example/api/v1/push/microsoft", "7.abc")
    mail = mail_of(ms, "ana@acme.example", push_target=target)
    _, cursor = drain(mail)
    assert cursor is not None
    made = list(ms.subscriptions.values())
    assert sorted(s["resource"] for s in made) == [
        "me/mailFolders('inbox')/messages",
        "me/mailFolders('sentitems')/messages",
    ]
    assert {s["clientState"] for s in made} == {"7.abc"}
    _, same = drain(mail, cursor)
    assert same is not None
    assert json.loads(same)["push"] == json.loads(cursor)["push"]  # nothing to renew yet
    ms.subscriptions.clear()  # Graph removed them (subscriptionRemoved)
    state = json.loads(cursor)
    for entry in state["push"].values():
        entry["renewed"] = (NOW - timedelta(hours=2)).isoformat()
    _, renewed = drain(mail, json.dumps(state))
    assert len(ms.subscriptions) == 2
    assert renewed is not None and json.loads(renewed)["push"] != state["push"]


def test_subscriptions_made_on_a_rotated_client_state_are_made_again(ms: MicrosoftEmulator) -> None:
    ms.add_user("ana@acme.example")
    url = "https://tally.example/api/v1/push/microsoft"
    mail = mail_of(ms, "ana@acme.example", push_target=PushTarget(url, "7.old"))
    _, cursor = drain(mail)
    old_ids = set(ms.subscriptions)
    rotated = mail_of(ms, "ana@acme.example", push_target=PushTarget(url, "7.new"))
    _, cursor = drain(rotated, cursor)
    # a PATCH would keep the old clientState, which no longer verifies: made again instead
    assert {s["clientState"] for s in ms.subscriptions.values()} == {"7.new"}
    assert len(ms.subscriptions) == 2 and not old_ids & set(ms.subscriptions)
    _, again = drain(rotated, cursor)
    assert again is not None and json.loads(again)["push"] == json.loads(cursor or "")["push"]
