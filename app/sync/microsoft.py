"""Microsoft 365 from settings: the OAuth client and a connection's connectors."""

from __future__ import annotations

from typing import Any

from app.config import settings
from app.connections import push_microsoft
from app.models import Connection
from connectors.base import Connector, ConnectorError
from connectors.microsoft import MicrosoftApp, MicrosoftOAuth, PushTarget
from connectors.microsoft import connect as microsoft_connect


def microsoft_app() -> MicrosoftApp | None:
    if not settings.microsoft_client_id:
        return None
    secret = settings.microsoft_client_secret
    return MicrosoftApp(
        client_id=settings.microsoft_client_id,
        client_secret=secret.get_secret_value() if secret else "",
        authority=settings.microsoft_authority,
        graph_url=settings.microsoft_graph_url,
        ca_bundle=settings.microsoft_ca_bundle,
        mail_permission=settings.microsoft_mail_permission,
    )


def microsoft_connectors(connection: Connection, secret: dict[str, Any]) -> list[Connector]:
    app = microsoft_app()
    if app is None:
        raise ConnectorError("Microsoft 365 is not configured on this instance (no client id)")
    push = None
    if settings.microsoft_push_secret is not None:
        push = PushTarget(
            push_microsoft.notification_url(),
            push_microsoft.client_state(connection.id),
            renew_requested=push_microsoft.renewal_requested(connection.cursors),
        )
    mail, calendar = microsoft_connect(
        app,
        secret,
        account=connection.config.get("account"),
        mail_permission=connection.config.get("mail_permission"),
        folders=connection.config.get("folders") or settings.microsoft_mail_folders,
        max_in_flight=settings.microsoft_max_in_flight,
        max_wait=settings.microsoft_max_wait_seconds,
        page_size=settings.microsoft_page_size,
        window_past_days=settings.backfill_days,
        window_future_days=settings.calendar_future_days,
        push_target=push,
    )
    return [mail, calendar]


def microsoft_oauth() -> MicrosoftOAuth | None:
    app = microsoft_app()
    return MicrosoftOAuth(app) if app is not None else None
