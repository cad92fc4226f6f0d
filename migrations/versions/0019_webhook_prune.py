"""webhook deliveries: when each settled, and the index the pruning deletes by

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-08 09:00:00.000000

The deliveries log is pruned TALLY_WEBHOOK_RETENTION_DAYS after a delivery settled (delivered
or failed for good: app/webhooks/prune.py). Settled rows get the moment they settled as well
as it was recorded: delivered_at, else the last attempt, else (failed unattempted behind a
410 Gone) the announcement. The index (org_id, settled_at) replaces the one on org_id alone,
which it serves too.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | Sequence[str] | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("webhook_deliveries") as batch_op:
        batch_op.add_column(sa.Column("settled_at", sa.DateTime(timezone=True), nullable=True))
    op.execute(
        "UPDATE webhook_deliveries"
        " SET settled_at = COALESCE(delivered_at, last_attempt_at, created_at)"
        " WHERE status <> 'pending'"
    )
    op.create_index("ix_webhook_deliveries_settled", "webhook_deliveries", ["org_id", "settled_at"])
    op.drop_index("ix_webhook_deliveries_org_id", table_name="webhook_deliveries")


def downgrade() -> None:
    op.create_index("ix_webhook_deliveries_org_id", "webhook_deliveries", ["org_id"])
    op.drop_index("ix_webhook_deliveries_settled", table_name="webhook_deliveries")
    with op.batch_alter_table("webhook_deliveries") as batch_op:
        batch_op.drop_column("settled_at")
