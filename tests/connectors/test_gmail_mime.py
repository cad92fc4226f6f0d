"""Gmail counts exactly (semantics §2): the MIME tree tells calendar traffic, whoever sent it.

By default Tally asks for gmail.readonly and reads each message with format=full and a `fields`
mask: headers and the MIME tree, no body, in the one request per message it already made.
gmail.metadata (no MIME parts) is an explicit option whose deviation the consent records.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests

from connectors.base import RemoteMessage
from connectors.google import App, Endpoints, GmailConnector, GoogleOAuth, Quota
from connectors.google.api import build, credentials
from connectors.google.gmail_message import FULL_FIELDS, to_message
from connectors.google.oauth import GMAIL_METADATA, GMAIL_READONLY, gmail_metadata_only
from connectors.google.pacing import Pacer
from connectors.oauth import Consent
from tests.connectors.pulling import pull_pages
from tests.emulators.google import (
    CALENDAR_EVENTS,
    GMAIL_SETTINGS,
    IDENTITY,
    GoogleEmulator,
    enron_messages,
)

NOW = datetime.now(UTC).replace(microsecond=0)
SINCE = NOW - timedelta(days=365)
ANA = "ana@acme.example"
FAST = Quota(units_per_window=10_000_000, window_seconds=60.0, max_wait_seconds=5.0)
DATA = Path(__file__).resolve().parent.parent / "data"
# a real invitation body from a third calendar system (BlackBerry, METHOD:REQUEST)
BLACKBERRY_ICS = (DATA / "ics" / "icalendar" / "property_params.ics").read_text()
METADATA_GRANT = [*IDENTITY, GMAIL_METADATA, GMAIL_SETTINGS, CALENDAR_EVENTS]
REDIRECT = "http://tally.example/api/v1/connections/oauth/google/callback"


def invitation(
    subject: str, *, sender: str = "Kim <kim@globex.example>", method: str = "REQUEST"
) -> bytes:
    """An invitation as calendar systems other than Google and Exchange send it: a plain
    multipart/mixed message with a text/calendar part, no calendar-notification Sender, no
    Content-Class."""
    ics = BLACKBERRY_ICS.replace("METHOD:REQUEST", f"METHOD:{method}").replace("\n", "\r\n")
    return (
        f"From: {sender}\r\nTo: Ana <{ANA}>\r\nSubject: {subject}\r\n"
        f"Date: {format_datetime(NOW)}\r\n"
        f"Message-ID: <{subject.replace(' ', '.')}@globex.example>\r\n"
        'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="outer"\r\n\r\n'
        '--outer\r\nContent-Type: multipart/alternative; boundary="inner"\r\n\r\n'
        "--inner\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nYou are invited.\r\n"
        f"--inner\r\nContent-Type: text/calendar; charset=utf-8; method={method}\r\n\r\n"
        f"{ics}\r\n--inner--\r\n"
        '--outer\r\nContent-Type: application/ics; name="invite.ics"\r\n'
        'Content-Disposition: attachment; filename="invite.ics"\r\n\r\n'
        f"{ics}\r\n--outer--\r\n"
    ).encode()


def plain(subject: str, *, sender: str = "Joe <joe@northwind.example>") -> bytes:
    return (
        f"From: {sender}\r\nTo: {ANA}\r\nSubject: {subject}\r\nDate: {format_datetime(NOW)}\r\n"
        f"Message-ID: <{subject.replace(' ', '.')}@northwind.example>\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\nLet's talk about the offer.\r\n"
    ).encode()


def forwarded_invitation(subject: str) -> bytes:
    """Someone forwards an invitation as an attachment: it is not their invitation."""
    inner = invitation("Original invite").decode()
    return (
        f"From: Joe <joe@northwind.example>\r\nTo: {ANA}\r\nSubject: {subject}\r\n"
        f"Date: {format_datetime(NOW)}\r\nMessage-ID: <fwd@northwind.example>\r\n"
        'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="f"\r\n\r\n'
        "--f\r\nContent-Type: text/plain\r\n\r\nSee below.\r\n"
        f"--f\r\nContent-Type: message/rfc822\r\n\r\n{inner}\r\n--f--\r\n"
    ).encode()


@pytest.fixture
def google() -> Iterator[GoogleEmulator]:
    with GoogleEmulator() as emulator:
        yield emulator


def connector(google: GoogleEmulator, token: str, **kwargs: object) -> GmailConnector:
    return GmailConnector(
        account=ANA,
        refresh_token=token,
        app=App(google.client_id, google.client_secret),
        endpoints=Endpoints(api_url=google.url, token_uri=google.url + "token"),
        quota=FAST,
        pacer=Pacer(FAST),
        **kwargs,  # type: ignore[arg-type]
    )


def messages(gmail: GmailConnector) -> list[RemoteMessage]:
    pages, _ = pull_pages(gmail, None, since=SINCE)
    return [m for page in pages for m in page.messages]


def pulled(gmail: GmailConnector) -> dict[str, RemoteMessage]:
    return {m.subject: m for m in messages(gmail)}


def test_an_invitation_from_a_third_calendar_system_is_calendar_traffic(
    google: GoogleEmulator,
) -> None:
    token = google.grant(ANA)  # what Tally asks for by default: gmail.readonly
    google.deliver_raw(ANA, invitation("Demo with Globex"))
    google.deliver_raw(ANA, invitation("Demo moved", method="CANCEL"))
    google.deliver_raw(ANA, plain("Offer"))
    google.deliver_raw(ANA, forwarded_invitation("Fwd: Original invite"))
    found = pulled(connector(google, token))
    assert {s: m.calendar_method for s, m in found.items()} == {
        "Demo with Globex": "REQUEST",
        "Demo moved": "CANCEL",
        "Offer": None,
        "Fwd: Original invite": None,  # an attached message is not entered (as IMAP)
    }
    assert found["Demo with Globex"].content_type == "multipart/mixed"
    assert all(m.body is None for m in found.values())
    # one messages.get per message, and not one byte of any body crossed the wire
    assert google.stats.by_method["messages.get"] == 4
    assert google.stats.body_bytes == 0


def test_body_data_comes_only_when_the_mask_names_it(google: GoogleEmulator) -> None:
    """The emulator's partial responses, through the real client library."""
    endpoints = Endpoints(api_url=google.url, token_uri=google.url + "token")
    app = App(google.client_id, google.client_secret)
    service = build("gmail.v1", credentials(google.grant(ANA), app, endpoints), endpoints, 10.0)
    mid = google.deliver_raw(ANA, plain("Offer"))
    get = service.users().messages().get
    whole = get(userId="me", id=mid, format="full").execute()
    assert whole["payload"]["body"]["data"] and whole["snippet"] is not None
    masked = get(userId="me", id=mid, format="full", fields=FULL_FIELDS).execute()
    assert set(masked) == {"id", "labelIds", "internalDate", "payload"}
    assert set(masked["payload"]) == {"mimeType", "headers"}


def test_the_tree_costs_no_request_more_than_the_headers(google: GoogleEmulator) -> None:
    for number, raw in enumerate(enron_messages(120)):
        google.deliver_raw(ANA, raw, when=NOW - timedelta(minutes=number))
    exact = messages(connector(google, google.grant(ANA)))
    exact_requests, exact_calls = google.stats.http_requests, google.stats.calls
    google.stats.http_requests = google.stats.calls = 0
    metadata = messages(connector(google, google.grant(ANA, METADATA_GRANT), metadata_only=True))
    # the same requests, the same calls: the tree rides in the request metadata already made
    assert (exact_requests, exact_calls) == (google.stats.http_requests, google.stats.calls)
    assert google.stats.body_bytes == 0
    # and the same messages: headers read from format=full are those format=metadata gives
    assert len(exact) == 120
    assert exact == metadata


def test_metadata_only_is_explicit_and_counts_such_invitations_as_email(
    google: GoogleEmulator,
) -> None:
    token = google.grant(ANA, METADATA_GRANT)
    google.deliver_raw(ANA, invitation("Demo with Globex"))
    google.deliver_raw(
        ANA,
        invitation("Invitation: Review", sender="Ana <ana@acme.example>").replace(
            b"From:", b"Sender: Google Calendar <calendar-notification@google.com>\r\nFrom:", 1
        ),
    )
    found = pulled(connector(google, token, metadata_only=True))
    # gmail.metadata shows no MIME parts: only Google's and Exchange's headers tell
    assert found["Demo with Globex"].calendar_method is None
    assert found["Invitation: Review"].calendar_method == "REQUEST"


def test_the_headers_rule_is_only_for_metadata() -> None:
    """Exact mode follows the spec alone: a Google Calendar Sender without a text/calendar part
    is an email there (semantics §2 looks at the part, not the sender)."""
    data = {
        "id": "m1",
        "labelIds": ["INBOX"],
        "internalDate": "1715680800000",
        "payload": {
            "mimeType": "text/plain",
            "headers": [
                {"name": "From", "value": "Ana <ana@acme.example>"},
                {"name": "Sender", "value": "calendar-notification@google.com"},
                {"name": "Subject", "value": "Invitation: Demo"},
            ],
        },
    }
    exact, narrow = to_message(data), to_message(data, metadata_only=True)
    assert exact is not None and narrow is not None
    assert (exact.calendar_method, narrow.calendar_method) == (None, "REQUEST")


# -- the consent --------------------------------------------------------------------------------


@pytest.fixture
def insecure_transport(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OAUTHLIB_INSECURE_TRANSPORT", "1")  # the emulator speaks plain http


def consent(google: GoogleEmulator, **options: bool) -> Consent:
    oauth = GoogleOAuth(
        App(google.client_id, google.client_secret),
        Endpoints(
            api_url=google.url,
            token_uri=google.url + "token",
            auth_uri=google.url + "o/oauth2/auth",
        ),
        **options,
    )
    started = oauth.start(REDIRECT, login_hint=ANA)
    answer = requests.get(started.authorization_url, allow_redirects=False, timeout=10)
    params = dict(parse_qsl(urlsplit(answer.headers["Location"]).query))
    done = oauth.finish(started.flow, params, REDIRECT)
    assert done.providers == ("gmail", "google_calendar")
    return done


def test_the_consent_asks_for_readonly_and_records_no_deviation(
    google: GoogleEmulator, insecure_transport: None
) -> None:
    config = consent(google).config
    scopes = config["scopes"]
    assert isinstance(scopes, list) and GMAIL_READONLY in scopes and GMAIL_METADATA not in scopes
    assert not config.get("deviations")
    assert not gmail_metadata_only(scopes)


def test_a_metadata_only_consent_says_what_counts_differently(
    google: GoogleEmulator, insecure_transport: None
) -> None:
    config = consent(google, metadata_only=True).config
    scopes = config["scopes"]
    assert isinstance(scopes, list) and GMAIL_METADATA in scopes and GMAIL_READONLY not in scopes
    assert gmail_metadata_only(scopes)
    deviations = config["deviations"]
    assert isinstance(deviations, list) and len(deviations) == 1
    sentence = deviations[0]
    assert "invitation" in sentence.lower() and "count as emails" in sentence
    assert "Google" in sentence and "Exchange" in sentence and "gmail.metadata" in sentence


def test_reconnecting_a_metadata_connection_gives_exact_counting(
    google: GoogleEmulator, insecure_transport: None
) -> None:
    """Google holds a token to gmail.metadata's limits whenever that scope is in it, even beside
    gmail.readonly; incremental authorization would carry it over from the old consent."""
    consent(google, metadata_only=True)
    again = consent(google)
    config, scopes = again.config, again.config["scopes"]
    assert isinstance(scopes, list) and GMAIL_METADATA not in scopes
    assert not gmail_metadata_only(scopes) and not config.get("deviations")
    google.deliver_raw(ANA, invitation("Demo with Globex"))
    token = str(again.secret["refresh_token"])
    assert pulled(connector(google, token))["Demo with Globex"].calendar_method == "REQUEST"
