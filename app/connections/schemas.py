"""Connections as the API reads and writes them; secrets are accepted, never returned."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from app.models import Connection, ConnectionStatus

Provider = Literal["imap", "caldav", "gmail", "google_calendar", "microsoft", "import"]


class ImapConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = Field(min_length=1, max_length=255)
    port: int = Field(993, ge=1, le=65535)
    username: str = Field(min_length=1, max_length=320)
    password: SecretStr = Field(description="write-only: stored encrypted, never returned")
    security: Literal["ssl", "starttls", "none"] = "ssl"
    folders: list[str] | None = Field(
        None, description="default: the inbox and the sent folder, found by SPECIAL-USE"
    )


class ImapConfigUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str | None = Field(None, min_length=1, max_length=255)
    port: int | None = Field(None, ge=1, le=65535)
    username: str | None = Field(None, min_length=1, max_length=320)
    password: SecretStr | None = None
    security: Literal["ssl", "starttls", "none"] | None = None
    folders: list[str] | None = None


class CaldavConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        min_length=1,
        max_length=2000,
        pattern=r"^https?://",
        description="the server's CalDAV address (its root or the user's principal)",
    )
    username: str = Field(min_length=1, max_length=320)
    password: SecretStr = Field(description="write-only: stored encrypted, never returned")
    calendars: list[str] | None = Field(
        None, description="calendar names or paths to sync; default: every event calendar"
    )


class CaldavConfigUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(None, min_length=1, max_length=2000, pattern=r"^https?://")
    username: str | None = Field(None, min_length=1, max_length=320)
    password: SecretStr | None = None
    calendars: list[str] | None = None


class ConnectionCreate(BaseModel):
    user_id: int
    provider: Provider
    config: dict[str, Any] = Field(default_factory=dict)


class ConnectionUpdate(BaseModel):
    config: dict[str, Any]


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
    status: ConnectionStatus
    last_synced_at: datetime | None
    last_error: str | None
    next_sync_at: datetime | None
    config: dict[str, Any] = Field(description="settings without any secret")
    stats: Stats
    created_at: datetime

    @classmethod
    def of(cls, connection: Connection) -> ConnectionRead:
        return cls(
            id=connection.id,
            user_id=connection.user_id,
            provider=connection.provider,
            status=ConnectionStatus(connection.status),
            last_synced_at=connection.last_synced_at,
            last_error=connection.last_error,
            next_sync_at=connection.next_sync_at,
            config=connection.config,
            stats=Stats(
                messages_seen=connection.messages_seen,
                messages_imported=connection.messages_imported,
                messages_filtered=connection.messages_filtered,
                messages_failed=connection.messages_failed,
                events_seen=connection.events_seen,
                activities_created=connection.activities_created,
            ),
            created_at=connection.created_at,
        )


def plain_config(model: BaseModel) -> dict[str, Any]:
    """The config as stored: secrets unwrapped (they are split off and encrypted next)."""
    data = model.model_dump(exclude_unset=True)
    return {k: v.get_secret_value() if isinstance(v, SecretStr) else v for k, v in data.items()}
