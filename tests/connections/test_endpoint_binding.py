"""A stored password is bound to where it was given for: moving a connection to another server,
port, transport or account needs the password again, or an admin could send the rep's
password to a server of their own by changing the port and pressing "sync"."""

from __future__ import annotations

import socket
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.api import Org
from tests.fixtures.dovecot import DovecotServer
from tests.sync.test_imap_sync import raw


class Listener:
    """A server on a free loopback port that greets like IMAP and keeps every byte sent to
    it: where a moved connection would log in."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        self.received = bytearray()
        self.sock.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(1)
                conn.sendall(b"* OK IMAP4rev1 ready\r\n")
                try:
                    while chunk := conn.recv(4096):
                        self.received += chunk
                        tag = chunk.split(b" ", 1)[0]
                        conn.sendall(tag + b" OK done\r\n")
                except OSError:
                    pass

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


@pytest.fixture
def listener() -> Iterator[Listener]:
    server = Listener()
    yield server
    server.close()


def login(dovecot: DovecotServer, password: str) -> str:
    name = f"ana.{uuid.uuid4().hex[:8]}@imap.test"
    dovecot.add_user(name, password)
    return name


def imap(org: Org, dovecot: DovecotServer, username: str, password: str) -> int:
    return create(org, "imap", dovecot.settings(username, password))


def create(org: Org, provider: str, config: dict[str, Any]) -> int:
    return org.connect("ana@acme.example", provider, config)


def patch(org: Org, connection_id: int, config: dict[str, Any]) -> Any:
    return org.client.patch(
        f"/api/v1/connections/{connection_id}", json={"config": config}, headers=org.as_admin()
    )


def test_an_admin_cannot_send_the_stored_password_to_another_port(
    org: Org, dovecot: DovecotServer, listener: Listener
) -> None:
    username = login(dovecot, "ana-secret-pw")
    connection_id = imap(org, dovecot, username, "ana-secret-pw")
    response = patch(org, connection_id, {"port": listener.port})
    assert response.status_code == 422, response.text
    message = response.json()["error"]["message"]
    assert "port" in message and "password" in message
    assert org.connection(connection_id)["config"]["port"] == dovecot.port
    org.sync(connection_id)
    assert b"ana-secret-pw" not in listener.received and listener.received == b""
    assert org.connection(connection_id)["status"] == "idle"


@pytest.mark.parametrize(
    "change",
    [
        {"host": "imap.acme.example"},
        {"security": "starttls"},
        {"username": "somebody.else@imap.test"},
        {"port": 1143, "folders": ["INBOX"]},
    ],
    ids=["host", "security", "username", "port"],
)
def test_each_imap_endpoint_field_needs_the_password_again(
    org: Org, dovecot: DovecotServer, change: dict[str, Any]
) -> None:
    connection_id = imap(org, dovecot, login(dovecot, "pw-1"), "pw-1")
    before = org.connection(connection_id)["config"]
    refused = patch(org, connection_id, change)
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["code"] == "validation_error"
    assert next(iter(change)) in refused.json()["error"]["message"]
    assert org.connection(connection_id)["config"] == before
    accepted = patch(org, connection_id, {**change, "password": "pw-2"})
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["config"] == {**before, **change}
    assert "pw-2" not in accepted.text


def test_naming_the_endpoint_needs_the_password_even_unchanged(
    org: Org, dovecot: DovecotServer
) -> None:
    """One rule, the OpenAPI's `dependentRequired`: a PATCH that names host, port, security
    or username gives the password with it, whatever the values; other settings need none."""
    connection_id = imap(org, dovecot, login(dovecot, "pw-1"), "pw-1")
    same = {"host": dovecot.host, "port": dovecot.port, "security": "none"}
    refused = patch(org, connection_id, same)
    assert refused.status_code == 422 and "needs the password" in refused.text
    assert patch(org, connection_id, {**same, "password": "pw-1"}).status_code == 200
    assert patch(org, connection_id, {"folders": ["INBOX"]}).status_code == 200


def test_a_moved_connection_logs_in_where_it_points_with_the_new_password(
    org: Org, dovecot: DovecotServer
) -> None:
    old = login(dovecot, "old-pw")
    connection_id = imap(org, dovecot, old, "old-pw")
    org.sync(connection_id)
    new = login(dovecot, "new-pw")
    dovecot.append(new, "INBOX", raw("Joe <joe@northwind.example>", "ana@acme.example"))
    assert patch(org, connection_id, {"username": new, "password": "new-pw"}).status_code == 200
    org.sync(connection_id)
    connection = org.connection(connection_id)
    assert (connection["status"], connection["last_error"]) == ("idle", None)
    assert connection["stats"]["messages_imported"] == 1


@pytest.mark.parametrize(
    "change",
    [{"url": "https://evil.example/dav/"}, {"username": "mallory"}],
    ids=["url", "username"],
)
def test_each_caldav_endpoint_field_needs_the_password_again(
    org: Org, change: dict[str, Any]
) -> None:
    config = {"url": "https://dav.acme.example/", "username": "ana", "password": "cal-pw"}
    connection_id = create(org, "caldav", config)
    refused = patch(org, connection_id, change)
    assert refused.status_code == 422, refused.text
    message = refused.json()["error"]["message"]
    assert next(iter(change)) in message and "password" in message
    assert org.connection(connection_id)["config"] == {
        "url": "https://dav.acme.example/",
        "username": "ana",
    }
    accepted = patch(org, connection_id, {**change, "password": "cal-pw-2"})
    assert accepted.status_code == 200, accepted.text
    assert patch(org, connection_id, {"calendars": ["Work"]}).status_code == 200
