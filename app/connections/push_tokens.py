"""The tokens providers echo back with push notifications: "<connection id>.<HMAC-SHA256>".

A Google Calendar channel token or a Graph subscription's clientState names the connection it
was made for and proves it with an HMAC keyed by an instance secret, so a notification needs
no lookup table and a forged one is refused.
"""

from __future__ import annotations

import hashlib
import hmac

from pydantic import SecretStr


def _mac(scope: str, key: SecretStr | None, connection_id: int) -> str:
    secret = key.get_secret_value().encode() if key else b""
    message = f"tally:{scope}:{connection_id}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def sign(scope: str, key: SecretStr | None, connection_id: int) -> str:
    """The token for `connection_id` (83 characters at most: fits Google's 256, Graph's 128)."""
    return f"{connection_id}.{_mac(scope, key, connection_id)}"


def verify(scope: str, key: SecretStr | None, token: str | None) -> int | None:
    """The connection id `token` was signed for; None without a key or when it does not verify."""
    if not token or key is None:
        return None
    number, _, mac = token.partition(".")
    if not number.isdigit() or len(number) > 18:
        return None
    if not hmac.compare_digest(mac.encode(), _mac(scope, key, int(number)).encode()):
        return None
    return int(number)
