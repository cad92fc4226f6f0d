"""The identity side of the Microsoft emulator: consent, the token endpoint, revocation.

Authorization-code grant with PKCE, refresh-token grant with rotating refresh tokens,
revoked grants answered `invalid_grant` with AADSTS codes, an unsigned id_token and
client_info as Entra ID sends them. A grant remembers the scopes the user consented to: a
refresh asking for more is refused with AADSTS65001 ("The user or administrator has not
consented to use the application", https://login.microsoftonline.com/error?code=65001), as
Entra ID does for a permission added after the consent; access tokens carry their scopes,
which Graph checks.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from tests.emulators.microsoft_common import (
    RESERVED_SCOPES,
    User,
    b64url,
    iso,
    scope_names,
    unsigned_jwt,
)

AADSTS = {
    70008: "The provided authorization code or refresh token has expired due to inactivity.",
    50173: (
        "The provided grant has expired due to it being revoked, a fresh auth token is needed. "
        "The user might have changed or reset their password."
    ),
    50057: "The user account is disabled.",
    65001: "The user or administrator has not consented to use the application.",
}


class IdentitySide:
    lock: threading.RLock
    users: dict[str, User]
    tenant: str
    client_id: str
    client_secret: str
    access_token_seconds: int

    def __init__(self) -> None:
        self.codes: dict[str, dict[str, Any]] = {}
        self.refresh_tokens: dict[str, str] = {}  # live refresh token -> user email
        self.refresh_scopes: dict[str, frozenset[str]] = {}  # refresh token -> consented
        self.spent_refresh_tokens: set[str] = set()
        self.access_tokens: dict[str, str] = {}  # access token -> user email
        self.token_scopes: dict[str, frozenset[str]] = {}  # access token -> its scopes
        self.grants: list[tuple[str, str]] = []  # (grant type, refresh token used or "")

    @property
    def base(self) -> str:
        raise NotImplementedError

    def user(self, email: str) -> User:
        raise NotImplementedError

    # --- the test's side --------------------------------------------------------------------

    def consent(self, authorization_url: str, *, email: str | None = None) -> str:
        """What the user's browser ends on after consenting: the redirect URI with the code
        and state. `email` defaults to the login_hint."""
        query = {k: v[0] for k, v in parse_qs(urlsplit(authorization_url).query).items()}
        return self._authorize(query, email)

    def revoke(self, email: str, code: int = 50173) -> None:
        """The user's grants are refused from now on with AADSTS `code`."""
        with self.lock:
            self.user(email).revoked = code
            for token, owner in list(self.access_tokens.items()):
                if owner == email.lower():
                    del self.access_tokens[token]

    def expire_access_tokens(self) -> None:
        with self.lock:
            self.access_tokens.clear()

    def _authorize(self, query: dict[str, str], email: str | None) -> str:
        who = (email or query.get("login_hint") or "").lower()
        redirect = query["redirect_uri"]
        if who not in self.users:
            error = {"error": "access_denied", "error_description": "AADSTS50020: unknown user"}
            return f"{redirect}?{urlencode({**error, 'state': query.get('state', '')})}"
        code = secrets.token_urlsafe(24)
        with self.lock:
            self.codes[code] = {
                "email": who,
                "challenge": query.get("code_challenge"),
                "method": query.get("code_challenge_method"),
                "nonce": query.get("nonce"),
                "redirect_uri": redirect,
                "scope": query.get("scope", ""),
                "client_id": query.get("client_id"),
            }
        return f"{redirect}?{urlencode({'code': code, 'state': query.get('state', '')})}"

    # --- the server's side --------------------------------------------------------------------

    def openid_configuration(self, tenant: str) -> dict[str, Any]:
        root = f"{self.base}/{tenant}"
        return {
            "issuer": f"{root}/v2.0",
            "authorization_endpoint": f"{root}/oauth2/v2.0/authorize",
            "token_endpoint": f"{root}/oauth2/v2.0/token",
            "jwks_uri": f"{root}/discovery/v2.0/keys",
            "response_types_supported": ["code", "id_token", "code id_token"],
            "tenant_region_scope": "EU",
        }

    def token(self, tenant: str, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if form.get("client_id") != self.client_id or form.get("client_secret") != (
            self.client_secret
        ):
            return 401, _aad_error("invalid_client", 7000215, "Invalid client secret provided.")
        grant = form.get("grant_type")
        with self.lock:
            if grant == "authorization_code":
                found = self.codes.pop(form.get("code", ""), None)
                if found is None:
                    return 400, _aad_error("invalid_grant", 54005, "Code already redeemed.")
                verifier = form.get("code_verifier", "")
                digest = b64url(hashlib.sha256(verifier.encode()).digest())
                if found["method"] != "S256" or digest != found["challenge"]:
                    return 400, _aad_error("invalid_grant", 501481, "Code verifier mismatch.")
                if form.get("redirect_uri") != found["redirect_uri"]:
                    return 400, _aad_error("invalid_grant", 50148, "Redirect URI mismatch.")
                self.grants.append(("authorization_code", ""))
                consented = frozenset(scope_names(found["scope"]))
                return 200, self._issue(
                    tenant, found["email"], form, consented, nonce=found["nonce"]
                )
            if grant == "refresh_token":
                used = form.get("refresh_token", "")
                self.grants.append(("refresh_token", used))
                email = self.refresh_tokens.get(used)
                if email is None:
                    code = 70008 if used in self.spent_refresh_tokens else 9002313
                    return 400, _aad_error("invalid_grant", code, AADSTS.get(code, "Bad token."))
                user = self.users[email]
                if user.revoked is not None:
                    error = "interaction_required" if user.revoked == 50076 else "invalid_grant"
                    message = AADSTS.get(user.revoked, "Grant refused.")
                    return 400, _aad_error(error, user.revoked, message)
                consented = self.refresh_scopes.get(used, frozenset())
                if not scope_names(form.get("scope", "")) <= consented:
                    return 400, _aad_error("invalid_grant", 65001, AADSTS[65001])
                del self.refresh_tokens[used]  # rotation: the old one is spent
                self.spent_refresh_tokens.add(used)
                return 200, self._issue(tenant, email, form, consented, nonce=None)
        return 400, _aad_error("unsupported_grant_type", 70003, "Unsupported grant type.")

    def _issue(
        self,
        tenant: str,
        email: str,
        form: dict[str, str],
        consented: frozenset[str],
        *,
        nonce: str | None,
    ) -> dict[str, Any]:
        user = self.users[email]
        access = "at-" + secrets.token_urlsafe(24)
        refresh = "rt-" + secrets.token_urlsafe(24)
        asked = [s for s in form.get("scope", "").split() if s not in RESERVED_SCOPES]
        granted = [s for s in asked if s.rsplit("/", 1)[-1] in consented]
        self.access_tokens[access] = email
        self.token_scopes[access] = frozenset(s.rsplit("/", 1)[-1] for s in granted)
        self.refresh_tokens[refresh] = email
        self.refresh_scopes[refresh] = consented
        now = int(time.time())
        claims = {
            "iss": f"{self.base}/{tenant}/v2.0",
            "aud": self.client_id,
            "sub": user.oid,
            "oid": user.oid,
            "tid": self.tenant,
            "preferred_username": email,
            "name": user.name,
            "iat": now,
            "exp": now + 3600,
        }
        if nonce:
            claims["nonce"] = nonce
        return {
            "token_type": "Bearer",
            "scope": " ".join(granted),
            "expires_in": self.access_token_seconds,
            "ext_expires_in": self.access_token_seconds,
            "access_token": access,
            "refresh_token": refresh,
            "id_token": unsigned_jwt(claims),
            "client_info": b64url(json.dumps({"uid": user.oid, "utid": self.tenant}).encode()),
        }


def _aad_error(error: str, code: int, message: str) -> dict[str, Any]:
    return {
        "error": error,
        "error_description": f"AADSTS{code}: {message} Trace ID: {secrets.token_hex(8)}",
        "error_codes": [code],
        "timestamp": iso(datetime.now(UTC)),
        "trace_id": secrets.token_hex(8),
        "correlation_id": secrets.token_hex(8),
        "suberror": "bad_token" if code == 70008 else "",
    }
