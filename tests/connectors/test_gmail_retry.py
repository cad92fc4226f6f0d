"""Gmail's retry timing: the time its 429 names, and every resend paced, 401 resends included.

Gmail's 429 has no Retry-After header: "User-rate limit exceeded.  Retry after <RFC 3339>" is in
the error message, and it refuses everything before that time. After a 401 on a batch's parts
google-api-python-client refreshes the token and sends those parts again inside
`BatchHttpRequest.execute`, and google-auth's AuthorizedHttp does the same for a single
request: Tally's pacer must see those requests too.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from connectors.base import RateLimited, RemoteMessage
from connectors.google import App, Endpoints, GmailConnector, Quota
from connectors.google.pacing import Pacer
from tests.connectors.pulling import pull_pages
from tests.emulators.google import GoogleEmulator

NOW = datetime.now(UTC).replace(microsecond=0)
SINCE = NOW - timedelta(days=365)
ANA = "ana@acme.example"


@pytest.fixture
def google() -> Iterator[GoogleEmulator]:
    with GoogleEmulator() as emulator:
        yield emulator


def fill(google: GoogleEmulator, count: int) -> None:
    for number in range(count):
        google.deliver(
            ANA,
            {
                "From": f"c{number}@northwind.example",
                "To": ANA,
                "Subject": f"m{number}",
                "Message-ID": f"<m{number}@northwind.example>",
            },
            when=NOW - timedelta(minutes=number),
        )


def connector(google: GoogleEmulator, quota: Quota, pacer: Pacer | None = None) -> GmailConnector:
    return GmailConnector(
        account=ANA,
        refresh_token=google.grant(ANA),
        app=App(google.client_id, google.client_secret),
        endpoints=Endpoints(api_url=google.url, token_uri=google.url + "token"),
        quota=quota,
        pacer=pacer or Pacer(quota),
    )


def read(gmail: GmailConnector) -> list[RemoteMessage]:
    pages, _ = pull_pages(gmail, None, since=SINCE)
    return [m for page in pages for m in page.messages]


def test_a_429_far_off_ends_the_run_with_the_time_gmail_named(google: GoogleEmulator) -> None:
    google.quota_units["gmail"] = 1200  # room for one batch of 50 gets in 30 s
    google.window = 30.0
    google.gmail_penalty = 600.0  # Gmail's times are often many minutes away
    fill(google, 100)
    # Tally believes the quota is larger (another app of the user spends some of it)
    optimistic = Quota(units_per_window=100_000, window_seconds=30.0, max_wait_seconds=5.0)
    gmail = connector(google, optimistic)
    with pytest.raises(RateLimited) as raised:
        read(gmail)
    # the connection waits until the time Gmail named (the window's end plus its penalty) ...
    assert 600 <= raised.value.retry_after <= 640
    # ... and sent nothing before it: the refused parts were not sent again after 5 s
    assert google.stats.early == 0 and gmail.caller.rate_limited == 1


def test_a_429_soon_waits_just_until_the_time_gmail_named(google: GoogleEmulator) -> None:
    google.quota_units["gmail"] = 1100  # one batch of 50 gets per 1 s window
    google.window = 1.0
    google.gmail_penalty = 1.0  # the time named: a second after the window has room
    fill(google, 100)
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        time.sleep(seconds)

    optimistic = Quota(units_per_window=100_000, window_seconds=1.0, max_wait_seconds=10.0)
    gmail = connector(google, optimistic, Pacer(optimistic, sleep=sleep))
    assert len(read(gmail)) == 100
    assert gmail.caller.rate_limited == 1  # refused once, sent again once, at the time named
    assert google.stats.early == 0
    assert waits and max(waits) <= 3.0  # about 2 s: what Gmail named, not a flat 5 s


def test_parts_resent_after_a_401_are_paced(google: GoogleEmulator) -> None:
    # the pacer knows the quota exactly: one batch of 50 gets (1,000 units) per 2 s
    google.quota_units["gmail"] = 1100
    google.window = 2.0
    google.token_latency = 1.0  # the refresh after the 401 takes a second
    fill(google, 100)
    exact = Quota(
        units_per_window=1100,
        window_seconds=2.0,
        max_in_flight=1,
        max_wait_seconds=30.0,
        guard=0.25,  # scaled to a loaded test machine, as in test_gmail.py
    )
    gmail = connector(google, exact)
    # getProfile, history.list and messages.list go through; then the access token dies, so
    # every part of the first batch is answered 401 and the client library sends them again
    google.expire_access(ANA, after_calls=3)
    assert len(read(gmail)) == 100
    assert google.stats.unauthorized == 50
    assert google.stats.rejected == 0  # the resend was booked when it left: no 429 burst
