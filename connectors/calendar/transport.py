"""A requests adapter whose every connection goes through connectors.netguard.

The check runs where urllib3 opens the socket (`HTTPConnection._new_conn`), so it covers the
configured URL, absolute hrefs a server answers with and redirects alike, and the address
checked is the address connected to. requests' (connect, read) timeout tuple keeps the two
apart: urllib3 passes the connect one here and sets the read one on the socket afterwards.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NameResolutionError, NewConnectionError

from connectors import netguard


class _Guarded:
    """Mixed into urllib3's connections: `allowed` is set on the class made per adapter."""

    allowed: tuple[str, ...] = ()

    def _new_conn(self: Any) -> socket.socket:
        timeout = self.timeout if isinstance(self.timeout, int | float) else 10.0
        try:
            return netguard.connect(
                self._dns_host,
                self.port,
                allowed=self.allowed,
                connect_timeout=timeout,
                read_timeout=timeout,  # urllib3 sets the read timeout before reading
            )
        except socket.gaierror as error:
            raise NameResolutionError(self.host, self, error) from error
        except TimeoutError as error:
            raise ConnectTimeoutError(
                self, f"Connection to {self.host} timed out. (connect timeout={timeout})"
            ) from error
        except OSError as error:
            raise NewConnectionError(
                self, f"Failed to establish a new connection: {error}"
            ) from error


class GuardedAdapter(HTTPAdapter):
    """Mount on http:// and https://; BlockedAddress propagates out of Session.request."""

    def __init__(self, allowed: Sequence[str]) -> None:
        rules = tuple(allowed)
        http = type("GuardedHTTPConnection", (_Guarded, HTTPConnection), {"allowed": rules})
        https = type("GuardedHTTPSConnection", (_Guarded, HTTPSConnection), {"allowed": rules})
        self._pools = {
            "http": type("GuardedHTTPPool", (HTTPConnectionPool,), {"ConnectionCls": http}),
            "https": type("GuardedHTTPSPool", (HTTPSConnectionPool,), {"ConnectionCls": https}),
        }
        super().__init__(max_retries=0)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = self._pools
