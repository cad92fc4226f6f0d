"""A rep's IMAP or CalDAV settings cannot reach the instance's own network: non-public
addresses are refused when connecting, before any packet is sent, with one message whatever
the port would have answered; listed hosts and networks work; connects give up quickly."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.config import settings
from connectors.base import ConnectorError
from connectors.calendar.caldav import CalDavConnector
from connectors.imap import ImapConnector
from connectors.netguard import BlockedAddress, check_host, connect
from tests.api import make_org
from tests.fixtures.dovecot import DovecotServer
from tests.fixtures.radicale import RadicaleServer

REFUSED = "this instance does not connect there"
NOT_PUBLIC = [
    "127.0.0.1",
    "127.1.2.3",
    "::1",
    "169.254.169.254",  # cloud metadata
    "10.1.2.3",
    "172.16.5.4",
    "192.168.1.10",
    "100.64.0.1",  # carrier-grade NAT
    "0.0.0.0",
    "224.0.0.1",
    "240.0.0.1",
    "::ffff:127.0.0.1",  # IPv4-mapped
    "::ffff:169.254.169.254",
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    "2002:7f00:1::1",  # 6to4 of 127.0.0.1
    "fe80::1",
    "fd12:3456::1",
    "::",
    "localhost",  # a name resolving to loopback
    "LocalHost.",
]


@pytest.mark.parametrize("host", NOT_PUBLIC)
def test_non_public_addresses_are_refused_by_default(host: str) -> None:
    with pytest.raises(BlockedAddress) as refused:
        check_host(host, 993, [])
    assert "TALLY_ALLOWED_PRIVATE_HOSTS" in str(refused.value)


@pytest.mark.parametrize("host", ["8.8.8.8", "2001:4860:4860::8888", "1.1.1.1"])
def test_public_addresses_pass(host: str) -> None:
    check_host(host, 993, [])


def test_listed_hosts_and_networks_are_allowed_and_nothing_else() -> None:
    check_host("127.0.0.1", 993, ["127.0.0.0/8"])
    check_host("10.20.30.40", 993, ["10.20.0.0/16"])
    check_host("localhost", 993, ["LOCALHOST"])
    check_host("::1", 993, ["::1/128"])
    check_host("127.0.0.1", 993, ["127.0.0.1"])  # a bare address is a /32
    for host, allowed in (
        ("10.21.0.1", ["10.20.0.0/16"]),
        ("127.0.0.2", ["127.0.0.1/32"]),
        ("169.254.169.254", ["localhost", "10.0.0.0/8"]),
        ("::ffff:127.0.0.1", ["::1/128"]),
    ):
        with pytest.raises(BlockedAddress):
            check_host(host, 993, allowed)


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.5)
    yield server
    server.close()


def test_a_refused_target_is_never_contacted(listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    with pytest.raises(BlockedAddress):
        connect("127.0.0.1", port, allowed=[], connect_timeout=5, read_timeout=5)
    with pytest.raises(TimeoutError):
        listener.accept()  # nothing arrived
    sock = connect("127.0.0.1", port, allowed=["127.0.0.1/32"], connect_timeout=5, read_timeout=7)
    try:
        listener.accept()[0].close()
        assert sock.gettimeout() == 7  # the read timeout, once connected
    finally:
        sock.close()


@pytest.fixture
def unanswered() -> Iterator[int]:
    """A port whose SYNs go unanswered: a listener with a full accept queue."""
    server = socket.create_server(("127.0.0.1", 0), backlog=0)
    port = server.getsockname()[1]
    filler = socket.create_connection(("127.0.0.1", port), timeout=1)
    yield port
    filler.close()
    server.close()


def test_an_unanswered_connect_gives_up_after_the_connect_timeout(unanswered: int) -> None:
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        connect(
            "127.0.0.1", unanswered, allowed=["127.0.0.1/32"], connect_timeout=0.3, read_timeout=60
        )
    assert time.monotonic() - started < 3


def test_imap_connect_timeout_is_separate_from_the_read_timeout(unanswered: int) -> None:
    connector = ImapConnector(
        host="127.0.0.1",
        port=unanswered,
        username="u",
        password="p",
        security="none",
        timeout=60,
        connect_timeout=0.3,
        allowed_hosts=["127.0.0.1/32"],
    )
    started = time.monotonic()
    with pytest.raises(ConnectorError, match=r"did not accept a connection in 0\.3s"):
        connector.check()
    assert time.monotonic() - started < 3


def _imap(dovecot: DovecotServer, port: int, allowed: list[str] | None) -> ImapConnector:
    login = f"rep-{uuid.uuid4().hex[:8]}@example.com"
    dovecot.add_user(login, "pw")
    return ImapConnector(
        host=dovecot.host,
        port=port,
        username=login,
        password="pw",
        security="none",
        allowed_hosts=allowed,
    )


def _closed_port() -> int:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port: int = probe.getsockname()[1]
    probe.close()
    return port


def test_imap_to_a_refused_address_says_the_same_whatever_the_port(dovecot: DovecotServer) -> None:
    messages = []
    for port in (dovecot.port, _closed_port()):
        with pytest.raises(ConnectorError) as refused:
            _imap(dovecot, port, []).check()
        messages.append(str(refused.value))
    assert messages[0] == messages[1] and REFUSED in messages[0]
    _imap(dovecot, dovecot.port, ["127.0.0.0/8"]).check()  # an allowed network works


def test_caldav_to_a_refused_address_is_not_contacted(radicale: RadicaleServer) -> None:
    radicale.add_user("ann", "ann-secret")
    radicale.make_calendar("ann", "sales", "Sales")
    with pytest.raises(ConnectorError, match=REFUSED):
        CalDavConnector(radicale.url, "ann", "ann-secret", allowed_hosts=[]).check()
    CalDavConnector(radicale.url, "ann", "ann-secret", allowed_hosts=["127.0.0.1/32"]).check()


def test_a_caldav_server_cannot_redirect_the_sync_into_the_private_network() -> None:
    class Redirect(BaseHTTPRequestHandler):
        def do_PROPFIND(self) -> None:
            self.send_response(301)
            self.send_header("Location", "http://169.254.169.254/latest/meta-data/")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Redirect)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/dav/"
        with pytest.raises(ConnectorError, match=REFUSED) as refused:
            CalDavConnector(url, "ann", "pw", allowed_hosts=["127.0.0.1/32"]).check()
        assert "169.254.169.254" in str(refused.value)
    finally:
        server.shutdown()
        server.server_close()


# --- through the app: the instance setting, checked when the worker connects ------------------


@pytest.mark.parametrize("host", ["127.0.0.1", "::1", "169.254.169.254", "10.0.0.1", "localhost"])
def test_a_synced_connection_to_a_private_address_fails_with_a_clear_error(
    client: TestClient, monkeypatch: pytest.MonkeyPatch, host: str
) -> None:
    org = make_org(client)
    org.user("ana@acme.example")
    # saved while allowed (or before the name pointed inside): the check at connect time holds
    monkeypatch.setattr(settings, "allowed_private_hosts", ["0.0.0.0/0", "::/0", "localhost"])
    config = {"host": host, "port": 993, "username": "ana", "password": "pw"}
    connection_id = org.connect("ana@acme.example", "imap", config)
    monkeypatch.setattr(settings, "allowed_private_hosts", [])
    started = time.monotonic()
    org.sync(connection_id)
    assert time.monotonic() - started < 10
    shown = org.connection(connection_id)
    assert shown["status"] == "error"
    assert REFUSED in shown["last_error"] and "TALLY_ALLOWED_PRIVATE_HOSTS" in shown["last_error"]
    for tell in ("refused the connection", "did not answer", "timed out", "dropped"):
        assert tell not in shown["last_error"]


def test_an_allowed_network_syncs(
    client: TestClient, dovecot: DovecotServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings, "allowed_private_hosts", ["127.0.0.0/8"])
    org = make_org(client)
    org.user("ana@acme.example")
    login = f"ana-{uuid.uuid4().hex[:8]}@imap.test"
    dovecot.add_user(login, "pw")
    connection_id = org.connect("ana@acme.example", "imap", dovecot.settings(login, "pw"))
    org.sync(connection_id)
    shown = org.connection(connection_id)
    assert shown["status"] == "idle" and shown["last_error"] is None
