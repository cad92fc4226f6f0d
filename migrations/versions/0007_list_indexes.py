"""indexes for lists that do not grow with history: activities by user and type; trigram
indexes for contact and company search

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 11:00:00.000000

On PostgreSQL the search indexes are GIN trigram indexes (pg_trgm, created here when the
role may). Where the extension cannot be created they are plain B-trees on the same columns,
so the schema still matches the models; the searches then answer by scanning
(docs/operations.md says how to add the trigrams later). On SQLite they are B-trees, which a
search reads instead of the wider table.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# what GET /contacts?q= and GET /companies?q= match (app/contacts/queries.py)
SEARCH_INDEXES = (
    ("ix_contacts_search", "contacts", ["name", "email"]),
    ("ix_companies_search", "companies", ["name", "domain"]),
)


def _trigrams_available() -> bool:
    """pg_trgm, created if missing; False where this role may not create extensions."""
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return False
    try:
        with bind.begin_nested():
            bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
    except sa.exc.DBAPIError:
        return False
    return True


def upgrade() -> None:
    op.create_index(
        "ix_activities_user_type_time", "activities", ["user_id", "type", "occurred_at"]
    )
    trigrams = _trigrams_available()
    # On lower(...) expressions, never the plain columns: pg_trgm serves `=` as well, and the
    # planner then answered ingest's `domain = ANY(...)` look-up from the trigrams.
    for name, table, columns in SEARCH_INDEXES:
        ops = " gin_trgm_ops" if trigrams else ""
        expressions = [sa.text(f"lower({column}){ops}") for column in columns]
        if trigrams:
            op.create_index(name, table, expressions, postgresql_using="gin")
        else:
            op.create_index(name, table, expressions)


def downgrade() -> None:
    for name, table, _columns in SEARCH_INDEXES:
        op.drop_index(name, table_name=table)
    op.drop_index("ix_activities_user_type_time", table_name="activities")
