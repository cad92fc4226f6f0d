"""Automated mail told by its headers on Microsoft 365: the default (Mail.Read) reads them from
the delta pages, the minimal mode (Mail.ReadBasic) cannot and says so; against the emulator."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import httpx2
import pytest

from connectors.base import AuthExpired, Page, RemoteMessage
from connectors.microsoft import (
    MAIL_READ_BASIC,
    READ_BASIC_DEVIATION,
    MicrosoftApp,
    MicrosoftOAuth,
    connect,
    granted_mail_permission,
)
from connectors.microsoft.headers import read_headers
from connectors.microsoft.mail import GraphMailConnector
from tests.connectors.pulling import pull_pages
from tests.connectors.test_graph_mail import NOW, REDIRECT, SINCE, app_of
from tests.emulators.microsoft import MicrosoftEmulator

ANA = "ana@acme.example"
AUTOMATED = {
    "Digest": {"List-Unsubscribe": "<https://news.northwind.example/u/1>"},
    "Your order shipped": {"Precedence": "bulk"},
    "Automatic reply: Offer": {"Auto-Submitted": "auto-replied"},
    "Release notes": {"List-Id": "<releases.globex.example>"},
}


@pytest.fixture
def ms() -> Iterator[MicrosoftEmulator]:
    emulator = MicrosoftEmulator().start()
    emulator.add_user(ANA)
    yield emulator
    emulator.stop()


def consented(ms: MicrosoftEmulator, app: MicrosoftApp) -> tuple[dict[str, Any], dict[str, Any]]:
    """The secret and config of a consent made through msal against the emulator."""
    client = MicrosoftOAuth(app)
    started = client.start(REDIRECT, login_hint=ANA)
    back = dict(httpx2.URL(ms.consent(started.authorization_url)).params)
    found = client.finish(started.flow, back, REDIRECT)
    return dict(found.secret), dict(found.config)


def mail_of(
    ms: MicrosoftEmulator, app: MicrosoftApp | None = None, **options: Any
) -> GraphMailConnector:
    app = app or app_of(ms)
    secret, config = consented(ms, app)
    permission = granted_mail_permission(config)
    mail, _ = connect(app, secret, account=ANA, mail_permission=permission, **options)
    mail.client._sleep = lambda seconds: None
    return mail


def messages_of(pages: list[Page]) -> dict[str, RemoteMessage]:
    return {m.subject: m for p in pages for m in p.messages}


def deliver_mix(ms: MicrosoftEmulator) -> None:
    for subject, headers in AUTOMATED.items():
        ms.deliver(
            ANA,
            sender="News <hello@news.northwind.example>",
            subject=subject,
            to=[ANA],
            headers=headers,
        )
    ms.deliver(ANA, sender="Joe <joe@northwind.example>", to=[ANA], subject="Question")
    ms.deliver(ANA, "sentitems", sender=ANA, to=["joe@northwind.example"], subject="Answer")


def test_the_headers_that_say_mail_is_automated_come_with_the_delta_pages(
    ms: MicrosoftEmulator,
) -> None:
    deliver_mix(ms)
    mail = mail_of(ms)
    before = ms.graph_requests
    pages, _ = pull_pages(mail, None, since=SINCE)
    found = messages_of(pages)
    assert found["Digest"].headers == {"list-unsubscribe": "<https://news.northwind.example/u/1>"}
    assert found["Your order shipped"].headers == {"precedence": "bulk"}
    assert found["Automatic reply: Offer"].headers == {"auto-submitted": "auto-replied"}
    assert found["Release notes"].headers == {"list-id": "<releases.globex.example>"}
    assert (
        found["Question"].headers == {}
        and found["Question"].content_type == "multipart/alternative"
    )
    assert found["Answer"].headers == {}  # Sent Items: Graph keeps no headers there
    assert ms.graph_requests - before == 2  # one page per folder: no request per message
    assert ms.calls["batch"] == 0 and mail.header_reads == 0


def test_received_mail_without_headers_in_its_page_is_read_in_batches_of_20(
    ms: MicrosoftEmulator,
) -> None:
    for i in range(45):  # put there without transport (an import, an app): no headers
        ms.deliver(
            ANA, sender=f"c{i}@northwind.example", to=[ANA], subject=f"m{i}", transport=False
        )
    ms.deliver(ANA, sender="colleague@acme.example", to=[ANA], subject="internal", transport=False)
    mail = mail_of(ms)
    pages, _ = pull_pages(mail, None, since=SINCE)
    assert len(messages_of(pages)) == 46
    assert ms.calls["batch"] == 3 and ms.inner_requests == 45  # not the internal one
    assert mail.header_reads == 45


def test_a_batch_request_over_the_mailbox_concurrency_is_asked_again(
    ms: MicrosoftEmulator,
) -> None:
    ids = [
        ms.deliver(
            ANA,
            sender="hello@news.northwind.example",
            to=[ANA],
            subject=f"n{i}",
            headers={"List-Id": f"<l{i}.northwind.example>"},
        )
        for i in range(8)
    ]
    mail = mail_of(ms)
    waits: list[float] = []
    mail.client._sleep = waits.append
    ms.user(ANA).in_flight = 2  # two requests of another client are running
    found = read_headers(mail.client, ids)
    ms.user(ANA).in_flight = 0
    # Graph runs 4 at a time, 2 of which the mailbox has left: 4 of 8, then 2 of 4, answer 429
    assert waits == [1.0, 1.0]  # their Retry-After
    assert ms.calls["batch"] == 3
    for i, message_id in enumerate(ids):
        names = {h["name"]: h["value"] for h in found[message_id]}
        assert names["List-Id"] == f"<l{i}.northwind.example>"


def test_the_minimal_permission_reads_no_header_and_says_so(ms: MicrosoftEmulator) -> None:
    deliver_mix(ms)
    app = replace(app_of(ms), mail_permission=MAIL_READ_BASIC)
    asked = httpx2.URL(MicrosoftOAuth(app).start(REDIRECT).authorization_url).params["scope"]
    assert f"{ms.base}/Mail.ReadBasic" in asked.split()
    _, config = consented(ms, app)
    assert config["mail_permission"] == "Mail.ReadBasic"
    assert config["deviations"] == [READ_BASIC_DEVIATION]
    assert "List-Unsubscribe" in READ_BASIC_DEVIATION and "Mail.ReadBasic" in READ_BASIC_DEVIATION
    mail = mail_of(ms, app)
    assert not mail.read_headers
    pages, _ = pull_pages(mail, None, since=SINCE)
    assert all(m.headers == {} for m in messages_of(pages).values())  # the known deviation
    assert ms.calls["batch"] == 0


def test_a_connection_consented_before_keeps_its_permission_until_it_reconnects(
    ms: MicrosoftEmulator,
) -> None:
    ms.deliver(ANA, sender="joe@northwind.example", to=[ANA], subject="Question")
    basic = replace(app_of(ms), mail_permission=MAIL_READ_BASIC)
    secret, _ = consented(ms, basic)
    legacy_config = {"account": ANA}  # made before the consent recorded its permission
    assert granted_mail_permission(legacy_config) == MAIL_READ_BASIC
    ms.expire_access_tokens()
    asking_more, _ = connect(app_of(ms), secret, account=ANA, mail_permission="Mail.Read")
    with pytest.raises(AuthExpired, match="AADSTS65001"):  # never consented to
        pull_pages(asking_more, None, since=SINCE)
    for permission in (granted_mail_permission(legacy_config), None):  # None: the token cache
        kept, _ = connect(app_of(ms), secret, account=ANA, mail_permission=permission)
        assert not kept.read_headers
        pages, _ = pull_pages(kept, None, since=SINCE)
        assert list(messages_of(pages)) == ["Question"]
        secret = {**secret, **(kept.fresh_secret() or {})}  # the rotated refresh token


def test_a_cursor_made_without_headers_starts_its_rounds_again_with_them(
    ms: MicrosoftEmulator,
) -> None:
    ms.deliver(
        ANA,
        sender="hello@news.northwind.example",
        to=[ANA],
        subject="Digest",
        headers={"List-Unsubscribe": "<mailto:u@news.northwind.example>"},
    )
    mail = mail_of(ms)
    _, cursor = pull_pages(mail, None, since=SINCE)
    assert cursor is not None
    state = json.loads(cursor)
    del state["select"]  # as stored before this version: its links ask for no header
    pages, cursor = pull_pages(mail, json.dumps(state), since=SINCE)
    assert messages_of(pages)["Digest"].headers == {
        "list-unsubscribe": "<mailto:u@news.northwind.example>"
    }
    assert cursor is not None and json.loads(cursor)["select"] == "headers"
    again, _ = pull_pages(mail, cursor, since=SINCE)
    assert messages_of(again) == {}
    assert NOW  # the shared clock of the mail tests
