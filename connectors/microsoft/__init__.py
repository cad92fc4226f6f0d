"""Microsoft 365: Outlook mail and calendar through Microsoft Graph, signed in with msal.

`connect()` builds one connection's connectors: mail and calendar share one token cache
(`GraphAuth`) and one HTTP client (`GraphClient`), so the mailbox never has more than
`max_in_flight` Graph requests open and a rotated refresh token is seen by both. The
connection's mail permission (`mail_permission`: what its consent granted, as
`granted_mail_permission(connection.config)` reads it) decides
the scopes its tokens are asked for and whether the mail connector reads headers; when not
given, what the connection's token cache says was granted, else the app's (new consents).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from connectors.microsoft.auth import (
    GRAPH_SCOPES,
    MAIL_READ,
    MAIL_READ_BASIC,
    READ_BASIC_DEVIATION,
    GraphAuth,
    MicrosoftApp,
    cached_mail_permission,
    granted_mail_permission,
)
from connectors.microsoft.calendar import GraphCalendarConnector
from connectors.microsoft.http import GraphClient
from connectors.microsoft.mail import GraphMailConnector
from connectors.microsoft.oauth import MicrosoftOAuth
from connectors.microsoft.push import PushTarget

__all__ = [
    "GRAPH_SCOPES",
    "MAIL_READ",
    "MAIL_READ_BASIC",
    "READ_BASIC_DEVIATION",
    "GraphAuth",
    "GraphCalendarConnector",
    "GraphClient",
    "GraphMailConnector",
    "MicrosoftApp",
    "MicrosoftOAuth",
    "PushTarget",
    "connect",
    "granted_mail_permission",
]


def connect(
    app: MicrosoftApp,
    secret: Mapping[str, Any],
    *,
    account: str | None = None,
    folders: Sequence[str] = ("inbox", "sentitems"),
    max_in_flight: int = 4,
    max_wait: float = 10.0,
    page_size: int = 250,
    window_past_days: int = 365,
    window_future_days: int = 90,
    push_target: PushTarget | None = None,
    mail_permission: str | None = None,
) -> tuple[GraphMailConnector, GraphCalendarConnector]:
    """The mail and calendar connectors of one Microsoft 365 connection."""
    permission = mail_permission or cached_mail_permission(secret) or app.mail_permission
    client = GraphClient(
        GraphAuth(app, secret, mail_permission=permission),
        base_url=app.graph_url,
        verify=app.verify(),
        timeout=app.timeout,
        max_in_flight=max_in_flight,
        max_wait=max_wait,
    )
    mail = GraphMailConnector(
        client,
        folders=folders,
        page_size=page_size,
        push_target=push_target,
        read_headers=permission == MAIL_READ,
        own_domains=[account.rsplit("@", 1)[-1]] if account and "@" in account else [],
    )
    calendar = GraphCalendarConnector(
        client,
        account=account,
        window_past_days=window_past_days,
        window_future_days=window_future_days,
        push_target=push_target,
    )
    return mail, calendar
