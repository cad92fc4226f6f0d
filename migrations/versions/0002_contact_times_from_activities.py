"""contact times are read from activities

A contact's first and last interaction are now computed from its activities when the API reads
them, so a cancelled meeting or a purged connection can never leave a stale time behind, and
ingest no longer rewrites every contact it sees. The downgrade restores the columns, filled
from the activities.

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("contacts") as batch:
        batch.drop_column("last_interaction_at")
        batch.drop_column("first_seen_at")


def downgrade() -> None:
    with op.batch_alter_table("contacts") as batch:
        batch.add_column(sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(
            sa.Column("last_interaction_at", sa.DateTime(timezone=True), nullable=True)
        )
    for column, aggregate in (("first_seen_at", "MIN"), ("last_interaction_at", "MAX")):
        op.execute(
            f"UPDATE contacts SET {column} = ("
            f"SELECT {aggregate}(activities.occurred_at) FROM activity_contacts "
            "JOIN activities ON activities.id = activity_contacts.activity_id "
            "WHERE activity_contacts.contact_id = contacts.id)"
        )
