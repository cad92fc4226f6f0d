"""connection_changes: settings, credentials and sync requests queued while a worker holds
the connection's row

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 15:40:00.000000

A worker stopped between its lease check and its commit holds the connection's row until the
server ends its transaction; PATCH /connections/{id} and POST …/sync append here instead of
waiting for it (app/connections/changes.py).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "connection_changes",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "connection_id",
            sa.Integer(),
            sa.ForeignKey("connections.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("secret", sa.LargeBinary(), nullable=True),
        sa.Column("moved", sa.Boolean(), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ix_connection_changes_connection_id", "connection_changes", ["connection_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_connection_changes_connection_id", table_name="connection_changes")
    op.drop_table("connection_changes")
