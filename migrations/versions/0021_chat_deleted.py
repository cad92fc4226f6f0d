"""chat messages their source deleted, so a delivery on its way does not bring them back

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07 23:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | Sequence[str] | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "chat_deleted",
        sa.Column("channel_pk", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.String(length=200), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["channel_pk"],
            ["chat_channels.id"],
            name="fk_chat_deleted_channel_pk_chat_channels",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("channel_pk", "message_id", name="pk_chat_deleted"),
    )


def downgrade() -> None:
    op.drop_table("chat_deleted")
