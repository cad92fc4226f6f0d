"""The OAuth side of the contract: how app/ asks a provider package for a consent.

A provider package (connectors.google, connectors.microsoft) offers an `OAuthClient`. The app
keeps the flow it returns between the two halves (encrypted, used once) and creates the
connections that the finished `Consent` names. Like every connector, an OAuth client never
touches the database and raises only the contract's errors (connectors.base).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True, slots=True)
class Started:
    authorization_url: str  # where the user's browser goes to consent
    state: str  # the `state` parameter the provider will send back to the callback
    flow: dict[str, Any]  # everything the callback needs (PKCE verifier, nonce…): JSON only


@dataclass(frozen=True, slots=True)
class Consent:
    account: str  # the account's primary address, lower-cased
    secret: Mapping[str, Any]  # what the connectors need (refresh token, token cache): encrypted
    providers: tuple[str, ...]  # the connections to create ("gmail", "google_calendar")
    aliases: tuple[str, ...] = ()  # send-as / proxy addresses of the account, lower-cased
    config: Mapping[str, Any] = field(default_factory=dict)  # readable settings to keep


class OAuthClient(Protocol):
    def start(self, redirect_uri: str, *, login_hint: str | None = None) -> Started:
        """Build the consent URL (with state and PKCE)."""
        ...

    def finish(
        self, flow: Mapping[str, Any], params: Mapping[str, str], redirect_uri: str
    ) -> Consent:
        """Exchange the callback's query `params` (code, state, or error) for a consent.
        Raise AuthExpired when the user refused or the code is no good, ConnectorError when
        the provider fails."""
        ...
