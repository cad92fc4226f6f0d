"""Migration 0013 on a database with connections made before exact capture: a Gmail mailbox
granted gmail.metadata and a Microsoft 365 one granted Mail.ReadBasic show their deviation
after it (they keep syncing with what they were granted); one granted gmail.readonly does
not; downgrade takes back exactly what it added. SQLite and PostgreSQL."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Engine, text

from connectors.google.oauth import GMAIL_METADATA, GMAIL_READONLY, METADATA_DEVIATION
from connectors.microsoft.auth import READ_BASIC_DEVIATION
from tests.test_migrations import engine, run

__all__ = ["engine"]  # the fixture: an empty database of its own, both backends


BEFORE = {
    1: ("gmail", {"account": "ana@acme.example", "scopes": [GMAIL_METADATA]}),
    2: ("gmail", {"account": "bob@acme.example", "scopes": [GMAIL_READONLY]}),
    3: ("google_calendar", {"account": "ana@acme.example", "scopes": [GMAIL_METADATA]}),
    4: ("microsoft", {"account": "ana@acme.example"}),
    5: ("imap", {"host": "imap.acme.example", "username": "ana"}),
}


def configs(engine: Engine) -> dict[int, dict[str, Any]]:
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT id, config FROM connections ORDER BY id")).all()
    return {r.id: r.config if isinstance(r.config, dict) else json.loads(r.config) for r in rows}


def test_0013_records_the_deviation_of_connections_granted_less(engine: Engine) -> None:
    run(engine, "upgrade", "0012")
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO organizations (id, name, domains, timezone, week_start, "
                "fiscal_year_start_month, telephony, currency, created_at) VALUES (1, 'Acme', "
                "'[\"acme.example\"]', 'UTC', 'monday', 1, '{}', 'EUR', '2026-01-01')"
            )
        )
        connection.execute(
            text(
                "INSERT INTO users (id, org_id, email, name, role, phones, created_at) VALUES "
                "(1, 1, 'ana@acme.example', 'Ana', 'rep', '[]', '2026-01-01')"
            )
        )
        for connection_id, (provider, config) in BEFORE.items():
            connection.execute(
                text(
                    "INSERT INTO connections (id, org_id, user_id, provider, status, config, "
                    "cursors, failures, lease_epoch, messages_seen, messages_imported, "
                    "messages_filtered, messages_failed, events_seen, activities_created, "
                    "created_at) VALUES (:id, 1, 1, :provider, 'idle', :config, '{}', 0, 0, 0, "
                    "0, 0, 0, 0, 0, '2026-01-01')"
                ),
                {"id": connection_id, "provider": provider, "config": json.dumps(config)},
            )
    run(engine, "upgrade", "0013")
    after = configs(engine)
    assert after[1]["deviations"] == [METADATA_DEVIATION]  # the sentence the consent writes
    assert "deviations" not in after[2]
    assert "deviations" not in after[3]  # a calendar counts exactly
    assert after[4]["deviations"] == [READ_BASIC_DEVIATION]
    assert after[4]["mail_permission"] == "Mail.ReadBasic"
    assert after[5] == BEFORE[5][1]
    run(engine, "downgrade", "0012")
    assert configs(engine) == {i: config for i, (_, config) in BEFORE.items()}
