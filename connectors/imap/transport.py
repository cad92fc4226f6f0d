"""IMAPClient with its socket opened by connectors.netguard: checked addresses, a short
connect timeout, then the read timeout.

imapclient opens its socket inside imaplib (`IMAP4._create_socket`, called from the
constructor); these subclasses hand it a socket from `netguard.connect` instead, and wrap
TLS themselves for implicit TLS (port 993), as imapclient.tls does.
"""

from __future__ import annotations

import imaplib
import socket
import ssl
from collections.abc import Callable, Sequence
from typing import Any

from imapclient import IMAPClient, SocketTimeout

from connectors import netguard

Opener = Callable[[], socket.socket]


class ConnectTimeout(TimeoutError):
    """The server did not accept the TCP connection in time (not a slow answer later)."""


class _Plain(imaplib.IMAP4):
    def __init__(self, host: str, port: int, opener: Opener) -> None:
        self._opener = opener
        super().__init__(host, port)

    def _create_socket(self, timeout: float | None = None) -> socket.socket:
        return self._opener()


class _Tls(_Plain):
    def __init__(
        self, host: str, port: int, opener: Opener, context: ssl.SSLContext | None
    ) -> None:
        self.ssl_context = context or ssl.create_default_context()
        super().__init__(host, port, opener)

    def _create_socket(self, timeout: float | None = None) -> socket.socket:
        raw = self._opener()
        try:
            return self.ssl_context.wrap_socket(raw, server_hostname=self.host)
        except BaseException:
            raw.close()
            raise


class GuardedIMAPClient(IMAPClient):  # type: ignore[misc]  # imapclient is untyped
    """IMAPClient whose connection goes through netguard.connect(allowed=…); allowed=None
    connects anywhere (still with the separate connect timeout)."""

    def __init__(
        self,
        host: str,
        *,
        port: int,
        ssl: bool,
        ssl_context: ssl.SSLContext | None,
        connect_timeout: float,
        read_timeout: float,
        allowed: Sequence[str] | None,
    ) -> None:
        self._allowed = None if allowed is None else list(allowed)
        super().__init__(
            host,
            port=port,
            ssl=ssl,
            ssl_context=ssl_context,
            timeout=SocketTimeout(connect=connect_timeout, read=read_timeout),
        )

    def _open(self) -> socket.socket:
        timeout: Any = self._timeout
        try:
            if self._allowed is None:  # unguarded: a library user's own choice
                sock = socket.create_connection((self.host, self.port), timeout.connect)
                sock.settimeout(timeout.read)
                return sock
            return netguard.connect(
                self.host,
                self.port,
                allowed=self._allowed,
                connect_timeout=timeout.connect,
                read_timeout=timeout.read,
            )
        except TimeoutError as error:
            raise ConnectTimeout(str(error) or "connect timed out") from error

    def _create_IMAP4(self) -> imaplib.IMAP4:  # imapclient's name
        if self.ssl:
            return _Tls(self.host, self.port, self._open, self.ssl_context)
        return _Plain(self.host, self.port, self._open)
