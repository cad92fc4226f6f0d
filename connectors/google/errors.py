"""Google's errors as the contract's (connectors.base): what a rate limit asks to wait, what
a refusal means. Shared by the Gmail and Calendar connectors and the OAuth client."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httplib2
from google.auth.exceptions import RefreshError, TransportError
from googleapiclient.errors import HttpError

from connectors.base import AuthExpired, ConnectorError, RateLimited

REVOKED = "Google access was revoked or expired: reconnect"
RATE_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded", "quotaExceeded"})
# Gmail's 429 has no Retry-After header: "User-rate limit exceeded.  Retry after
# 2024-11-12T11:16:42.247Z" (googleapis/google-api-ruby-client#20544, twentyhq/twenty#17850)
_RETRY_AT = re.compile(
    r"Retry after (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d))", re.IGNORECASE
)


class GoogleError(ConnectorError):
    def __init__(self, message: str, status: int = 0, reason: str = "") -> None:
        super().__init__(message)
        self.status, self.reason = status, reason


def _error_body(error: HttpError) -> tuple[str, str]:
    """(reason, message) of a Google error body."""
    try:
        body = json.loads(error.content.decode("utf-8", "replace"))
    except (ValueError, AttributeError):
        return "", ""
    inner = body.get("error") if isinstance(body, dict) else None
    if isinstance(inner, str):  # the token endpoint: {"error": "invalid_grant", ...}
        return inner, str(body.get("error_description", ""))
    if not isinstance(inner, dict):
        return "", ""
    reasons = [e.get("reason", "") for e in inner.get("errors", []) if isinstance(e, dict)]
    return (reasons[0] if reasons else str(inner.get("status", ""))), str(inner.get("message", ""))


def _header_delay(headers: Mapping[str, str] | None) -> float | None:
    value = (headers or {}).get("retry-after", "")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        try:
            moment = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max((moment - datetime.now(UTC)).total_seconds(), 0.0)


def retry_after(error: HttpError, default: float) -> float:
    """Seconds until a rate-limited request may be sent again: the Retry-After header
    (Calendar), else the time Gmail names in its error message, else `default`."""
    delay = _header_delay(error.resp)
    if delay is not None:
        return delay
    content = error.content if isinstance(error.content, bytes) else b""
    found = _RETRY_AT.search(content.decode("utf-8", "replace"))
    if found is None:
        return default
    try:
        moment = datetime.fromisoformat(found.group(1).replace("Z", "+00:00"))
    except ValueError:
        return default
    return max((moment - datetime.now(UTC)).total_seconds(), 0.0)


def is_rate_limit(error: HttpError) -> bool:
    status = error.resp.status
    reason, _ = _error_body(error)
    return status == 429 or (status == 403 and reason in RATE_REASONS)


def translate(error: BaseException, what: str) -> ConnectorError:
    """An exception of the Google libraries as one of the contract's errors."""
    if isinstance(error, ConnectorError):
        return error
    if isinstance(error, RefreshError):
        text = str(error)
        if "invalid_grant" in text or "invalid_client" in text or "unauthorized" in text:
            return AuthExpired(REVOKED)
        return ConnectorError(f"Google did not refresh the access token ({what})")
    if isinstance(error, HttpError):
        status = error.resp.status
        reason, message = _error_body(error)
        if status == 401:
            return AuthExpired(REVOKED)
        if is_rate_limit(error):
            return RateLimited(retry_after(error, 60.0), f"Google rate limit on {what} ({reason})")
        if status == 403 and reason in (
            "insufficientPermissions",
            "forbidden",
            "PERMISSION_DENIED",
        ):
            return AuthExpired(f"Google refused {what}: the consent lacks a permission; reconnect")
        detail = f": {message}" if message else ""
        return GoogleError(f"Google answered {status} to {what}{detail}", status, reason)
    if isinstance(error, TransportError | httplib2.HttpLib2Error | OSError | socket.timeout):
        return ConnectorError(f"Google could not be reached ({what}): {type(error).__name__}")
    return ConnectorError(f"Google call failed ({what}): {type(error).__name__}")
