"""The provider table (app/providers.py) is the one place that says what a provider is."""

from __future__ import annotations

from typing import get_args

import pytest

from app import providers
from app.connections.schemas import Provider


def test_the_api_names_exactly_the_providers_of_the_table() -> None:
    assert set(get_args(Provider)) == set(providers.PROVIDERS)


@pytest.mark.parametrize(
    ("name", "scheduled", "consent", "secrets", "refusal"),
    [
        ("imap", True, None, ("password",), None),
        ("caldav", True, None, ("password",), None),
        ("gmail", True, "google", (), "oauth/google/start"),
        ("google_calendar", True, "google", (), "oauth/google/start"),
        ("microsoft", True, "microsoft", (), "oauth/microsoft/start"),
        ("slack", True, "slack", ("bot_token",), None),  # installed, or a bot token pasted
        ("import", False, None, (), "tally import"),
    ],
)
def test_each_provider(
    name: str, scheduled: bool, consent: str | None, secrets: tuple[str, ...], refusal: str | None
) -> None:
    assert (name in providers.SCHEDULED) is scheduled
    assert providers.PROVIDERS[name].consent == consent
    assert providers.secret_fields(name) == secrets
    message = providers.not_made_by_the_api(name)
    assert (message is None) if refusal is None else (refusal in (message or ""))


def test_a_slack_token_goes_only_where_the_instance_says() -> None:
    """No connection setting moves it: the Web API address is the instance's (settings)."""
    assert providers.endpoint_fields("slack") == ()
    assert not set(providers.PROVIDERS["slack"].secret_fields) - {"bot_token"}


def test_a_consent_creates_all_of_its_providers() -> None:
    assert providers.CONSENTS == {
        "google": ("gmail", "google_calendar"),
        "microsoft": ("microsoft",),
        "slack": ("slack",),
    }


@pytest.mark.parametrize(
    ("name", "endpoint"),
    [
        ("imap", ("host", "port", "security", "username")),
        ("caldav", ("url", "username")),
        ("gmail", ()),
        ("microsoft", ()),
    ],
)
def test_the_settings_a_stored_secret_is_bound_to(name: str, endpoint: tuple[str, ...]) -> None:
    assert providers.endpoint_fields(name) == endpoint
    # a provider whose secret can be sent somewhere else says where: every one with secrets
    assert bool(endpoint) == bool(providers.secret_fields(name))


def test_the_table_says_which_providers_reach_further_back_as_their_connectors_do() -> None:
    """POST /connections/{id}/backfill trusts the table; the connectors are what fetch."""
    from connectors.base import widens_history
    from connectors.calendar.caldav import CalDavConnector
    from connectors.google import GmailConnector, GoogleCalendarConnector
    from connectors.imap import ImapConnector
    from connectors.microsoft import GraphCalendarConnector, GraphMailConnector
    from connectors.slack import SlackConnector

    made: dict[str, tuple[type, ...]] = {  # what app/sync/registry.py builds for each
        "imap": (ImapConnector,),
        "caldav": (CalDavConnector,),
        "gmail": (GmailConnector,),
        "google_calendar": (GoogleCalendarConnector,),
        "microsoft": (GraphMailConnector, GraphCalendarConnector),
        "slack": (SlackConnector,),
    }
    assert set(made) == providers.SCHEDULED
    for name, classes in made.items():
        assert providers.widens(name) is all(widens_history(c) for c in classes), name
    assert providers.widens("import") is None
