"""What each provider is, in one table: how its connections come to be, whether workers sync
it, and which config fields are secrets. Data only, below both app.connections (which reads
it to create and schedule connections) and app.sync (which builds the connectors), so neither
imports the other for it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Provider:
    name: str
    scheduled: bool  # synced by workers; file imports run from the CLI only
    consent: str | None = None  # the OAuth consent whose callback creates its connections
    secret_fields: tuple[str, ...] = ()  # config fields stored encrypted, never returned
    # The config fields that say where the secret is sent (server, port, transport, account).
    # A stored secret is bound to them: changing one needs every secret field given again,
    # or anyone allowed to edit the settings could point the sync, with the stored password,
    # at a server they run (docs/operations.md "Credentials are bound to their server").
    endpoint_fields: tuple[str, ...] = ()
    cli_only: bool = False  # made by `tally import`, never through the API
    # POST /connections/{id}/backfill reaches further back: every connector of the provider
    # fetches only the older stretch (connectors.base.WidensHistory; tests check they agree)
    widens: bool = False
    # made by its OAuth consent and also with POST /connections, its secret fields given
    # (Slack: a private app's bot token pasted by an admin)
    pasted: bool = False
    chat: bool = False  # it captures chat messages (app/chat): the connection lists its channels
    # the config field a consent fills that tells one user's accounts apart: a consent for
    # the same value reconnects that connection, another value makes another one
    identity: str = "account"
    # the account is an organization's (a Slack workspace): its first connection, made by an
    # admin, reads everything shared; a later install by another member reads only what
    # their own token sees (config `own_only`) (docs/slack.md)
    workspace: bool = False


PROVIDERS: dict[str, Provider] = {
    p.name: p
    for p in (
        Provider(
            "imap",
            scheduled=True,
            secret_fields=("password",),
            endpoint_fields=("host", "port", "security", "username"),
            widens=True,
        ),
        Provider(
            "caldav",
            scheduled=True,
            secret_fields=("password",),
            endpoint_fields=("url", "username"),
            widens=True,
        ),
        Provider("gmail", scheduled=True, consent="google", widens=True),
        Provider("google_calendar", scheduled=True, consent="google", widens=True),
        Provider("microsoft", scheduled=True, consent="microsoft", widens=True),
        # a workspace, installed once by an admin (OAuth) or a private app's bot token
        # pasted (docs/slack.md); activities go to whoever wrote, not to its owner
        Provider(
            "slack",
            scheduled=True,
            consent="slack",
            secret_fields=("bot_token",),
            pasted=True,
            chat=True,
            identity="team_id",
            workspace=True,
        ),
        Provider("import", scheduled=False, cli_only=True),
    )
}

SCHEDULED = frozenset(name for name, p in PROVIDERS.items() if p.scheduled)

# /connections/oauth/{consent}/start creates these providers' connections
CONSENTS: dict[str, tuple[str, ...]] = {}
for _provider in PROVIDERS.values():
    if _provider.consent is not None:
        CONSENTS[_provider.consent] = (*CONSENTS.get(_provider.consent, ()), _provider.name)


def secret_fields(name: str) -> tuple[str, ...]:
    provider = PROVIDERS.get(name)
    return provider.secret_fields if provider else ()


def endpoint_fields(name: str) -> tuple[str, ...]:
    provider = PROVIDERS.get(name)
    return provider.endpoint_fields if provider else ()


def not_made_by_the_api(name: str) -> str | None:
    """Why a connection of this provider cannot be created with POST /connections, if so."""
    provider = PROVIDERS[name]
    if provider.consent is not None and not provider.pasted:
        return (
            f"{name} connections are created by the OAuth flow: "
            f"GET /api/v1/connections/oauth/{provider.consent}/start"
        )
    if provider.cli_only:
        return "file imports are made with `tally import`, not through the API"
    return None


def widens(name: str) -> bool | None:
    """Whether a connection of `name` can reach further back; None when it has no window
    (a file import is read whole)."""
    provider = PROVIDERS[name]
    return provider.widens if provider.scheduled else None
