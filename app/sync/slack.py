"""Slack from settings: the OAuth client, a connection's connector, and its chat pages'
ingest (one channel's page per call of app.chat.service.ingest, in the runner's transaction
with the cursor that covers it)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from app.activities.ingest import IngestResult
from app.chat import service as chat
from app.config import settings
from app.models import Connection
from connectors.base import AuthExpired, Connector
from connectors.slack import (
    ChatPage,
    Limits,
    SlackApp,
    SlackConnector,
    SlackOAuth,
)

__all__ = ["ChatPage", "ingest_chat_page", "slack_connectors", "slack_oauth"]


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


def ingest_chat_page(session: Session, connection: Connection, page: ChatPage) -> IngestResult:
    """Store one channel's page. The connection's counts grow like a mailbox's: seen, and
    imported (new to Tally); a message delivered again (a replayed page) is seen, not
    imported. The runner's metrics read the result as a mail page's."""
    result = chat.ingest(
        session,
        connection.org_id,
        source=page.source,
        channel_id=page.channel_id,
        messages=page.chat,
        participants=page.participants,
        connection_id=connection.id,
        name=page.channel_name,
        kind=page.channel_kind,
        synced_to=page.synced_to,
    )
    connection.messages_seen += len(page.chat)
    connection.messages_imported += result.stored
    connection.activities_created += result.activities_added
    return IngestResult(
        seen=len(page.chat), imported=result.stored, activities_created=result.activities_added
    )
