"""Slack's OAuth v2 install (https://docs.slack.dev/authentication/installing-with-oauth).

An admin (or anyone allowed to install apps in the workspace) installs once: the browser
goes to `oauth/v2/authorize` with the bot scopes (`scope`) and the installer's own scopes
(`user_scope`), comes back with a `code`, and oauth.v2.access exchanges it for a bot token
(`access_token`, `xoxb-`) and, when user scopes were granted, the installer's user token
(`authed_user.access_token`, `xoxp-`). Neither expires unless token rotation is turned on
for the app, which Tally does not ask for. The connection belongs to the installer (the
Tally user who started the consent); activities go to whoever wrote, matched by e-mail
(docs/slack.md). Slack has no PKCE for this flow: the `state`, kept by app/ and used once,
protects the callback.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from connectors.base import AuthExpired, ConnectorError
from connectors.oauth import Consent, Started

# docs/slack.md gives the reason for each
BOT_SCOPES = (
    "channels:read",
    "groups:read",
    "im:read",
    "mpim:read",
    "channels:history",
    "groups:history",
    "im:history",
    "mpim:history",
    "users:read",
    "users:read.email",
)
USER_SCOPES = ("im:read", "mpim:read", "im:history", "mpim:history")


@dataclass(frozen=True, slots=True)
class SlackApp:
    client_id: str
    client_secret: str
    api_url: str | None = None  # Web API base, ending in "/"; None: https://slack.com/api/
    authorize_url: str = "https://slack.com/oauth/v2/authorize"
    user_scopes: bool = True  # ask for the installer's DMs too


class SlackOAuth:
    """The OAuthClient of Slack (connectors.oauth)."""

    def __init__(self, app: SlackApp, *, timeout: int = 30) -> None:
        self.app = app
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"SlackOAuth({self.app.client_id!r})"

    def _client(self, token: str | None = None) -> WebClient:
        return WebClient(
            token=token, base_url=self.app.api_url or WebClient.BASE_URL, timeout=self.timeout
        )

    def start(self, redirect_uri: str, *, login_hint: str | None = None) -> Started:
        state = secrets.token_urlsafe(24)
        query = {
            "client_id": self.app.client_id,
            "scope": ",".join(BOT_SCOPES),
            "user_scope": ",".join(USER_SCOPES) if self.app.user_scopes else "",
            "redirect_uri": redirect_uri,
            "state": state,
        }
        return Started(f"{self.app.authorize_url}?{urlencode(query)}", state, {"state": state})

    def finish(
        self, flow: Mapping[str, Any], params: Mapping[str, str], redirect_uri: str
    ) -> Consent:
        if params.get("error"):
            raise AuthExpired(f"Slack answered {params['error']!r}")
        code = params.get("code")
        if not code:
            raise AuthExpired("Slack sent no authorization code")
        try:
            answer = self._client().oauth_v2_access(
                client_id=self.app.client_id,
                client_secret=self.app.client_secret,
                code=code,
                redirect_uri=redirect_uri,
            )
            token = dict(answer.data) if isinstance(answer.data, dict) else {}
        except SlackApiError as error:
            reason = error.response.get("error")
            if reason in ("invalid_code", "code_already_used", "bad_redirect_uri"):
                raise AuthExpired(f"the authorization code is no good ({reason})") from None
            raise ConnectorError(f"Slack refused the code exchange ({reason})") from None
        except (SlackClientError, OSError) as error:
            raise ConnectorError(f"Slack could not be reached ({type(error).__name__})") from None
        bot = str(token.get("access_token") or "")
        if not bot.startswith("xoxb-"):
            raise ConnectorError("Slack sent no bot token: was the app's bot user removed?")
        installer = token.get("authed_user") or {}
        team = token.get("team") or {}
        secret = {"bot_token": bot}
        if str(installer.get("access_token") or "").startswith("xoxp-"):
            secret["user_token"] = str(installer["access_token"])
        return Consent(
            account=self._installer_address(bot, str(installer.get("id") or "")),
            secret=secret,
            providers=("slack",),
            config={
                "team_id": team.get("id"),
                "team": team.get("name"),
                "scopes": sorted(str(token.get("scope") or "").split(",")),
            },
        )

    def _installer_address(self, bot: str, user_id: str) -> str:
        """The installer's e-mail address in Slack: the account of the connection (and an
        address of the Tally user who installed, as a Google consent's account is)."""
        try:
            user = self._client(bot).users_info(user=user_id).get("user") or {}
        except (SlackApiError, SlackClientError, OSError):
            user = {}
        email = str((user.get("profile") or {}).get("email") or "").strip().lower()
        if "@" not in email:
            raise ConnectorError("Slack does not show the installer's e-mail address")
        return email
