"""chat messages and conversations (semantics §11)

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07 19:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | Sequence[str] | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "chat_channels",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("channel_id", sa.String(length=200), nullable=False),
        sa.Column("connection_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name="fk_chat_channels_org_id_organizations",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["connection_id"],
            ["connections.id"],
            name="fk_chat_channels_connection_id_connections",
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_chat_channels"),
        sa.UniqueConstraint(
            "org_id", "source", "channel_id", name="uq_chat_channels_org_id_source_channel_id"
        ),
    )
    op.create_index("ix_chat_channels_connection_id", "chat_channels", ["connection_id"])
    op.create_table(
        "chat_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel_pk", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.String(length=200), nullable=False),
        sa.Column("sender", sa.String(length=320), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("text_length", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["channel_pk"],
            ["chat_channels.id"],
            name="fk_chat_messages_channel_pk_chat_channels",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_chat_messages"),
        sa.UniqueConstraint(
            "channel_pk", "message_id", name="uq_chat_messages_channel_pk_message_id"
        ),
    )
    op.create_index("ix_chat_messages_channel_time", "chat_messages", ["channel_pk", "sent_at"])
    op.create_table(
        "chat_participants",
        sa.Column("channel_pk", sa.Integer(), nullable=False),
        sa.Column("address", sa.String(length=320), nullable=False),
        sa.ForeignKeyConstraint(
            ["channel_pk"],
            ["chat_channels.id"],
            name="fk_chat_participants_channel_pk_chat_channels",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("channel_pk", "address", name="pk_chat_participants"),
    )
    op.create_table(
        "chat_settings",
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("gap_minutes", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name="fk_chat_settings_org_id_organizations",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("org_id", name="pk_chat_settings"),
    )


def downgrade() -> None:
    op.drop_table("chat_settings")
    op.drop_table("chat_participants")
    op.drop_index("ix_chat_messages_channel_time", table_name="chat_messages")
    op.drop_table("chat_messages")
    op.drop_index("ix_chat_channels_connection_id", table_name="chat_channels")
    op.drop_table("chat_channels")
