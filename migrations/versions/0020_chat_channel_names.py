"""chat channels: their name, kind and how far they are synced (GET /connections)

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-07 22:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0020"
down_revision: str | Sequence[str] | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # batch: SQLite cannot add several columns in one ALTER otherwise; nullable, so existing
    # channels need no value (a connector fills them on its next page)
    with op.batch_alter_table("chat_channels") as batch:
        batch.add_column(sa.Column("name", sa.String(length=200), nullable=True))
        batch.add_column(sa.Column("kind", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("synced_to", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("chat_channels") as batch:
        batch.drop_column("synced_to")
        batch.drop_column("kind")
        batch.drop_column("name")
