"""Slack from settings: the OAuth client and a connection's connector (its chat pages are
stored by the runner, as every chat connector's)."""

from __future__ import annotations

from typing import Any

from app.config import settings
from app.models import Connection
from connectors.base import AuthExpired, Connector
from connectors.slack import (
    Limits,
    SlackApp,
    SlackConnector,
    SlackOAuth,
)

__all__ = ["slack_connectors", "slack_oauth"]


def limits() -> Limits:
    return Limits(
        window_seconds=settings.slack_window_seconds,
        history_per_window=settings.slack_history_per_minute,
        history_page=settings.slack_history_page,
        max_wait_seconds=settings.slack_max_wait_seconds,
    )


def slack_oauth() -> SlackOAuth | None:
    if not settings.slack_client_id:
        return None
    secret = settings.slack_client_secret
    app = SlackApp(
        client_id=settings.slack_client_id,
        client_secret=secret.get_secret_value() if secret else "",
        api_url=settings.slack_api_url,
        authorize_url=settings.slack_authorize_url,
        user_scopes=settings.slack_user_scopes,
    )
    return SlackOAuth(app, timeout=settings.slack_timeout_seconds)


def slack_connectors(connection: Connection, secret: dict[str, Any]) -> list[Connector]:
    token = str(secret.get("bot_token") or "")
    if not token:
        raise AuthExpired("no Slack bot token is stored: install the app again")
    own_only = bool(connection.config.get("own_only"))
    if own_only and not secret.get("user_token"):
        raise AuthExpired("no Slack user token is stored: install the app again for your DMs")
    return [
        SlackConnector(
            token,
            user_token=str(secret.get("user_token") or "") or None,
            base_url=settings.slack_api_url,
            limits=limits(),
            timeout=settings.slack_timeout_seconds,
            thread_days=settings.slack_thread_days,
            own_only=own_only,
        )
    ]
