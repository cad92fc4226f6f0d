"""connections made before exact capture say where they count differently from the spec

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 17:20:00.000000

Until now Gmail consents asked for gmail.metadata and Microsoft consents for Mail.ReadBasic.
Those connections keep syncing with what they were granted (the connectors read it from the
recorded scopes and the token cache), so they keep the deviation the new consents record in
`config.deviations`: it is recorded for them here, as the consent would (the sentences are
copies of connectors/google/oauth.py METADATA_DEVIATION and connectors/microsoft/auth.py
READ_BASIC_DEVIATION at this revision: a migration does not follow later edits of the code).
Downgrade removes what this revision added.
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GMAIL_DEVIATION = (
    "Invitations sent by calendar systems other than Google Calendar and Microsoft Exchange "
    "(a text/calendar part inside the message) count as emails, because this connection was "
    "granted only the gmail.metadata permission, which shows a message's headers but not its "
    "MIME parts. Reconnect with full read access to count them as calendar traffic."
)
GRAPH_DEVIATION = (
    "Mail marked as automated only by its List-Id, List-Unsubscribe, Precedence or "
    "Auto-Submitted headers (newsletters, notifications, auto-replies) counts as customer "
    "email, and its sender as a contact, because this connection was granted Microsoft's "
    "Mail.ReadBasic permission, which gives Tally no message headers; connect again with "
    "Mail.Read to count it exactly."
)
GMAIL_METADATA = "https://www.googleapis.com/auth/gmail.metadata"
FULL_GMAIL = {
    "https://www.googleapis.com/auth/gmail.readonly",
    "https://www.googleapis.com/auth/gmail.modify",
    "https://mail.google.com/",
}

connections = sa.table(
    "connections",
    sa.column("id", sa.Integer),
    sa.column("provider", sa.String),
    sa.column("config", sa.JSON),
)


def _rows(provider: str) -> list[tuple[int, dict[str, Any]]]:
    query = sa.select(connections.c.id, connections.c.config).where(
        connections.c.provider == provider
    )
    return [(row.id, dict(row.config or {})) for row in op.get_bind().execute(query)]


def _write(connection_id: int, config: dict[str, Any]) -> None:
    op.get_bind().execute(
        connections.update().where(connections.c.id == connection_id).values(config=config)
    )


def upgrade() -> None:
    for connection_id, config in _rows("gmail"):
        granted = set(config.get("scopes") or ())
        if "deviations" not in config and (GMAIL_METADATA in granted or not granted & FULL_GMAIL):
            _write(connection_id, {**config, "deviations": [GMAIL_DEVIATION]})
    for connection_id, config in _rows("microsoft"):
        if "mail_permission" not in config:
            _write(
                connection_id,
                {**config, "mail_permission": "Mail.ReadBasic", "deviations": [GRAPH_DEVIATION]},
            )


def downgrade() -> None:
    for provider, sentence in (("gmail", GMAIL_DEVIATION), ("microsoft", GRAPH_DEVIATION)):
        for connection_id, config in _rows(provider):
            if config.get("deviations") == [sentence]:
                config.pop("deviations")
                if provider == "microsoft" and config.get("mail_permission") == "Mail.ReadBasic":
                    config.pop("mail_permission")
                _write(connection_id, config)
