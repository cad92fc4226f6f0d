"""Facts kept for inference, the address indexes and the re-evaluation job

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-08 09:00:00.000000

Counts follow the people (docs/reevaluation.md): every message whose meaning depends on the
directory keeps its addresses by role (messages.facts, also for filtered mail) and is found by
address (message_addresses); events by the addresses of their copies (event_addresses). A
change of users, aliases or internal domains bumps its organization's directory_versions row
(which every writer that infers holds a share lock of) and queues a directory_change, which the
re-evaluation job (reevaluations: lease and progress; reevaluation_messages and
reevaluation_events: what it still has to do) works off.

Rows written before this revision have no facts: messages filtered before it are not stored
at all, and the messages imported before it lack their recipients. Neither can be inferred
again from the database, and a change of the directory leaves them as they are; only reading
that mail again brings them in: their observations keep `sent` NULL, which ingest takes as
"not read yet", so importing the files again (or a sync listing the mailbox from the start)
reads them again (docs/reevaluation.md, "Mail
stored before 0012").
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _address_key() -> sa.types.TypeEngine[str]:
    return sa.String(320).with_variant(sa.String(320, collation="C"), "postgresql")


def _key(email: str) -> str:
    """app/activities/facts.py address_key as of this revision (kept here: a migration must
    not change when the app does)."""
    local, _, domain = email.lower().rpartition("@")
    return ".".join(reversed(domain.split("."))) + "@" + local


def _index_events() -> None:
    """Event copies stored before this revision keep the whole event: index them now, so a
    change of the directory finds their events too."""
    connection = op.get_bind()
    copies = sa.table(
        "event_copies", sa.column("org_id"), sa.column("event_key"), sa.column("data", sa.JSON)
    )
    index = sa.table(
        "event_addresses", sa.column("org_id"), sa.column("address_key"), sa.column("event_key")
    )
    found: set[tuple[int, str, str]] = set()
    for org_id, event_key, data in connection.execute(sa.select(copies)):
        people = [a.get("email") for a in data.get("attendees") or ()]
        people.append((data.get("organizer") or {}).get("email"))
        found.update((org_id, _key(email), event_key) for email in people if email)
    rows = [{"org_id": o, "address_key": a, "event_key": k} for o, a, k in sorted(found)]
    for start in range(0, len(rows), 5000):
        connection.execute(index.insert(), rows[start : start + 5000])


def upgrade() -> None:
    op.create_table(
        "directory_versions",
        sa.Column(
            "org_id",
            sa.Integer(),
            sa.ForeignKey("organizations.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("version", sa.Integer(), nullable=False),
    )
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("facts", sa.JSON(), nullable=True))
    with op.batch_alter_table("observations") as batch:
        batch.add_column(sa.Column("sent", sa.Boolean(), nullable=True))
        batch.add_column(sa.Column("provider_date", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "message_addresses",
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("address_key", _address_key(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("org_id", "address_key", "message_id"),
    )
    op.create_table(
        "event_addresses",
        sa.Column(
            "org_id",
            sa.Integer(),
            sa.ForeignKey("organizations.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("address_key", _address_key(), nullable=False),
        sa.Column("event_key", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("org_id", "address_key", "event_key"),
    )
    _index_events()
    op.create_table(
        "directory_changes",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "org_id",
            sa.Integer(),
            sa.ForeignKey("organizations.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("addresses", sa.JSON(), nullable=False),
        sa.Column("domains", sa.JSON(), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_directory_changes_org_id", "directory_changes", ["org_id"])
    op.create_table(
        "reevaluations",
        sa.Column(
            "org_id",
            sa.Integer(),
            sa.ForeignKey("organizations.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("done", sa.Integer(), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_owner", sa.String(100), nullable=True),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("lease_epoch", sa.Integer(), nullable=False),
    )
    op.create_table(
        "reevaluation_messages",
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("org_id", "message_id"),
    )
    op.create_table(
        "reevaluation_events",
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("event_key", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("org_id", "event_key"),
    )


def downgrade() -> None:
    op.drop_table("reevaluation_events")
    op.drop_table("reevaluation_messages")
    op.drop_table("reevaluations")
    op.drop_index("ix_directory_changes_org_id", table_name="directory_changes")
    op.drop_table("directory_changes")
    op.drop_table("event_addresses")
    op.drop_table("message_addresses")
    with op.batch_alter_table("observations") as batch:
        batch.drop_column("provider_date")
        batch.drop_column("sent")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("facts")
    op.drop_table("directory_versions")
