"""Google's OAuth consent (google-auth-oauthlib, authorization code + PKCE S256).

Scopes, the narrowest that count as the spec says (docs/google.md says why):

- `gmail.readonly` (the default): headers and the MIME tree, which tells an invitation from
  any calendar system (semantics §2); the connector never asks for a body. `metadata_only`
  asks for `gmail.metadata` instead (headers, no MIME parts): the consent's config then
  records, in `deviations`, what that counts differently. Never both: Google holds a token
  to gmail.metadata's limits whenever that scope is in it (googleapis/google-api-python-client
  #582), so the consent does not ask for previously granted scopes (no
  `include_granted_scopes`): a reconnect after a metadata-only consent gets exact counting.
- `calendar.events.readonly`: events of the user's calendars, and `events.watch`.
- `gmail.settings.basic`, only when aliases are wanted (the default): the one scope that
  allows `users.settings.sendAs.list`, which gives the send-as addresses that decide the
  direction of mail sent from an alias. Without it, aliases are added by hand.
- `openid` and `userinfo.email`: the account's address, whichever scopes the user left ticked
  (Google's granular consent lets them untick Gmail or Calendar: only the connections whose
  scopes were granted are created).

The refresh token is the only secret kept; the client secret stays in settings.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from typing import Any

from google.oauth2.credentials import Credentials
from google_auth_oauthlib.flow import Flow
from oauthlib.oauth2.rfc6749.errors import OAuth2Error

from connectors.base import AuthExpired, ConnectorError
from connectors.google.api import (
    App,
    Caller,
    Endpoints,
    build,
    id_token_claims,
)
from connectors.google.pacing import Pacer, Quota
from connectors.oauth import Consent, Started

GMAIL_READONLY = "https://www.googleapis.com/auth/gmail.readonly"
GMAIL_METADATA = "https://www.googleapis.com/auth/gmail.metadata"
# scopes that allow messages.get format=full (when gmail.metadata is not granted beside them)
FULL_GMAIL = frozenset(
    {GMAIL_READONLY, "https://www.googleapis.com/auth/gmail.modify", "https://mail.google.com/"}
)
GMAIL_SETTINGS = "https://www.googleapis.com/auth/gmail.settings.basic"
CALENDAR = "https://www.googleapis.com/auth/calendar.events.readonly"
IDENTITY = ("openid", "https://www.googleapis.com/auth/userinfo.email")
METADATA_DEVIATION = (
    "Invitations sent by calendar systems other than Google Calendar and Microsoft Exchange "
    "(a text/calendar part inside the message) count as emails, because this connection was "
    "granted only the gmail.metadata permission, which shows a message's headers but not its "
    "MIME parts. Reconnect with full read access to count them as calendar traffic."
)


def gmail_metadata_only(scopes: Iterable[str]) -> bool:
    """Whether a consent's scopes limit Gmail to format=metadata: gmail.metadata is in them
    (Google then applies its limits even beside gmail.readonly), or no scope that reads the
    MIME tree is. A connection's config["scopes"]; none recorded: metadata only, the safe
    reading of a consent made before gmail.readonly was asked for."""
    granted = set(scopes)
    return GMAIL_METADATA in granted or not granted & FULL_GMAIL


class GoogleOAuth:
    """The OAuthClient of Google (connectors.oauth)."""

    def __init__(
        self,
        app: App,
        endpoints: Endpoints | None = None,
        *,
        aliases: bool = True,
        metadata_only: bool = False,
        timeout: float = 30.0,
    ) -> None:
        self.app = app
        self.endpoints = endpoints or Endpoints()
        self.aliases = aliases
        self.timeout = timeout
        self.gmail = GMAIL_METADATA if metadata_only else GMAIL_READONLY
        self.scopes = [*IDENTITY, self.gmail, *([GMAIL_SETTINGS] if aliases else []), CALENDAR]

    def __repr__(self) -> str:
        return f"GoogleOAuth({self.app.client_id!r})"

    def _flow(self, redirect_uri: str, **kwargs: Any) -> Flow:
        config = {
            "web": {
                "client_id": self.app.client_id,
                "client_secret": self.app.client_secret,
                "auth_uri": self.endpoints.auth_uri,
                "token_uri": self.endpoints.token_uri,
            }
        }
        return Flow.from_client_config(
            config, scopes=self.scopes, redirect_uri=redirect_uri, **kwargs
        )

    def start(self, redirect_uri: str, *, login_hint: str | None = None) -> Started:
        flow = self._flow(redirect_uri)
        extra = {"login_hint": login_hint} if login_hint else {}
        url, state = flow.authorization_url(
            access_type="offline",
            prompt="consent",  # a refresh token every time, also on a reconnect
            **extra,
        )
        return Started(url, state, {"state": state, "code_verifier": flow.code_verifier})

    def finish(
        self, flow: Mapping[str, Any], params: Mapping[str, str], redirect_uri: str
    ) -> Consent:
        if params.get("error"):
            raise AuthExpired(f"Google answered {params['error']!r}")
        code = params.get("code")
        if not code:
            raise AuthExpired("Google sent no authorization code")
        session = self._flow(
            redirect_uri, state=flow.get("state"), code_verifier=flow.get("code_verifier")
        )
        token = self._exchange(session, code)
        refresh = token.get("refresh_token")
        if not refresh:
            raise ConnectorError("Google sent no refresh token: remove Tally's access and retry")
        scope = token.get("scope") or params.get("scope") or ""
        granted = set(scope.split() if isinstance(scope, str) else map(str, scope))
        providers = tuple(
            name
            for name, scope in (("gmail", self.gmail), ("google_calendar", CALENDAR))
            if scope in granted
        )
        if not providers:
            raise AuthExpired("neither Gmail nor Calendar access was granted")
        account = self._account(token)
        aliases: tuple[str, ...] = ()
        if GMAIL_SETTINGS in granted and "gmail" in providers:
            aliases = self._aliases(token, account)
        config: dict[str, Any] = {"scopes": sorted(granted)}
        if "gmail" in providers and gmail_metadata_only(granted):
            config["deviations"] = [METADATA_DEVIATION]
        return Consent(
            account=account,
            secret={"refresh_token": refresh},
            providers=providers,
            aliases=aliases,
            config=config,
        )

    def _exchange(self, session: Flow, code: str) -> dict[str, Any]:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return dict(session.fetch_token(code=code))
        except Warning as changed:  # oauthlib: the user unticked scopes (granular consent)
            token = getattr(changed, "token", None)
            if isinstance(token, dict):
                return token
            raise ConnectorError("Google's token answer could not be read") from None
        except OAuth2Error as error:
            if error.error in ("invalid_grant", "access_denied"):
                raise AuthExpired("the authorization code is no good: start again") from None
            raise ConnectorError(f"Google refused the code exchange ({error.error})") from None
        except Exception as error:
            raise ConnectorError(f"Google could not be reached ({type(error).__name__})") from None

    def _account(self, token: Mapping[str, Any]) -> str:
        id_token = token.get("id_token")
        if not isinstance(id_token, str):
            raise ConnectorError("Google sent no ID token (the openid scope is missing)")
        claims = id_token_claims(id_token)
        address = str(claims.get("email") or "").strip().lower()
        if not address:
            raise ConnectorError("Google's ID token has no email address")
        return address

    def _aliases(self, token: Mapping[str, Any], account: str) -> tuple[str, ...]:
        creds = Credentials(token=str(token["access_token"]))
        service = build("gmail.v1", creds, self.endpoints, self.timeout)
        caller = Caller(creds, Pacer(Quota(max_wait_seconds=5.0)), self.timeout)
        try:
            request = service.users().settings().sendAs().list(userId="me")
            answer = caller.call("settings.sendAs.list", request)
        except ConnectorError:
            return ()  # aliases can still be added by hand
        found = []
        for item in answer.get("sendAs") or ():
            address = str(item.get("sendAsEmail") or "").strip().lower()
            status = item.get("verificationStatus", "accepted")
            if address and address != account and status == "accepted" and address not in found:
                found.append(address)
        return tuple(found)
