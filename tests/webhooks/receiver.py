"""A real webhook receiver for the tests: an HTTP server on loopback in a thread of the test
process that verifies every request with the standardwebhooks library's verifier, as a
receiver would, and records what it heard. It can be down (its port closed: connection
refused), answer a chosen status, or hold a request until told to answer."""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook as Verifier
from standardwebhooks.webhooks import WebhookVerificationError


@dataclass(frozen=True)
class Heard:
    webhook_id: str
    headers: dict[str, str]
    body: bytes
    verified: bool
    payload: Any
    answered: int

    @property
    def type(self) -> str:
        return str(self.payload["type"]) if self.verified else "?"


class Receiver:
    """Start with `up()`; `down()` closes the port. `answer` is the status it answers with;
    `hold` makes each request wait until `release()`."""

    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = int(probe.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}/hooks/tally"
        self.secret: str | None = None
        self.answer = 200
        self.heard: list[Heard] = []
        self.arrived = threading.Condition()
        self.hold = False
        self._go = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def up(self, tls: ssl.SSLContext | None = None) -> Receiver:
        """Listen (over TLS with `tls`, a server context)."""
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                receiver.took(headers, body)
                if receiver.hold:
                    receiver._go.wait(60)
                with contextlib.suppress(OSError):  # the sender may be gone (killed)
                    self.send_response(receiver.answer)
                    self.send_header("content-length", "0")
                    self.end_headers()

            def log_message(self, *_: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def took(self, headers: dict[str, str], body: bytes) -> None:
        verified, payload = False, None
        if self.secret is not None:
            with contextlib.suppress(WebhookVerificationError):
                payload = Verifier(self.secret).verify(body, headers)
                verified = True
        heard = Heard(headers.get("webhook-id", ""), headers, body, verified, payload, self.answer)
        with self.arrived:
            self.heard.append(heard)
            self.arrived.notify_all()

    def release(self) -> None:
        self._go.set()

    def down(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Heard]:
        with self.arrived:
            if not self.arrived.wait_for(lambda: len(self.heard) >= count, timeout):
                raise TimeoutError(f"heard {len(self.heard)} of {count} requests")
            return list(self.heard)

    def delivered(self) -> list[Heard]:
        """What was answered 2xx, the requests that count as delivered."""
        return [h for h in self.heard if 200 <= h.answered < 300]

    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(h.body) for h in self.delivered()]
