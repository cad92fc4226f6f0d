"""user_contacts: the (user, contact) relation as its own rollup; the day rollups lose org_id

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 13:00:00.000000

`user_contacts` counts the activity links between a user and a contact over all time (one
row per pair while links exist). It decides which contacts a rep or a manager sees and is
where their contact search starts, so `contact_days` no longer needs its (contact_id,
user_id) index. `activity_days` and `contact_days` drop `org_id`: every read names its users
and the rows go with their user; the column's foreign key and index cost ingest a check and
an index entry per new row. Filled here from `contact_days`, which holds the same links per
day.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "user_contacts",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contacts.id"],
            name=op.f("fk_user_contacts_contact_id_contacts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_user_contacts_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", "contact_id", name=op.f("pk_user_contacts")),
    )
    op.execute(
        "INSERT INTO user_contacts (user_id, contact_id, count) SELECT user_id, contact_id, "
        "sum(count) FROM contact_days GROUP BY user_id, contact_id ORDER BY user_id, contact_id"
    )
    op.create_index("ix_user_contacts_contact_user", "user_contacts", ["contact_id", "user_id"])
    with op.batch_alter_table("contact_days") as batch_op:
        batch_op.drop_index("ix_contact_days_contact_user")
        batch_op.drop_index(batch_op.f("ix_contact_days_org_id"))
        batch_op.drop_constraint(
            batch_op.f("fk_contact_days_org_id_organizations"), type_="foreignkey"
        )
        batch_op.drop_column("org_id")
    with op.batch_alter_table("activity_days") as batch_op:
        batch_op.drop_index(batch_op.f("ix_activity_days_org_id"))
        batch_op.drop_constraint(
            batch_op.f("fk_activity_days_org_id_organizations"), type_="foreignkey"
        )
        batch_op.drop_column("org_id")


def downgrade() -> None:
    for table in ("activity_days", "contact_days"):
        with op.batch_alter_table(table) as batch_op:
            batch_op.add_column(sa.Column("org_id", sa.Integer(), nullable=True))
        op.execute(
            f"UPDATE {table} SET org_id = (SELECT users.org_id FROM users "
            f"WHERE users.id = {table}.user_id)"
        )
        with op.batch_alter_table(table) as batch_op:
            batch_op.alter_column("org_id", existing_type=sa.Integer(), nullable=False)
            batch_op.create_foreign_key(
                batch_op.f(f"fk_{table}_org_id_organizations"),
                "organizations",
                ["org_id"],
                ["id"],
                ondelete="CASCADE",
            )
            batch_op.create_index(batch_op.f(f"ix_{table}_org_id"), ["org_id"], unique=False)
    with op.batch_alter_table("contact_days") as batch_op:
        batch_op.create_index("ix_contact_days_contact_user", ["contact_id", "user_id"])
    op.drop_index("ix_user_contacts_contact_user", table_name="user_contacts")
    op.drop_table("user_contacts")
