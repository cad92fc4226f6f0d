"""build_connectors(): the one place that maps a connection to its provider's connectors."""

from __future__ import annotations

from typing import Any

from app.config import settings
from app.models import Connection
from app.sync.google import google_connectors, google_oauth
from app.sync.microsoft import microsoft_connectors, microsoft_oauth
from app.sync.slack import slack_connectors, slack_oauth
from connectors.base import Connector
from connectors.calendar.caldav import CalDavConnector
from connectors.imap import ImapConnector
from connectors.oauth import OAuthClient

__all__ = ["build_connectors", "oauth_client"]


def oauth_client(name: str) -> OAuthClient | None:
    """The OAuth client of `name` ("google", "microsoft", "slack"), None when unknown or when the
    instance has no client id for it."""
    match name:
        case "microsoft":
            return microsoft_oauth()
        case "google":
            return google_oauth()
        case "slack":
            return slack_oauth()
        case _:
            return None


def build_connectors(connection: Connection, secret: dict[str, Any]) -> list[Connector]:
    config = connection.config
    match connection.provider:
        case "imap":
            return [
                ImapConnector(
                    host=config["host"],
                    port=int(config["port"]),
                    username=config["username"],
                    password=str(secret.get("password", "")),
                    security=config.get("security", "ssl"),
                    folders=config.get("folders"),
                    batch_size=settings.imap_batch_size,
                    timeout=settings.imap_timeout_seconds,
                    body_bytes=settings.imap_body_bytes,
                    connect_timeout=settings.connect_timeout_seconds,
                    allowed_hosts=settings.allowed_private_hosts,
                )
            ]
        case "caldav":
            return [
                CalDavConnector(
                    url=config["url"],
                    username=config["username"],
                    password=str(secret.get("password", "")),
                    calendars=config.get("calendars"),
                    window_past_days=settings.backfill_days,
                    window_future_days=settings.calendar_future_days,
                    timeout=settings.calendar_timeout_seconds,
                    connect_timeout=settings.connect_timeout_seconds,
                    allowed_hosts=settings.allowed_private_hosts,
                )
            ]
        case "microsoft":
            return microsoft_connectors(connection, secret)
        case "gmail" | "google_calendar":
            return google_connectors(connection, secret)
        case "slack":
            return slack_connectors(connection, secret)
        case _:
            return []
