"""Connections as the API reads and writes them; secrets are accepted, never returned."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, model_validator
from sqlalchemy.orm import Session

from app.chat import channels as chat_channels
from app.chat.schemas import ChannelRead
from app.connections import changes
from app.connections.changes import pending_view
from app.connections.models import ConnectionChange
from app.models import Connection, ConnectionStatus, utcnow
from app.providers import PROVIDERS, endpoint_fields
from app.schemas import Day, Id

IMAP_ENDPOINT = endpoint_fields("imap")
CALDAV_ENDPOINT = endpoint_fields("caldav")

Provider = Literal["imap", "caldav", "gmail", "google_calendar", "microsoft", "slack", "import"]

# What one connection may ask for. A sync reads each folder or calendar it names every run,
# and says so in the logs when one is missing: 100 is far above any real mailbox's need
MAX_NAMES = 100
# one IMAP folder name or CalDAV calendar name or path
Name = Annotated[str, Field(min_length=1, max_length=1000, pattern=r"^[^\x00-\x1f\x7f]+$")]
# a host name or IP address (IPv6 with or without brackets): no spaces or control characters
Host = Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[A-Za-z0-9._:\[\]%-]+$")]
# a login: any printable text
Login = Annotated[str, Field(min_length=1, max_length=320, pattern=r"^[^\x00-\x1f\x7f]+$")]
Url = Annotated[
    str, Field(min_length=1, max_length=2000, pattern=r"^https?://[^\s\x00-\x1f\x7f]+$")
]
Password = Annotated[SecretStr, Field(max_length=1000)]


class ImapConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: Host
    port: int = Field(993, ge=1, le=65535)
    username: Login
    password: Password = Field(description="write-only: stored encrypted, never returned")
    security: Literal["ssl", "starttls", "none"] = "ssl"
    folders: list[Name] | None = Field(
        None,
        max_length=MAX_NAMES,
        description="default: the inbox and the sent folder, found by SPECIAL-USE",
    )


_MOVES = (
    "changing it sends the credentials elsewhere: the password must be given again "
    "(else 422), and the sync starts afresh"
)


def _with_password(*fields: str) -> Any:
    """The rule of a PATCH that names where the credentials go (providers.endpoint_fields):
    the password comes with it, whatever the values (a stored secret is only ever sent where
    it was given). In the OpenAPI as `dependentRequired`, checked by the model alike."""

    def schema(schema: dict[str, Any]) -> None:
        schema["dependentRequired"] = {field: ["password"] for field in fields}

    return schema


class _NeedsPassword(BaseModel):
    @model_validator(mode="after")
    def _password_with_endpoint(self) -> _NeedsPassword:
        named = sorted(set(self.model_fields_set) & set(endpoint_fields(self._provider)))
        if named and "password" not in self.model_fields_set:
            raise ValueError(
                f"changing {', '.join(named)} needs the password again: stored credentials "
                "are only ever sent to the server and account they were given for"
            )
        return self

    _provider: ClassVar[str]


class ImapConfigUpdate(_NeedsPassword):
    model_config = ConfigDict(extra="forbid", json_schema_extra=_with_password(*IMAP_ENDPOINT))
    _provider: ClassVar[str] = "imap"

    host: Host | None = Field(None, description=_MOVES)
    port: int | None = Field(None, ge=1, le=65535, description=_MOVES)
    username: Login | None = Field(None, description=_MOVES)
    password: Password | None = Field(None, description="write-only; required with a move")
    security: Literal["ssl", "starttls", "none"] | None = Field(None, description=_MOVES)
    folders: list[Name] | None = Field(None, max_length=MAX_NAMES)


class CaldavConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: Url = Field(description="the server's CalDAV address (its root or the user's principal)")
    username: Login
    password: Password = Field(description="write-only: stored encrypted, never returned")
    calendars: list[Name] | None = Field(
        None,
        max_length=MAX_NAMES,
        description="calendar names or paths to sync; default: every event calendar",
    )


class CaldavConfigUpdate(_NeedsPassword):
    model_config = ConfigDict(extra="forbid", json_schema_extra=_with_password(*CALDAV_ENDPOINT))
    _provider: ClassVar[str] = "caldav"

    url: Url | None = Field(None, description=_MOVES)
    username: Login | None = Field(None, description=_MOVES)
    password: Password | None = Field(None, description="write-only; required with a move")
    calendars: list[Name] | None = Field(None, max_length=MAX_NAMES)


BOT_TOKEN = r"^xoxb-[A-Za-z0-9-]+$"


def _bot_token(value: SecretStr | None) -> SecretStr | None:
    if value is not None and not re.fullmatch(BOT_TOKEN, value.get_secret_value()):
        raise ValueError("a Slack bot token is xoxb- and letters, digits or - (docs/slack.md)")
    return value


# a private Slack app's bot token (about 60 characters); SecretStr takes no `pattern`, so
# the schema states it and the validator holds it
BotToken = Annotated[
    SecretStr,
    Field(min_length=10, max_length=500, json_schema_extra={"pattern": BOT_TOKEN}),
    AfterValidator(_bot_token),
]


class SlackConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    bot_token: BotToken = Field(
        description="write-only: the bot token (xoxb-…) of the workspace's own Slack app "
        "(docs/slack.md); stored encrypted, never returned. Or install Tally's app: GET "
        "/connections/oauth/slack/start"
    )


class SlackConfigUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    bot_token: BotToken | None = Field(None, description="write-only: a new bot token")


# provider -> (the config of POST /connections, the config of PATCH /connections/{id})
CONFIG_MODELS: dict[str, tuple[type[BaseModel], type[BaseModel]]] = {
    "imap": (ImapConfig, ImapConfigUpdate),
    "caldav": (CaldavConfig, CaldavConfigUpdate),
    "slack": (SlackConfig, SlackConfigUpdate),
}


def config_defaults(provider: str) -> dict[str, Any]:
    """The values a connection of `provider` has for the fields its config left out."""
    models = CONFIG_MODELS.get(provider)
    if models is None:
        return {}
    fields = models[0].model_fields.items()
    return {n: f.default for n, f in fields if not f.is_required() and f.default is not None}


def _one_of(which: int) -> dict[str, Any]:
    """The configs of the providers made through the API, for the OpenAPI document (each
    is validated against its provider's model by the route)."""
    return {"anyOf": [models[which].model_json_schema() for models in CONFIG_MODELS.values()]}


def _body_per_provider(schema: dict[str, Any]) -> None:
    """The OpenAPI of POST /connections: one variant per provider made here (`oneOf` on
    `provider`), each with the config it takes, so a client or a schema-driven test never
    pairs an IMAP provider with a CalDAV config. The other providers are not made here: the
    server answers them 400, naming the OAuth flow or `tally import`."""
    properties = schema["properties"]
    properties["config"] = {"type": "object", "description": "the provider's settings"}
    properties["provider"] = {
        "enum": list(CONFIG_MODELS),
        "description": "imap, caldav or slack (a pasted bot token; or GET "
        "/connections/oauth/slack/start); gmail, google_calendar and microsoft connections "
        "come from GET /connections/oauth/{google|microsoft}/start, imports from `tally "
        "import` (both answered 400 here)",
    }
    schema["oneOf"] = [
        {
            "properties": {"provider": {"const": name}, "config": models[0].model_json_schema()},
            "required": ["provider", "config"],
        }
        for name, models in CONFIG_MODELS.items()
    ]


class ConnectionCreate(BaseModel):
    model_config = ConfigDict(json_schema_extra=_body_per_provider)

    user_id: Id
    provider: Provider
    config: dict[str, Any] = Field(default_factory=dict, description="the provider's settings")


class ConnectionUpdate(BaseModel):
    config: dict[str, Any] = Field(
        description="settings to change, merged over the stored ones; changing where the "
        "credentials are sent needs them again",
        json_schema_extra=_one_of(1),
    )


class BackfillRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    from_: Day = Field(
        alias="from",
        description="the first day to fetch, YYYY-MM-DD (UTC); earlier than the day the "
        "connection's window starts now (`config.history_from`, else `backfill_days` before "
        "today), so never today or later: else 409. The day already set is accepted again "
        "and changes nothing.",
    )


class Stats(BaseModel):
    messages_seen: int
    messages_imported: int
    messages_filtered: int
    messages_failed: int
    events_seen: int
    activities_created: int


class ConnectionRead(BaseModel):
    id: int
    user_id: int
    provider: str
    status: ConnectionStatus = Field(
        description="what is happening now: `syncing` while a worker holds the connection "
        "(`last_error` then still tells how the previous run ended), `pending` when a run is "
        "queued, or when a worker stopped mid-run and another one takes it over"
    )
    syncing_since: datetime | None = Field(description="when the run under way began")
    last_synced_at: datetime | None = Field(description="when the last run ended well")
    last_error: str | None = Field(
        description="why the last run that ended did not end well (kept during the next run)"
    )
    last_error_at: datetime | None = Field(description="when that run ended")
    next_sync_at: datetime | None = Field(
        description="when the next run is due; while syncing, when the lease ends"
    )
    config: dict[str, Any] = Field(
        description="settings without any secret; `history_from` (YYYY-MM-DD): where a "
        "widened window starts (POST /connections/{id}/backfill)"
    )
    deviations: list[str] = Field(
        description="where this connection counts differently from the spec, and why (a "
        "narrower permission it was granted, as its provider's consent recorded it in "
        "`config.deviations`); empty when it counts exactly"
    )
    stats: Stats
    channels: list[ChannelRead] | None = Field(
        None,
        description="a chat connection (slack): the channels it has captured messages from, "
        "with how many and the latest, most recent first (at most 1,000); null for mail and "
        "calendar connections",
    )
    created_at: datetime

    @classmethod
    def of(
        cls,
        connection: Connection,
        waiting: Sequence[ConnectionChange] = (),
        channels: list[ChannelRead] | None = None,
    ) -> ConnectionRead:
        """The connection with the changes that wait for it (changes.py) applied."""
        view = pending_view(connection, waiting)
        status = view.status or current_status(connection, now=utcnow())
        syncing = status == ConnectionStatus.syncing
        return cls(
            id=connection.id,
            user_id=connection.user_id,
            provider=connection.provider,
            status=status,
            syncing_since=connection.sync_started_at if syncing else None,
            last_synced_at=connection.last_synced_at,
            last_error=view.last_error,
            last_error_at=connection.last_error_at if view.last_error else None,
            next_sync_at=view.next_sync_at,
            config=view.config,
            deviations=[str(d) for d in view.config.get("deviations") or ()],
            stats=Stats(
                messages_seen=connection.messages_seen,
                messages_imported=connection.messages_imported,
                messages_filtered=connection.messages_filtered,
                messages_failed=connection.messages_failed,
                events_seen=connection.events_seen,
                activities_created=connection.activities_created,
            ),
            channels=channels,
            created_at=connection.created_at,
        )


def read(session: Session, connections: Sequence[Connection]) -> list[ConnectionRead]:
    """As readers see them: with the changes queued for them (changes.py) and, for a chat
    connection, its channels, in one query each."""
    waiting = changes.pending(session, [c.id for c in connections])
    chats = [c.id for c in connections if getattr(PROVIDERS.get(c.provider), "chat", False)]
    channels = chat_channels.of_connections(session, chats)
    return [ConnectionRead.of(c, waiting.get(c.id, ()), channels.get(c.id)) for c in connections]


def plain_config(model: BaseModel) -> dict[str, Any]:
    """The config as stored: secrets unwrapped (they are split off and encrypted next)."""
    data = model.model_dump(exclude_unset=True)
    return {k: v.get_secret_value() if isinstance(v, SecretStr) else v for k, v in data.items()}


def current_status(connection: Connection, *, now: datetime) -> ConnectionStatus:
    """What is happening now: `syncing` while a lease holds; `pending` once a lease ended
    without its worker reporting back (a crashed or stopped worker: it is taken over)."""
    if connection.lease_owner is not None and connection.lease_until is not None:
        return (
            ConnectionStatus.syncing if connection.lease_until > now else ConnectionStatus.pending
        )
    return ConnectionStatus(connection.status)
