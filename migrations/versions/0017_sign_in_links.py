"""dashboard sign-in links

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 18:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | Sequence[str] | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sign_in_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("api_key_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["org_id"],
            ["organizations.id"],
            name="fk_sign_in_links_org_id_organizations",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_sign_in_links_user_id_users", ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["users.id"],
            name="fk_sign_in_links_created_by_id_users",
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["api_key_id"],
            ["api_keys.id"],
            name="fk_sign_in_links_api_key_id_api_keys",
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_sign_in_links"),
        sa.UniqueConstraint("token_hash", name="uq_sign_in_links_token_hash"),
    )
    op.create_index("ix_sign_in_links_org_id", "sign_in_links", ["org_id"])
    op.create_index("ix_sign_in_links_user_id", "sign_in_links", ["user_id"])
    op.create_index("ix_sign_in_links_api_key_id", "sign_in_links", ["api_key_id"])


def downgrade() -> None:
    op.drop_index("ix_sign_in_links_api_key_id", table_name="sign_in_links")
    op.drop_index("ix_sign_in_links_user_id", table_name="sign_in_links")
    op.drop_index("ix_sign_in_links_org_id", table_name="sign_in_links")
    op.drop_table("sign_in_links")
