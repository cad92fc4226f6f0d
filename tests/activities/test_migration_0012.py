"""Migration 0012 on a database with data: calendar copies stored before it are indexed by
address (their events follow later changes of the directory), mail stored before it keeps
no facts (docs/reevaluation.md, "Mail stored before 0012"). On SQLite and PostgreSQL."""

from __future__ import annotations

import json

from sqlalchemy import Engine, text

from tests.test_migrations import engine, run

__all__ = ["engine"]  # the fixture: an empty database of its own, both backends


EVENT = {
    "source_id": "cal/a.ics#a#",
    "uid": "a",
    "recurrence_id": None,
    "start": "2026-03-02T09:00:00+00:00",
    "end": "2026-03-02T10:00:00+00:00",
    "all_day": False,
    "status": "confirmed",
    "summary": "Demo",
    "location": "",
    "description": "",
    "conference": [],
    "organizer": {"email": "ana@acme.example", "name": None},
    "attendees": [
        {
            "email": "Joe@Northwind.example",
            "name": "Joe",
            "response": "accepted",
            "kind": "individual",
        }
    ],
    "created": None,
    "version": "1",
}


def test_0012_indexes_the_calendar_copies_stored_before_it(engine: Engine) -> None:
    run(engine, "upgrade", "0011")
    with engine.begin() as connection:
        for sql in (
            "INSERT INTO organizations (id, name, domains, timezone, week_start, "
            "fiscal_year_start_month, telephony, currency, created_at) VALUES (1, 'Acme', "
            "'[\"acme.example\"]', 'UTC', 'monday', 1, '{}', 'EUR', '2026-01-01')",
            "INSERT INTO users (id, org_id, email, name, role, phones, created_at) VALUES "
            "(1, 1, 'ana@acme.example', 'Ana', 'rep', '[]', '2026-01-01')",
            "INSERT INTO connections (id, org_id, user_id, provider, status, config, cursors, "
            "failures, lease_epoch, messages_seen, messages_imported, messages_filtered, "
            "messages_failed, events_seen, activities_created, created_at) VALUES (1, 1, 1, "
            "'caldav', 'idle', '{}', '{}', 0, 0, 0, 0, 0, 0, 0, 0, '2026-01-01')",
        ):
            connection.execute(text(sql))
        connection.execute(
            text(
                "INSERT INTO event_copies (org_id, connection_id, user_id, resource, source_id, "
                "event_key, version, starts_at, ends_at, data, settled, updated_at) VALUES "
                "(1, 1, 1, 'cal/a.ics', 'cal/a.ics#a#', 'k1', '1', '2026-03-02 09:00:00', "
                "'2026-03-02 10:00:00', :data, false, '2026-03-02')"
            ),
            {"data": json.dumps(EVENT)},
        )
    run(engine, "upgrade", "0012")
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT org_id, address_key, event_key FROM event_addresses ORDER BY 2")
        ).all()
    assert [tuple(r) for r in rows] == [
        (1, "example.acme@ana", "k1"),
        (1, "example.northwind@joe", "k1"),
    ]
    run(engine, "downgrade", "0011")
