"""worker heartbeats, deactivated users, rate-limit counters

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-08 09:00:00.000000

`worker_heartbeats` holds each sync worker's last beat (the readiness check).
`users.deactivated_at` marks a person who left: the row, their activities and deals stay,
so past periods do not change. `rate_limit_hits` counts failed authentications and
unauthenticated requests per subject and fixed window, shared by every API process.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "worker_heartbeats",
        sa.Column("worker", sa.String(length=200), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("beat_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("worker", name=op.f("pk_worker_heartbeats")),
    )
    op.create_table(
        "rate_limit_hits",
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("subject", "window_start", name=op.f("pk_rate_limit_hits")),
    )
    op.create_index(
        op.f("ix_rate_limit_hits_window_start"), "rate_limit_hits", ["window_start"], unique=False
    )
    with op.batch_alter_table("users") as batch_op:
        batch_op.add_column(sa.Column("deactivated_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("users") as batch_op:
        batch_op.drop_column("deactivated_at")
    op.drop_index(op.f("ix_rate_limit_hits_window_start"), table_name="rate_limit_hits")
    op.drop_table("rate_limit_hits")
    op.drop_table("worker_heartbeats")
