"""The Microsoft emulator's HTTP handler: requests to the emulator's methods, answers back."""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

from tests.emulators.microsoft_common import Answer


class Emulator(Protocol):
    def graph_request(
        self, method: str, path: str, query: dict[str, str], headers: dict[str, str], body: bytes
    ) -> Answer: ...

    def openid_configuration(self, tenant: str) -> dict[str, Any]: ...

    def _authorize(self, query: dict[str, str], email: str | None) -> str: ...

    def token(self, tenant: str, form: dict[str, str]) -> tuple[int, dict[str, Any]]: ...


class GraphHandler(BaseHTTPRequestHandler):
    """The emulator's HTTP side: Graph under /v1.0, the identity platform elsewhere."""

    emulator: Emulator
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        return

    def _answer(
        self, status: int, body: dict[str, Any] | None, headers: dict[str, str] | None = None
    ) -> None:
        data = json.dumps(body).encode() if body is not None else b""
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self, method: str) -> None:
        split = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        emulator = self.emulator
        path = split.path
        if path.startswith("/v1.0/"):
            status, extra, answer = emulator.graph_request(method, path, query, headers, body)
            self._answer(status, answer, extra)
            return
        parts = path.strip("/").split("/")
        if method == "GET" and path.endswith("/v2.0/.well-known/openid-configuration"):
            self._answer(200, emulator.openid_configuration(parts[0]))
        elif method == "GET" and path.endswith("/oauth2/v2.0/authorize"):
            self._answer(302, None, {"Location": emulator._authorize(query, None)})
        elif method == "POST" and path.endswith("/oauth2/v2.0/token"):
            form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
            status, answer = emulator.token(parts[0], form)
            self._answer(status, answer)
        else:
            self._answer(404, {"error": "not_found"})

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_DELETE(self) -> None:
        self._handle("DELETE")
