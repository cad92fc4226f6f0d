"""What a connection accepts, and how much one sync of it may log."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import pytest

from app.config import settings
from tests.api import Org
from tests.fixtures.dovecot import DovecotServer

IMAP = {"host": "imap.acme.example", "username": "ana", "password": "pw"}
CALDAV = {"url": "https://dav.acme.example/", "username": "ana", "password": "pw"}


def post(org: Org, provider: str, config: dict[str, Any]) -> Any:
    body = {"user_id": org.users["ana@acme.example"]["id"], "provider": provider, "config": config}
    return org.client.post("/api/v1/connections", json=body, headers=org.as_admin())


@pytest.mark.parametrize(
    ("provider", "config", "field"),
    [
        ("imap", {**IMAP, "folders": [f"F{i}" for i in range(101)]}, "folders"),
        ("imap", {**IMAP, "folders": ["x" * 1001]}, "folders.0"),
        ("imap", {**IMAP, "folders": [""]}, "folders.0"),
        ("imap", {**IMAP, "folders": ["INBOX\r\nA1 DELETE INBOX"]}, "folders.0"),
        ("imap", {**IMAP, "host": "imap.acme.example /etc"}, "host"),
        ("imap", {**IMAP, "host": "h" * 256}, "host"),
        ("imap", {**IMAP, "username": "ana\r\nA1 LOGOUT"}, "username"),
        ("imap", {**IMAP, "password": "p" * 1001}, "password"),
        ("caldav", {**CALDAV, "calendars": [f"C{i}" for i in range(101)]}, "calendars"),
        ("caldav", {**CALDAV, "calendars": ["c" * 1001]}, "calendars.0"),
        ("caldav", {**CALDAV, "url": "https://dav.acme.example/a b"}, "url"),
    ],
)
def test_oversized_or_malformed_settings_are_refused(
    org: Org, provider: str, config: dict[str, Any], field: str
) -> None:
    response = post(org, provider, config)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["message"].startswith(f"config.{field}:")
    assert "p" * 1001 not in response.text  # a refused password is not echoed either
    created = post(org, provider, IMAP if provider == "imap" else CALDAV)
    assert created.status_code == 201
    patched = org.client.patch(
        f"/api/v1/connections/{created.json()['id']}",
        json={"config": config},
        headers=org.as_admin(),
    )
    assert patched.status_code == 422 and f"config.{field}:" in patched.text


def test_a_hundred_folders_of_a_thousand_characters_are_accepted(org: Org) -> None:
    folders = [f"{i:03}" + "x" * 997 for i in range(100)]
    response = post(org, "imap", {**IMAP, "folders": folders})
    assert response.status_code == 201, response.text
    assert response.json()["config"]["folders"] == folders


def test_one_sync_logs_a_bounded_number_of_lines_about_one_connection(
    org: Org,
    dovecot: DovecotServer,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    login = f"ana.{uuid.uuid4().hex[:8]}@imap.test"
    dovecot.add_user(login, "pw")
    missing = [f"Projects/Missing {i}" for i in range(100)]  # each one logged when skipped
    config = {"host": dovecot.host, "port": dovecot.port, "username": login, "password": "pw"}
    response = post(org, "imap", {**config, "security": "none", "folders": missing})
    assert response.status_code == 201, response.text
    caplog.set_level(logging.INFO)
    capsys.readouterr()
    org.sync(response.json()["id"])
    from_connectors = [r for r in caplog.records if r.name.startswith("connectors")]
    assert len(from_connectors) == settings.sync_log_lines_per_run == 20
    summary = capsys.readouterr().out  # the app's own events (structlog)
    assert "sync_log_capped" in summary and "dropped=80" in summary
    assert org.connection(response.json()["id"])["status"] == "idle"


def test_a_server_this_instance_never_connects_to_is_refused_when_saved(org: Org) -> None:
    refused = post(org, "imap", {**IMAP, "host": "10.0.0.5"})
    assert refused.status_code == 403, refused.text
    assert "non-public address" in refused.json()["error"]["message"]
    caldav = post(org, "caldav", {**CALDAV, "url": "http://169.254.169.254:8080/latest/"})
    assert caldav.status_code == 403, caldav.text
    created = post(org, "imap", IMAP)  # a name that does not resolve now is saved
    assert created.status_code == 201, created.text
    moved = org.client.patch(
        f"/api/v1/connections/{created.json()['id']}",
        json={"config": {"host": "192.168.1.1", "password": "pw"}},
        headers=org.as_admin(),
    )
    assert moved.status_code == 403 and "non-public address" in moved.text
