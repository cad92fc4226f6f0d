"""GmailConnector: the real google-api-python-client against the local Google emulator."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from connectors.base import AuthExpired, Page, RateLimited, RemoteMessage
from connectors.google import App, Endpoints, GmailConnector, Quota
from connectors.google.gmail_message import to_message
from connectors.google.pacing import Pacer
from tests.connectors.pulling import pull_pages
from tests.emulators.google import GoogleEmulator, enron_headers

NOW = datetime.now(UTC).replace(microsecond=0)
SINCE = NOW - timedelta(days=365)
ANA = "ana@acme.example"
FAST = Quota(units_per_window=10_000_000, window_seconds=60.0, max_wait_seconds=5.0)


@pytest.fixture
def google() -> Iterator[GoogleEmulator]:
    with GoogleEmulator() as emulator:
        yield emulator


def connector(
    google: GoogleEmulator, token: str, *, quota: Quota = FAST, **kwargs: object
) -> GmailConnector:
    return GmailConnector(
        account=ANA,
        refresh_token=token,
        app=App(google.client_id, google.client_secret),
        endpoints=Endpoints(api_url=google.url, token_uri=google.url + "token"),
        quota=quota,
        pacer=Pacer(quota),  # a pacer of its own: tests do not share budgets
        **kwargs,  # type: ignore[arg-type]
    )


def pull_all(gmail: GmailConnector, cursor: str | None = None) -> tuple[list[Page], str | None]:
    return pull_pages(gmail, cursor, since=SINCE)


def messages(pages: list[Page]) -> list[RemoteMessage]:
    return [m for page in pages for m in page.messages]


def simple(sender: str, to: str, subject: str, **extra: str) -> dict[str, str]:
    return {
        "From": sender,
        "To": to,
        "Subject": subject,
        "Date": NOW.strftime("%a, %d %b %Y %H:%M:%S +0000"),
        "Message-ID": f"<{subject.replace(' ', '.')}@mail.example>",
        **extra,
    }


def fill(
    google: GoogleEmulator,
    count: int,
    *,
    sender: str = "c@northwind.example",
    subject: str = "m{}",
    step: timedelta = timedelta(minutes=1),
    start: timedelta = timedelta(0),
) -> None:
    """`count` messages to Ana, newest first from `start` ago, one every `step`."""
    for number in range(count):
        when = NOW - start - step * number
        google.deliver(ANA, simple(sender, ANA, subject.format(number)), when=when)


def test_a_backfill_of_thousands_reads_metadata_in_batches_newest_first(
    google: GoogleEmulator,
) -> None:
    token = google.grant(ANA)
    real = itertools.cycle(list(enron_headers(668)))
    total = 3000
    for number in range(total):
        headers = [(k, v) for k, v in next(real) if k.lower() != "message-id"]
        headers.append(("Message-ID", f"<m{number}@enron.example>"))
        labels = ("SENT",) if number % 4 == 0 else ("INBOX", "UNREAD")
        google.deliver(ANA, headers, labels=labels, when=NOW - timedelta(minutes=number))
    # older than the window: the backfill stops before reading all
    old = {"sender": "old@x.example", "subject": "old {}", "step": timedelta(days=1)}
    fill(google, 1000, start=timedelta(days=400), **old)
    gmail = connector(google, token, page_size=500, batch_size=50)
    pages, cursor = pull_all(gmail)
    found = messages(pages)
    assert len(found) == total
    assert len({m.source_id for m in found}) == total
    dates = [m.provider_date for m in found]
    assert dates == sorted(dates, reverse=True)  # type: ignore[type-var]  # newest first
    assert sum(m.folder_role == "sent" for m in found) == total // 4
    assert {m.folder_role for m in found} == {"sent", "inbox"}
    assert all(m.message_id and m.sender and m.subject is not None for m in found)
    state = json.loads(cursor or "")
    assert state["backfill"] is None and int(state["history"]) > 0
    stats = google.stats.by_method
    # it stops with the first batch that reaches past the window
    assert stats["messages.get"] == total + 50
    assert stats["messages.list"] == 7  # of 8 pages of 500 ids
    # 50 gets per HTTP request: far fewer requests than calls
    assert google.stats.http_requests < 100 < google.stats.calls
    assert all("q" not in str(r) for r in stats)  # never a search under the metadata scope


def test_headers_drafts_spam_and_trash(google: GoogleEmulator) -> None:
    token = google.grant(ANA)
    google.deliver(
        ANA,
        simple(
            "=?utf-8?q?Jos=C3=A9_P=C3=A9rez?= <jose@northwind.example>",
            f"Ana <{ANA}>, bob@acme.example",
            "=?utf-8?b?Q2Fmw6k=?=",
            Cc="Kim <kim@globex.example>",
            **{"List-Unsubscribe": "<mailto:u@x>"},
        ),
    )
    google.deliver(ANA, simple(ANA, "x@y.example", "draft"), labels=("DRAFT",))
    google.deliver(ANA, simple("s@spam.example", ANA, "spam"), labels=("SPAM",))
    google.deliver(ANA, simple("t@x.example", ANA, "trash"), labels=("TRASH",))
    google.deliver(ANA, simple(ANA, "x@y.example", "archived"), labels=())
    pages, _ = pull_all(connector(google, token))
    found = {m.subject: m for m in messages(pages)}
    assert set(found) == {"Café", "archived"}
    cafe = found["Café"]
    assert cafe.sender is not None and cafe.sender.name == "José Pérez"
    assert [a.email for a in cafe.to] == [ANA, "bob@acme.example"]
    assert [a.email for a in cafe.cc] == ["kim@globex.example"]
    assert cafe.headers["list-unsubscribe"] == "<mailto:u@x>"
    assert cafe.folder_role == "inbox" and found["archived"].folder_role == "other"
    assert cafe.message_id == "Café@mail.example" or cafe.message_id  # any non-empty id
    assert cafe.body is None  # no body is ever asked for


def test_new_moved_and_deleted_mail_between_syncs(google: GoogleEmulator) -> None:
    token = google.grant(ANA)
    first = google.deliver(ANA, simple("joe@northwind.example", ANA, "first"))
    gmail = connector(google, token)
    pages, cursor = pull_all(gmail)
    assert [m.subject for m in messages(pages)] == ["first"]

    new = google.deliver(ANA, simple("kim@globex.example", ANA, "new"))
    gone = google.deliver(ANA, simple("lou@globex.example", ANA, "gone soon"))
    google.delete(ANA, gone)  # arrived and deleted before the next sync
    spam = google.deliver(ANA, simple("max@globex.example", ANA, "was spam"), labels=("SPAM",))
    google.delete(ANA, first)  # deleting old mail changes nothing we hold
    google.relabel(ANA, spam, add=["INBOX"], remove=["SPAM"])  # "not spam"
    google.relabel(ANA, new, add=["STARRED"])
    pages, cursor = pull_all(gmail, cursor)
    subjects = [m.subject for m in messages(pages)]
    assert sorted(set(subjects)) == ["new", "was spam"]
    assert "gone soon" not in subjects
    # nothing new: one history call, nothing read
    before = google.stats.by_method.get("messages.get", 0)
    pages, cursor = pull_all(gmail, cursor)
    assert messages(pages) == [] and google.stats.by_method["messages.get"] == before
    assert new


def test_mail_arriving_during_the_backfill_comes_through_history(google: GoogleEmulator) -> None:
    token = google.grant(ANA)
    fill(google, 120, subject="old {}", step=timedelta(hours=1), start=timedelta(hours=1))
    gmail = connector(google, token, page_size=50)
    pages = gmail.pull(None, since=SINCE)
    seen: list[RemoteMessage] = []
    cursor = None
    for number, page in enumerate(pages):
        seen += page.messages
        cursor = page.cursor or cursor
        if number == 1:  # mid-backfill, a new message arrives (newer than all listed)
            google.deliver(ANA, simple("kim@globex.example", ANA, "during"))
    assert "during" not in [m.subject for m in seen]
    more, _ = pull_all(gmail, cursor)
    assert [m.subject for m in messages(more)] == ["during"]
    assert len(seen) == 120


def test_an_expired_history_id_relists_only_the_recent_stretch(google: GoogleEmulator) -> None:
    token = google.grant(ANA)
    fill(google, 200, step=timedelta(days=1), start=timedelta(days=30))
    gmail = connector(google, token)
    _, cursor = pull_all(gmail)
    google.deliver(
        ANA, simple("kim@globex.example", ANA, "while away"), when=NOW - timedelta(days=2)
    )
    google.expire_history(ANA)
    google.deliver(ANA, simple("lou@globex.example", ANA, "after"))
    before = google.stats.by_method["messages.get"]
    pages, cursor = pull_all(gmail, cursor)
    subjects = {m.subject for m in messages(pages)}
    assert {"while away", "after"} <= subjects
    assert google.stats.by_method["messages.get"] - before <= 52  # not the 200 old ones again
    state = json.loads(cursor or "")
    assert state.get("relist") is None
    google.deliver(ANA, simple("ned@globex.example", ANA, "later"))
    pages, _ = pull_all(gmail, cursor)
    assert [m.subject for m in messages(pages)] == ["later"]


def test_a_resumed_backfill_continues_from_its_page(google: GoogleEmulator) -> None:
    token = google.grant(ANA)
    fill(google, 250, step=timedelta(hours=1))
    gmail = connector(google, token, page_size=100)
    stream = gmail.pull(None, since=SINCE)
    seen: list[str] = []
    cursor = None
    for page in stream:  # history (empty), then backfill pages of 100
        seen += [m.source_id for m in page.messages]
        cursor = page.cursor or cursor
        if len(seen) == 100:
            break  # "crash" after the first stored page
    rest, _ = pull_all(connector(google, token, page_size=100), cursor)
    seen += [m.source_id for m in messages(rest)]
    assert len(seen) == 250 and len(set(seen)) == 250


def test_a_quota_hit_mid_backfill_waits_and_retries_only_what_failed(
    google: GoogleEmulator,
) -> None:
    google.quota_units["gmail"] = 3000  # units per second window at the emulator
    google.window = 1.0
    token = google.grant(ANA)
    fill(google, 600)
    # Tally believes the quota is larger than it is (another app of the user spends some)
    optimistic = Quota(units_per_window=9000, window_seconds=1.0, max_wait_seconds=30.0)
    gmail = connector(google, token, quota=optimistic)
    pages, _ = pull_all(gmail)
    found = messages(pages)
    assert len(found) == 600 and len({m.source_id for m in found}) == 600
    assert google.stats.rejected > 0 and gmail.caller.rate_limited > 0


def test_a_quota_hit_longer_than_allowed_raises_rate_limited_after_the_stored_pages(
    google: GoogleEmulator,
) -> None:
    google.quota_units["gmail"] = 2500
    google.window = 30.0
    token = google.grant(ANA)
    fill(google, 300)
    optimistic = Quota(units_per_window=100_000, window_seconds=30.0, max_wait_seconds=1.0)
    gmail = connector(google, token, quota=optimistic, page_size=100)
    done: list[Page] = []
    with pytest.raises(RateLimited) as raised:
        for page in gmail.pull(None, since=SINCE):
            done.append(page)
    assert raised.value.retry_after >= 1
    assert 0 < len(messages(done)) < 300


def test_paced_to_the_quota_no_429_at_all(google: GoogleEmulator) -> None:
    google.quota_units["gmail"] = 3000
    google.window = 1.5
    token = google.grant(ANA)
    fill(google, 400)
    # The pacer counts a request when it sends it, the emulator when it arrives. In production
    # the guard (5 % of Google's 60 s window: 3 s) dwarfs that delay; with the window
    # compressed to 1.5 s, 5 % is 75 ms, less than a loaded CI machine may take to deliver a
    # batch, so the guard here is scaled to the machine rather than to the window.
    exact = Quota(units_per_window=3000, window_seconds=1.5, max_wait_seconds=30.0, guard=0.2)
    gmail = connector(google, token, quota=exact)
    pages, _ = pull_all(gmail)
    assert len(messages(pages)) == 400
    assert google.stats.rejected == 0
    assert gmail.pacer.waited > 2.0  # 8,000+ units at 2,000 a second: it had to wait


def test_a_revoked_grant_is_auth_expired_with_a_readable_message(google: GoogleEmulator) -> None:
    token = google.grant(ANA)
    google.revoke(ANA)
    gmail = connector(google, token)
    with pytest.raises(AuthExpired, match="Google access was revoked or expired: reconnect"):
        list(gmail.pull(None, since=SINCE))
    with pytest.raises(AuthExpired):
        gmail.check()


def test_a_grant_revoked_mid_sync_stops_with_auth_expired(google: GoogleEmulator) -> None:
    token = google.grant(ANA)
    fill(google, 120)
    gmail = connector(google, token, page_size=50)
    stream = gmail.pull(None, since=SINCE)
    next(stream)
    next(stream)
    google.revoke(ANA)  # the access token dies with the grant: 401, refresh -> invalid_grant
    with pytest.raises(AuthExpired):
        list(stream)


def test_a_server_error_on_a_part_is_retried(google: GoogleEmulator) -> None:
    token = google.grant(ANA)
    ids = [google.deliver(ANA, simple("c@x.example", ANA, f"m{n}")) for n in range(5)]
    google.failures.append((f"/messages/{ids[2]}", 503))
    pages, _ = pull_all(connector(google, token))
    assert len(messages(pages)) == 5


def test_the_watch_is_set_and_renewed_only_when_due(google: GoogleEmulator) -> None:
    from connectors.google import GmailWatch

    token = google.grant(ANA)
    gmail = connector(google, token, watch=GmailWatch("projects/p/topics/gmail"))
    _, cursor = pull_all(gmail)
    assert len(google.account(ANA).watches) == 1
    assert json.loads(cursor or "")["watch"]["expiration"] > 0
    _, cursor = pull_all(gmail, cursor)
    assert len(google.account(ANA).watches) == 1  # still a week to go
    state = json.loads(cursor or "")
    state["watch"]["expiration"] = int(datetime.now(UTC).timestamp() * 1000) + 3600_000
    pull_all(gmail, json.dumps(state))
    assert len(google.account(ANA).watches) == 2  # expiring within a day: renewed


@pytest.mark.parametrize(
    ("headers", "method"),
    [
        # Google Calendar sends invitations and answers as the organizer, through its Sender
        (
            {
                "From": "Ana Silva <ana@acme.example>",
                "Sender": "Google Calendar <calendar-notification@google.com>",
                "Subject": "Invitation: Demo @ Tue 14 May 2024 10am - 11am (CEST)",
            },
            "REQUEST",
        ),
        (
            {
                "From": "Joe <joe@northwind.example>",
                "Sender": "Google Calendar <calendar-notification@google.com>",
                "Subject": "Accepted: Demo @ Tue 14 May 2024 10am - 11am (CEST)",
            },
            "REPLY",
        ),
        (
            {
                "From": "Google Calendar <calendar-notification@google.com>",
                "Subject": "Canceled event: Demo @ Tue 14 May 2024",
            },
            "CANCEL",
        ),
        # Exchange / Outlook meeting messages
        (
            {
                "From": "Kim <kim@globex.example>",
                "Content-Class": "urn:content-classes:calendarmessage",
                "Subject": "Declined: Pricing review",
            },
            "REPLY",
        ),
        # a bare iMIP message
        ({"From": "kim@globex.example", "Content-Type": "text/calendar; method=CANCEL"}, "CANCEL"),
        # people writing about meetings are email
        ({"From": "Joe <joe@northwind.example>", "Subject": "Invitation: our booth"}, None),
        (
            {
                "From": "Joe <joe@northwind.example>",
                "Subject": "Re: the calendar-notification@google.com mails",
            },
            None,
        ),
    ],
)
def test_calendar_traffic_is_told_from_the_headers_the_metadata_scope_shows(
    headers: dict[str, str], method: str | None
) -> None:
    data = {
        "id": "m1",
        "labelIds": ["INBOX"],
        "internalDate": "1715680800000",
        "payload": {
            "mimeType": "multipart/mixed",
            "headers": [
                {"name": n, "value": v} for n, v in {"To": ANA, "Date": "", **headers}.items()
            ],
        },
    }
    message = to_message(data, metadata_only=True)
    assert message is not None and message.calendar_method == method
