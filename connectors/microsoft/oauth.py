"""The Microsoft 365 consent: msal's auth-code flow (PKCE, state, nonce) and what it yields.

`start` returns msal's flow dict (state, code_verifier, nonce, redirect URI…) for the app to
keep; `finish` redeems the code with it, reads the account's address and aliases from
`/me`, and returns the serialized token cache as the connection's secret. The consent's
config records the mail permission Entra ID granted (`mail_permission`) and, for
Mail.ReadBasic, where the connection therefore counts differently from the spec
(`deviations`, sentences shown on the connection). Both keys are always written, so a
reconnect with another permission replaces them.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import httpx2
import msal
import requests

from connectors.base import AuthExpired, ConnectorError
from connectors.microsoft.auth import (
    MAIL_READ,
    MAIL_READ_BASIC,
    MicrosoftApp,
    deviations_of,
    refusal,
)
from connectors.oauth import Consent, Started

PROVIDERS = ("microsoft",)


def _address(value: object) -> str | None:
    text = str(value or "").strip().lower()
    return text if "@" in text else None


def granted_permission(result: Mapping[str, Any], asked: str) -> str:
    """The mail permission the token answer says was granted (its `scope`: names, or Graph
    URLs ending in the name); what was asked for when the answer does not say."""
    names = {str(s).rsplit("/", 1)[-1].lower() for s in str(result.get("scope", "")).split()}
    if MAIL_READ.lower() in names:
        return MAIL_READ
    if MAIL_READ_BASIC.lower() in names:
        return MAIL_READ_BASIC
    return asked


def aliases_of(me: Mapping[str, Any], primary: str) -> tuple[str, ...]:
    """proxyAddresses (`SMTP:` primary, `smtp:` secondary; X500/SIP entries ignored)."""
    found: dict[str, None] = {}
    for entry in me.get("proxyAddresses") or []:
        kind, _, value = str(entry).partition(":")
        address = _address(value) if kind.lower() == "smtp" else None
        if address and address != primary:
            found[address] = None
    upn = _address(me.get("userPrincipalName"))
    if upn and upn != primary and not upn.endswith(".onmicrosoft.com"):
        found[upn] = None
    return tuple(found)


class MicrosoftOAuth:
    """The OAuthClient (connectors.oauth) of Microsoft 365."""

    def __init__(self, app: MicrosoftApp) -> None:
        self.app = app

    def __repr__(self) -> str:
        return f"MicrosoftOAuth({self.app!r})"

    def start(self, redirect_uri: str, *, login_hint: str | None = None) -> Started:
        client = self.app.msal_app(msal.SerializableTokenCache())
        with warnings.catch_warnings():
            # msal recommends response_mode=form_post; the callback is a GET (shared by every
            # provider) and the code is bound to this flow by PKCE, state and single use
            warnings.filterwarnings("ignore", message="response_mode='form_post'")
            flow: dict[str, Any] = client.initiate_auth_code_flow(
                self.app.scopes,
                redirect_uri=redirect_uri,
                login_hint=login_hint,
                prompt="select_account",
            )
        return Started(authorization_url=str(flow["auth_uri"]), state=str(flow["state"]), flow=flow)

    def finish(
        self, flow: Mapping[str, Any], params: Mapping[str, str], redirect_uri: str
    ) -> Consent:
        if "error" in params:
            description = params.get("error_description", "")[:200]
            raise AuthExpired(f"Microsoft answered {params['error']}: {description}".rstrip(": "))
        if flow.get("redirect_uri") != redirect_uri:
            raise AuthExpired("the consent was started for another callback address")
        cache = msal.SerializableTokenCache()
        client = self.app.msal_app(cache)
        try:
            result = client.acquire_token_by_auth_code_flow(dict(flow), dict(params))
        except ValueError:  # state mismatch, or a flow msal does not recognise
            raise AuthExpired("the consent does not match the one that was started") from None
        except requests.RequestException as error:
            raise ConnectorError(
                f"the Microsoft sign-in service could not be reached ({type(error).__name__})"
            ) from None
        if "access_token" not in result:
            raise refusal(result)
        accounts = client.get_accounts()
        if not accounts:
            raise ConnectorError("Microsoft returned no account with the tokens")
        me = self._me(str(result["access_token"]))
        account = _address(me.get("mail")) or _address(me.get("userPrincipalName"))
        if account is None:
            raise ConnectorError("this Microsoft account has no mailbox address")
        claims = result.get("id_token_claims") or {}
        permission = granted_permission(result, self.app.mail_permission)
        config: dict[str, Any] = {
            "mail_permission": permission,
            "deviations": deviations_of(permission),
        }
        if claims.get("tid"):
            config["tenant_id"] = str(claims["tid"])
        return Consent(
            account=account,
            secret={
                "token_cache": cache.serialize(),
                "home_account_id": accounts[0]["home_account_id"],
            },
            providers=PROVIDERS,
            aliases=aliases_of(me, account),
            config=config,
        )

    def _me(self, access_token: str) -> dict[str, Any]:
        url = f"{self.app.graph_url.rstrip('/')}/me"
        try:
            with httpx2.Client(verify=self.app.verify(), timeout=self.app.timeout) as http:
                response = http.get(
                    url,
                    params={"$select": "id,mail,userPrincipalName,proxyAddresses,displayName"},
                    headers={"Authorization": f"Bearer {access_token}"},
                )
        except httpx2.TransportError as error:
            raise ConnectorError(
                f"Microsoft Graph could not be reached ({type(error).__name__})"
            ) from None
        if response.status_code in (401, 403):
            raise AuthExpired(f"Microsoft Graph refused the new sign-in ({response.status_code})")
        if response.status_code != 200:
            raise ConnectorError(f"Microsoft Graph answered {response.status_code} for /me")
        body = response.json()
        return body if isinstance(body, dict) else {}
