"""Webhook signatures: the generic webhook's HMAC-SHA256 and Twilio's X-Twilio-Signature.

A few lines of `hmac` rather than the Twilio SDK (about 60 MB installed, for one function).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable
from urllib.parse import urlsplit, urlunsplit

REPLAY_WINDOW_SECONDS = 300


class BadSignature(Exception):
    """The request is not signed with the organization's secret, or is too old."""


def generic_signature(secret: str, timestamp: str, body: bytes) -> str:
    """`sha256=` + hex HMAC-SHA256 of `{timestamp}.{raw body}`."""
    mac = hmac.new(secret.encode("utf-8"), timestamp.encode("utf-8") + b"." + body, "sha256")
    return "sha256=" + mac.hexdigest()


def check_generic(
    secret: str, timestamp: str | None, signature: str | None, body: bytes, now: float
) -> None:
    """Raise BadSignature unless the signature matches and the timestamp is within 5 minutes."""
    if not timestamp or not signature:
        raise BadSignature("missing X-Tally-Timestamp or X-Tally-Signature")
    if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
        raise BadSignature("X-Tally-Timestamp is not unix seconds")
    if abs(now - int(timestamp)) > REPLAY_WINDOW_SECONDS:
        raise BadSignature("X-Tally-Timestamp is more than 5 minutes from now")
    expected = generic_signature(secret, timestamp, body)
    if not hmac.compare_digest(signature.strip().encode("utf-8"), expected.encode("utf-8")):
        raise BadSignature("the signature does not match")


def twilio_signature(auth_token: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    """Base64 HMAC-SHA1 of the full URL followed by each POST parameter's name and value,
    sorted by name (Twilio's documented algorithm)."""
    data = url + "".join(name + value for name, value in sorted(set(params)))
    mac = hmac.new(auth_token.encode("utf-8"), data.encode("utf-8"), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode("ascii")


def _port_variants(url: str) -> list[str]:
    """The URL as given, with the default port added, and without it (Twilio signs either,
    depending on how the callback URL was written)."""
    parts = urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme)
    host = parts.hostname or ""
    variants = [url]
    if default is not None and host:
        bare = host if ":" not in host else f"[{host}]"
        if parts.port is None:
            variants.append(urlunsplit(parts._replace(netloc=f"{bare}:{default}")))
        elif parts.port == default:
            variants.append(urlunsplit(parts._replace(netloc=bare)))
    return variants


def check_twilio(
    auth_token: str, urls: Iterable[str], params: list[tuple[str, str]], signature: str | None
) -> None:
    """Raise BadSignature unless `signature` signs the parameters for one of the candidate URLs
    (the URL as received, and as rebuilt from X-Forwarded-* headers behind a proxy)."""
    if not signature:
        raise BadSignature("missing X-Twilio-Signature")
    given = signature.strip().encode("utf-8")
    matched = False
    for url in urls:
        for variant in _port_variants(url):
            expected = twilio_signature(auth_token, variant, params).encode("ascii")
            matched |= hmac.compare_digest(given, expected)
    if not matched:
        raise BadSignature("the signature does not match")
