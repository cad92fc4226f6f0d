"""SlackConnector and SlackOAuth, through the real slack_sdk, against the local emulator.

Time is scaled: Slack's one-minute rate-limit window is WINDOW seconds on both sides, so
the emulator refuses what Slack would and the connector's pacing is what it is in
production, a hundred times faster.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from connectors.base import AuthExpired, RateLimited
from connectors.chat import ChatMessage
from connectors.slack import ChatPage, Limits, SlackApp, SlackConnector, SlackOAuth
from connectors.slack.oauth import BOT_SCOPES
from tests.emulators.slack import SlackEmulator

WINDOW = 0.6
NOW = time.time()
SINCE = datetime.now(UTC) - timedelta(days=90)
REDIRECT = "http://localhost:8000/api/v1/connections/oauth/slack/callback"


@pytest.fixture
def slack() -> Iterator[SlackEmulator]:
    emulator = SlackEmulator(window_seconds=WINDOW).start()
    emulator.add_user("UANA", "Ana@Acme.example")
    emulator.add_user("UCARL", "carl@acme.example")
    emulator.add_user("UBOB", "bob@client.example", team_id="TCLIENT")
    emulator.add_user("UHIDDEN", "eve@other.example", team_id="TOTHER", email_hidden=True)
    emulator.add_user("UGUEST", "gus@guest.example", guest=True)
    yield emulator
    emulator.stop()


def connector(slack: SlackEmulator, **options: object) -> SlackConnector:
    limits = options.pop("limits", None) or Limits(window_seconds=WINDOW, max_wait_seconds=5)
    return SlackConnector(slack.bot_token, base_url=slack.url, limits=limits, **options)  # type: ignore[arg-type]


def drain(c: SlackConnector, cursor: str | None = None) -> tuple[list[ChatPage], str | None]:
    pages = []
    for page in c.pull(cursor, since=SINCE):
        assert isinstance(page, ChatPage)
        pages.append(page)
        cursor = page.cursor or cursor
    return pages, cursor


def ids(pages: list[ChatPage]) -> Counter[tuple[str, str]]:
    return Counter((p.channel_id, m.id) for p in pages for m in p.chat)


def shared_channel(slack: SlackEmulator, channel: str = "C1", count: int = 10) -> list[str]:
    slack.add_channel(channel, "public", ["UBOT", "UANA", "UBOB"], name="acme-client", ext=True)
    return [
        slack.post(channel, "UANA" if i % 3 else "UBOB", NOW - 86400 + i * 7) for i in range(count)
    ]


def test_a_backfill_of_thousands_reads_every_outside_conversation_once(
    slack: SlackEmulator,
) -> None:
    posted = {("C1", ts) for ts in shared_channel(slack, "C1", 1500)}
    posted |= {("C2", ts) for ts in shared_channel(slack, "C2", 900)}
    # a thread: its replies are not in the history, only their parent
    parent = slack.post("C1", "UANA", NOW - 90000)
    replies = [slack.post("C1", "UBOB", NOW - 89000 + i, thread_ts=parent) for i in range(3)]
    posted |= {("C1", parent), *(("C1", r) for r in replies)}
    # no human speaks in these: they are never handed out
    slack.post("C1", None, NOW - 500, subtype="bot_message")
    slack.post("C1", "UCARL", NOW - 400, subtype="channel_join")
    # internal only: never read
    slack.add_channel("C3", "public", ["UBOT", "UANA", "UCARL"], name="sales")
    slack.post("C3", "UANA", NOW - 100)
    # a shared channel the app was not invited to: cannot be read
    slack.add_channel("C4", "public", ["UANA", "UBOB"], name="elsewhere", ext=True)
    slack.post("C4", "UANA", NOW - 100)
    # DMs: with someone of another organization (read), with a colleague (not)
    slack.add_channel("D1", "im", ["UBOT", "UBOB"])
    posted.add(("D1", slack.post("D1", "UBOB", NOW - 50)))
    slack.add_channel("D2", "im", ["UBOT", "UCARL"])
    slack.post("D2", "UCARL", NOW - 50)
    # group DMs: with a guest (read), only colleagues (not)
    slack.add_channel("G1", "mpim", ["UBOT", "UANA", "UGUEST"])
    posted.add(("G1", slack.post("G1", "UGUEST", NOW - 40)))
    slack.add_channel("G2", "mpim", ["UBOT", "UANA", "UCARL"])
    slack.post("G2", "UANA", NOW - 40)

    c = connector(slack)
    pages, _ = drain(c)

    assert ids(pages) == Counter(posted)  # each exactly once
    assert slack.calls["conversations.history"] >= 2400 // 200
    assert all(len(p.chat) <= 200 + 3 for p in pages)
    by_id = {m.id: m for p in pages for m in p.chat}
    assert by_id[parent].sender == "ana@acme.example"  # lower-cased
    assert {by_id[r].sender for r in replies} == {"bob@client.example"}
    assert by_id[parent].text_length == len("hello")
    assert not hasattr(by_id[parent], "text")  # the text itself is never carried
    # each channel's last page says it is read to the end, with its name and kind
    done = {p.channel_id: p for p in pages if p.synced_to is not None}
    assert set(done) == {"C1", "C2", "D1", "G1"}
    assert all(p.synced_to and p.synced_to.timestamp() >= NOW for p in done.values())
    assert (done["C1"].channel_name, done["C1"].channel_kind) == ("acme-client", "public_channel")
    assert (done["D1"].channel_name, done["D1"].channel_kind) == ("bob@client.example", "im")
    assert done["G1"].channel_kind == "mpim"
    assert all(p.synced_to is None for p in pages if p.channel_id == "C1" and p is not done["C1"])
    assert slack.limited.total() == 0  # the pacing kept inside every tier


def test_senders_slack_does_not_show_map_to_no_address(slack: SlackEmulator) -> None:
    shared_channel(slack, "C1", 0)
    slack.channels["C1"].members.append("UHIDDEN")
    hidden = slack.post("C1", "UHIDDEN", NOW - 30)
    gone = slack.post("C1", "UNOBODY", NOW - 20)
    pages, _ = drain(connector(slack))
    senders = {m.id: m.sender for p in pages for m in p.chat}
    assert senders == {hidden: None, gone: None}


def test_an_incremental_sync_reads_only_what_is_new(slack: SlackEmulator) -> None:
    first = shared_channel(slack, "C1", 300)
    parent = first[-1]
    slack.post("C1", "UBOB", NOW - 86400 + 2200, thread_ts=parent)
    c = connector(slack)
    _, cursor = drain(c)
    before = slack.calls.copy()

    new = [slack.post("C1", "UBOB", NOW - 10 + i) for i in range(5)]
    late_reply = slack.post("C1", "UANA", NOW - 5, thread_ts=parent)  # an older thread
    pages, cursor = drain(c, cursor)
    assert ids(pages) == Counter(("C1", ts) for ts in [*new, late_reply])
    spent = slack.calls - before
    assert spent["conversations.history"] == 1 and spent["conversations.replies"] == 1

    again, _ = drain(c, cursor)  # nothing new: nothing handed out
    assert ids(again) == Counter()


def test_a_crash_between_pages_loses_and_doubles_nothing(slack: SlackEmulator) -> None:
    posted = Counter(("C1", ts) for ts in shared_channel(slack, "C1", 1000))
    seen: Counter[tuple[str, str]] = Counter()
    cursor = None
    for page in connector(slack).pull(None, since=SINCE):  # two pages stored, then a crash
        assert isinstance(page, ChatPage)
        seen += ids([page])
        cursor = page.cursor
        if len(seen) >= 400:
            break
    assert cursor is not None and len(seen) == 400
    later = slack.post("C1", "UBOB", time.time())  # Slack moves on meanwhile
    rest, cursor = drain(connector(slack), cursor)
    assert seen + ids(rest) == posted  # the interrupted window, finished
    newer, _ = drain(connector(slack), cursor)
    assert ids(newer) == Counter({("C1", later): 1})  # and the next run


def test_a_short_retry_after_is_waited_out_mid_backfill(slack: SlackEmulator) -> None:
    posted = Counter(("C1", ts) for ts in shared_channel(slack, "C1", 700))
    slack.force_ratelimit("conversations.history", 1, times=1)
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        time.sleep(seconds)

    c = connector(slack, sleep=sleep)
    pages, _ = drain(c)
    assert ids(pages) == posted
    assert slack.limited["conversations.history"] == 1 and 1.0 in slept


def test_a_long_retry_after_ends_the_run_and_the_next_one_goes_on(slack: SlackEmulator) -> None:
    posted = Counter(("C1", ts) for ts in shared_channel(slack, "C1", 700))
    c = connector(slack)
    pages: list[ChatPage] = []
    cursor = None
    slack.force_ratelimit("conversations.history", 120)
    with pytest.raises(RateLimited) as raised:
        for page in c.pull(None, since=SINCE):
            assert isinstance(page, ChatPage)
            pages.append(page)
            cursor = page.cursor
            if len(pages) == 2:  # mid-backfill
                slack.force_ratelimit("conversations.history", 120)
    assert raised.value.retry_after == 120
    rest, _ = drain(c, cursor)
    assert ids(pages) + ids(rest) == posted


def test_slack_pacing_holds_a_tier_without_meeting_a_429(slack: SlackEmulator) -> None:
    slack.per_window[3] = 5  # a stricter workspace: 5 history calls per window
    posted = Counter(("C1", ts) for ts in shared_channel(slack, "C1", 1400))
    c = connector(slack, limits=Limits(window_seconds=WINDOW, history_per_window=5))
    started = time.monotonic()
    pages, _ = drain(c)
    assert ids(pages) == posted and slack.limited.total() == 0
    assert time.monotonic() - started >= WINDOW * (7 - 1) / 5  # 7 pages at 5 a window


@pytest.mark.parametrize("error", ["token_revoked", "invalid_auth", "account_inactive"])
def test_a_revoked_token_is_auth_expired(slack: SlackEmulator, error: str) -> None:
    shared_channel(slack, "C1", 3)
    slack.revoke(slack.bot_token, error)
    c = connector(slack)
    with pytest.raises(AuthExpired, match=error):
        c.check()
    with pytest.raises(AuthExpired):
        drain(c)


def test_a_token_without_a_scope_asks_for_a_new_install(slack: SlackEmulator) -> None:
    shared_channel(slack, "C1", 3)
    slack.tokens[slack.bot_token].scopes -= {"channels:history"}
    with pytest.raises(AuthExpired, match="channels:history"):
        drain(connector(slack))


def test_the_installers_token_reads_their_own_dms(slack: SlackEmulator) -> None:
    slack.add_channel("D9", "im", ["UANA", "UBOB"])  # the bot is not in it
    dm = slack.post("D9", "UANA", NOW - 60)
    assert ids(drain(connector(slack))[0]) == Counter()
    user_token = slack.add_token("UANA")
    pages, _ = drain(connector(slack, user_token=user_token))
    assert ids(pages) == Counter({("D9", dm): 1})


def test_the_install_flow_gives_the_tokens_and_the_installers_address(
    slack: SlackEmulator,
) -> None:
    oauth = SlackOAuth(SlackApp(slack.client_id, slack.client_secret, api_url=slack.url))
    started = oauth.start(REDIRECT)
    query = parse_qs(urlsplit(started.authorization_url).query)
    assert query["scope"] == [",".join(BOT_SCOPES)] and query["state"] == [started.state]
    assert query["redirect_uri"] == [REDIRECT]
    code = slack.grant("UANA")
    consent = oauth.finish(started.flow, {"code": code, "state": started.state}, REDIRECT)
    assert consent.account == "ana@acme.example" and consent.providers == ("slack",)
    assert consent.secret["bot_token"] == slack.bot_token
    assert str(consent.secret["user_token"]).startswith("xoxp-")
    assert consent.config["team_id"] == "T0ACME"
    with pytest.raises(AuthExpired):  # a code is used once
        oauth.finish(started.flow, {"code": code, "state": started.state}, REDIRECT)
    with pytest.raises(AuthExpired):
        oauth.finish(started.flow, {"error": "access_denied"}, REDIRECT)


def test_chat_messages_carry_no_text() -> None:
    assert "text" not in {f for f in ChatMessage.__dataclass_fields__}


def test_the_emulator_looks_people_up_by_email_as_slack_does(slack: SlackEmulator) -> None:
    """users.lookupByEmail through slack_sdk: found, or users_not_found when the person's
    organization hides addresses (https://docs.slack.dev/reference/methods/users.lookupByEmail)."""
    client = WebClient(token=slack.bot_token, base_url=slack.url)
    found = client.users_lookupByEmail(email="BOB@client.example")
    assert found["user"]["id"] == "UBOB" and found["user"]["team_id"] == "TCLIENT"
    with pytest.raises(SlackApiError) as refused:
        client.users_lookupByEmail(email="eve@other.example")
    assert refused.value.response["error"] == "users_not_found"
