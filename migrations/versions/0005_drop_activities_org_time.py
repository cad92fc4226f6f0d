"""drop ix_activities_org_time: every read names its users, so (user_id, occurred_at) serves

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 02:30:00.000000

"""
from typing import Sequence, Union

from alembic import op


# revision identifiers, used by Alembic.
revision: str = '0005'
down_revision: Union[str, Sequence[str], None] = '0004'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    """Upgrade schema."""
    with op.batch_alter_table('activities', schema=None) as batch_op:
        batch_op.drop_index('ix_activities_org_time')


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table('activities', schema=None) as batch_op:
        batch_op.create_index('ix_activities_org_time', ['org_id', 'occurred_at'], unique=False)
