"""connections: when the current run began and when the last error was recorded

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 14:00:00.000000

GET /connections/{id} says what is happening now (`syncing` since `sync_started_at`) and keeps
the last error beside it with its moment (`last_error_at`). Existing errors get no moment: it
was never recorded.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("connections") as batch_op:
        batch_op.add_column(sa.Column("last_error_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("sync_started_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("connections") as batch_op:
        batch_op.drop_column("sync_started_at")
        batch_op.drop_column("last_error_at")
