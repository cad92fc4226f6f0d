"""Google Workspace from settings: the OAuth client and a connection's connectors."""

from __future__ import annotations

from typing import Any

from app.config import settings
from app.connections import push_google
from app.models import Connection
from connectors.base import AuthExpired, Connector, ConnectorError
from connectors.google import (
    App,
    CalendarWatch,
    Endpoints,
    GmailConnector,
    GmailWatch,
    GoogleCalendarConnector,
    GoogleOAuth,
    Quota,
    gmail_metadata_only,
)
from connectors.google.pacing import CALENDAR_COSTS, GMAIL_COSTS

PROVIDERS = ("gmail", "google_calendar")


def google_app() -> App | None:
    if not settings.google_client_id:
        return None
    secret = settings.google_client_secret
    return App(settings.google_client_id, secret.get_secret_value() if secret else "")


def endpoints() -> Endpoints:
    return Endpoints(
        api_url=settings.google_api_url or None,
        token_uri=settings.google_token_uri,
        auth_uri=settings.google_auth_uri,
    )


def google_oauth() -> GoogleOAuth | None:
    app = google_app()
    if app is None:
        return None
    return GoogleOAuth(
        app,
        endpoints(),
        aliases=settings.google_aliases,
        timeout=settings.google_timeout_seconds,
        metadata_only=settings.google_gmail_metadata_only,
    )


def _quota(units_per_minute: int, costs: dict[str, int]) -> Quota:
    return Quota(
        units_per_window=units_per_minute,
        window_seconds=settings.google_quota_window_seconds,
        costs=costs,
        max_in_flight=settings.google_max_in_flight,
        max_wait_seconds=settings.google_max_wait_seconds,
    )


def gmail_quota() -> Quota:
    costs = {**GMAIL_COSTS, **settings.google_method_costs}
    return _quota(settings.google_quota_units_per_minute, costs)


def calendar_quota() -> Quota:
    return _quota(settings.google_calendar_requests_per_minute, dict(CALENDAR_COSTS))


def google_connectors(connection: Connection, secret: dict[str, Any]) -> list[Connector]:
    app = google_app()
    if app is None:
        raise ConnectorError("Google is not configured on this instance (no client id)")
    refresh_token = str(secret.get("refresh_token") or "")
    if not refresh_token:
        raise AuthExpired("no Google refresh token is stored: reconnect")
    account = str(connection.config.get("account") or "")
    push = settings.google_push_token is not None
    if connection.provider == "gmail":
        topic = settings.google_pubsub_topic
        return [
            GmailConnector(
                account=account,
                refresh_token=refresh_token,
                app=app,
                endpoints=endpoints(),
                quota=gmail_quota(),
                page_size=settings.google_page_size,
                batch_size=settings.google_batch_size,
                watch=GmailWatch(topic) if topic and push else None,
                timeout=settings.google_timeout_seconds,
                # what the consent granted decides, not today's setting
                metadata_only=gmail_metadata_only(connection.config.get("scopes") or ()),
            )
        ]
    watch = None
    if push:
        watch = CalendarWatch(
            address=push_google.calendar_address(),
            token=push_google.channel_token(connection.id),
            channel_prefix=f"{push_google.CHANNEL_PREFIX}{connection.id}-",
        )
    return [
        GoogleCalendarConnector(
            account=account,
            refresh_token=refresh_token,
            app=app,
            endpoints=endpoints(),
            quota=calendar_quota(),
            window_past_days=settings.backfill_days,
            window_future_days=settings.calendar_future_days,
            watch=watch,
            timeout=settings.google_timeout_seconds,
        )
    ]
