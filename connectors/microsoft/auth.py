"""MSAL for a connection: the app registration, the per-connection token cache, and refusals
translated into messages a person understands.

Each connection's secret holds `{"token_cache": <serialized SerializableTokenCache>,
"home_account_id": ...}`. `GraphAuth` builds the msal app from it lazily (msal fetches the
authority's OpenID configuration when the app is built: never inside a database
transaction), acquires tokens silently (a cached access token, or the refresh token in the
cache, which Entra ID rotates), and hands the changed cache back through `fresh_secret()`:
the sync runner stores it in the transaction of the page, so only the worker holding the
connection's lease ever writes it.
"""

from __future__ import annotations

import contextlib
import json
import re
import ssl
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import msal
import requests

from connectors.base import AuthExpired, ConnectorError
from connectors.microsoft.http import GRAPH_URL

# The mail permission a consent asks for (docs/microsoft.md, "Scopes"): Mail.Read (the default)
# lets Tally read a received message's headers, which say whether it is automated (List-Id,
# Precedence, Auto-Submitted…); Mail.ReadBasic gives every field the delta pages carry but no
# header, body, attachment or extended property ("except for body, bodyPreview, uniqueBody,
# attachments, extensions, and any extended properties",
# https://learn.microsoft.com/graph/permissions-reference#mailreadbasic), so mail told
# automated only by its headers counts as a person's (READ_BASIC_DEVIATION).
MAIL_READ = "Mail.Read"
MAIL_READ_BASIC = "Mail.ReadBasic"
MAIL_PERMISSIONS = (MAIL_READ, MAIL_READ_BASIC)
READ_BASIC_DEVIATION = (
    "Mail marked as automated only by its List-Id, List-Unsubscribe, Precedence or "
    "Auto-Submitted headers (newsletters, notifications, auto-replies) counts as customer "
    "email, and its sender as a contact, because this connection was granted Microsoft's "
    "Mail.ReadBasic permission, which gives Tally no message headers; connect again with "
    "Mail.Read to count it exactly."
)
# Calendars.Read: calendarView and the series masters. User.Read: /me (address, aliases).
# offline_access, openid and profile are added by msal itself.
OTHER_SCOPES = ("Calendars.Read", "User.Read")
GRAPH_SCOPES = (MAIL_READ, *OTHER_SCOPES)


def granted_mail_permission(config: Mapping[str, Any]) -> str:
    """The mail permission a connection's consent recorded in its config; a connection made
    before the consent recorded it was granted Mail.ReadBasic (the only one asked then)."""
    found = config.get("mail_permission")
    return str(found) if found in MAIL_PERMISSIONS else MAIL_READ_BASIC


def cached_mail_permission(secret: Mapping[str, Any]) -> str | None:
    """The mail permission the connection's refresh token was granted, as msal's token cache
    records it (a refresh token's `target`: the scopes of the answer that issued it); None
    when the cache does not say."""
    try:
        cache = json.loads(str(secret.get("token_cache") or "{}"))
    except ValueError:
        return None
    home = secret.get("home_account_id")
    names: set[str] = set()
    tokens = cache.get("RefreshToken") if isinstance(cache, dict) else None
    for entry in (tokens or {}).values():
        if isinstance(entry, dict) and (not home or entry.get("home_account_id") == home):
            names |= {s.rsplit("/", 1)[-1] for s in str(entry.get("target", "")).split()}
    if MAIL_READ in names:
        return MAIL_READ
    if MAIL_READ_BASIC in names:
        return MAIL_READ_BASIC
    return None


def deviations_of(mail_permission: str) -> list[str]:
    """Where a connection with this permission counts differently from the spec."""
    return [READ_BASIC_DEVIATION] if mail_permission == MAIL_READ_BASIC else []


_AADSTS = re.compile(r"AADSTS(\d+)")

# AADSTS codes -> what happened, in words (https://login.microsoftonline.com/error?code=N)
_REASONS: dict[tuple[int, ...], str] = {
    (50173, 50133, 50055, 50144): "the password was changed or reset since Tally was connected",
    (50057,): "the Microsoft account is disabled",
    (50053,): "the Microsoft account is locked",
    (70008, 700082, 700084, 70043): "the Microsoft sign-in expired after a long time unused",
    (65001, 65004, 500011): "the consent given to Tally was revoked or is missing",
    (50076, 50079, 50158, 53003, 530003, 50074): (
        "Microsoft requires the user to sign in again (multi-factor or an access policy)"
    ),
    (50034, 50020, 50059, 90072): "the Microsoft account no longer exists in its organization",
    (9002313, 54005, 70000): "the stored Microsoft sign-in is no longer valid",
}
# codes that are the instance's problem (app registration), not the user's
_INSTANCE = {7000215, 7000222, 700016, 7000112, 700054, 50011, 9002331}
_TRANSIENT_ERRORS = {"temporarily_unavailable", "server_error"}


@dataclass(frozen=True, slots=True)
class MicrosoftApp:
    """The app registration Tally signs in with, and where it talks to."""

    client_id: str
    client_secret: str
    authority: str = "https://login.microsoftonline.com/common"
    graph_url: str = GRAPH_URL
    ca_bundle: str | None = None  # a private CA (a TLS-inspecting proxy, a test authority)
    timeout: float = 60.0
    mail_permission: str = MAIL_READ  # what new consents ask for (MAIL_PERMISSIONS)

    def __post_init__(self) -> None:
        if self.mail_permission not in MAIL_PERMISSIONS:
            raise ValueError(f"unknown Microsoft mail permission {self.mail_permission!r}")

    def __repr__(self) -> str:  # never show the secret
        return f"MicrosoftApp({self.client_id!r}, authority={self.authority!r})"

    @property
    def scopes(self) -> list[str]:
        """The Graph scopes new consents ask for, as msal wants them."""
        return self.scopes_for(self.mail_permission)

    def scopes_for(self, mail_permission: str) -> list[str]:
        """The Graph scopes of a connection granted `mail_permission`, as msal wants them:
        the Graph resource + the permission name."""
        parts = urlsplit(self.graph_url)
        names = (mail_permission, *OTHER_SCOPES)
        return [f"{parts.scheme}://{parts.netloc}/{name}" for name in names]

    def verify(self) -> ssl.SSLContext | bool:
        """What the Graph client verifies TLS with."""
        if self.ca_bundle:
            return ssl.create_default_context(cafile=self.ca_bundle)
        return True

    def msal_app(self, cache: msal.SerializableTokenCache) -> msal.ConfidentialClientApplication:
        """Fetches the authority's OpenID configuration: call outside any transaction."""
        try:
            return msal.ConfidentialClientApplication(
                self.client_id,
                client_credential=self.client_secret,
                authority=self.authority,
                token_cache=cache,
                http_client=_Session(self.ca_bundle, self.timeout),
                instance_discovery=False,  # the authority is configured, not discovered
            )
        except (requests.RequestException, ValueError) as error:
            raise ConnectorError(
                f"the Microsoft sign-in service could not be reached ({type(error).__name__})"
            ) from None


class _Session(requests.Session):
    """A requests session that always passes its own `verify` and `timeout`: requests lets
    REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override `Session.verify` (msal only sets that), and
    has no default timeout."""

    def __init__(self, ca_bundle: str | None, timeout: float) -> None:
        super().__init__()
        self.verify = ca_bundle or True
        self._timeout = timeout

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("verify", self.verify)
        kwargs.setdefault("timeout", self._timeout)
        return super().request(method, url, *args, **kwargs)


def refusal(result: Mapping[str, Any]) -> ConnectorError:
    """msal's error dict -> AuthExpired (the user must reconnect) or ConnectorError."""
    error = str(result.get("error", ""))
    codes = [int(c) for c in result.get("error_codes") or [] if str(c).isdigit()]
    if not codes:
        codes = [int(c) for c in _AADSTS.findall(str(result.get("error_description", "")))]
    code = codes[0] if codes else None
    tag = f"AADSTS{code}" if code is not None else error or "unknown error"
    if error in _TRANSIENT_ERRORS:
        return ConnectorError(f"the Microsoft sign-in service is unavailable ({tag}); retrying")
    if error == "invalid_client" or (code is not None and code in _INSTANCE):
        return ConnectorError(
            f"Microsoft refused this Tally instance's app registration ({tag}): an administrator "
            "must check the Microsoft client id and secret"
        )
    reason = next((text for known, text in _REASONS.items() if code in known), None)
    if reason is None:
        reason = (
            "Microsoft asks the user to sign in again"
            if error in ("interaction_required", "consent_required", "login_required")
            else "Microsoft refused the stored sign-in (consent revoked, password reset or "
            "account disabled)"
        )
    return AuthExpired(f"{reason} ({tag}); connect Microsoft 365 again")


class GraphAuth:
    """Access tokens for one connection, from its own MSAL token cache, for the scopes its
    consent granted (asking for more would be refused: AADSTS65001)."""

    def __init__(
        self, app: MicrosoftApp, secret: Mapping[str, Any], *, mail_permission: str | None = None
    ) -> None:
        self.app = app
        self.scopes = app.scopes_for(mail_permission or app.mail_permission)
        self._cache = msal.SerializableTokenCache()
        serialized = secret.get("token_cache")
        if serialized:
            with contextlib.suppress(ValueError):  # unreadable: token() asks for a reconnect
                self._cache.deserialize(str(serialized))
        self._home = secret.get("home_account_id")
        self._msal: msal.ConfidentialClientApplication | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:  # never show tokens
        return f"GraphAuth({self.app!r})"

    def token(self) -> str:
        return self._acquire(force_refresh=False)

    def refresh(self) -> str:
        return self._acquire(force_refresh=True)

    def _acquire(self, *, force_refresh: bool) -> str:
        with self._lock:
            if self._msal is None:
                self._msal = self.app.msal_app(self._cache)
            accounts = self._msal.get_accounts()
            account = next(
                (a for a in accounts if a.get("home_account_id") == self._home),
                accounts[0] if accounts and not self._home else None,
            )
            if account is None:
                raise AuthExpired("no Microsoft sign-in is stored; connect Microsoft 365 again")
            try:
                result = self._msal.acquire_token_silent_with_error(
                    self.scopes, account=account, force_refresh=force_refresh
                )
            except requests.RequestException as error:
                raise ConnectorError(
                    f"the Microsoft sign-in service could not be reached ({type(error).__name__})"
                ) from None
            if not result:
                raise AuthExpired(
                    "the stored Microsoft sign-in has no usable token; connect Microsoft 365 again"
                )
            if "access_token" not in result:
                raise refusal(result)
            return str(result["access_token"])

    def fresh_secret(self) -> dict[str, Any] | None:
        """The serialized cache when it changed since the last call (a rotated refresh token,
        a new access token), else None."""
        with self._lock:
            if not self._cache.has_state_changed:
                return None
            self._cache.has_state_changed = False
            return {"token_cache": self._cache.serialize()}
