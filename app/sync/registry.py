"""build_connectors(): the one place that maps a connection to its provider's connectors."""

from __future__ import annotations

from typing import Any

from app.config import settings
from app.models import Connection
from connectors.base import Connector
from connectors.imap import ImapConnector

SCHEDULED_PROVIDERS = frozenset({"imap"})  # file imports ("import") are run by the CLI only


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
                )
            ]
        case _:
            return []
