"""Settings from the environment (prefix TALLY_); `settings` is the one instance."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TALLY_", extra="ignore")

    data_dir: Path = Path("data")
    database_url: str = ""  # default: sqlite:///<data_dir>/tally.db
    admin_token: SecretStr | None = None
    # Fernet keys, comma-separated, newest first; rotate by prepending a new one and running
    # `tally rotate-keys`. Empty: an embedded install makes one and keeps it in data_dir.
    secret_keys: SecretStr | None = None

    sync_interval_seconds: int = Field(300, ge=10)
    sync_workers: int = Field(4, ge=1, le=64)
    sync_tick_seconds: float = Field(5.0, gt=0)
    sync_lease_seconds: int = Field(900, ge=30)
    backfill_days: int = Field(365, ge=1)  # mail backfill, and how far back calendars sync
    calendar_future_days: int = Field(90, ge=0)  # how far ahead calendars sync
    calendar_timeout_seconds: float = Field(60.0, gt=0)
    imap_batch_size: int = Field(250, ge=1, le=2000)
    imap_timeout_seconds: float = Field(60.0, gt=0)
    imap_body_bytes: int = Field(8192, ge=0)  # body prefix fetched for signatures (0: none)
    max_backoff_seconds: int = Field(3600, ge=60)
    # the address users' browsers and providers' push notifications reach this API at (OAuth
    # callbacks and webhooks are built from it)
    public_url: str = "http://localhost:8000"

    # Microsoft 365 (docs/microsoft.md): the app registration; empty client id = not offered
    microsoft_client_id: str = ""
    microsoft_client_secret: SecretStr | None = None
    # .../common (any work or personal account), .../organizations, or .../<tenant id>
    microsoft_authority: str = "https://login.microsoftonline.com/common"
    microsoft_graph_url: str = "https://graph.microsoft.com/v1.0"
    microsoft_mail_folders: list[str] = ["inbox", "sentitems"]  # well-known names or ids
    microsoft_max_in_flight: int = Field(4, ge=1, le=4)  # Graph allows 4 per mailbox
    microsoft_max_wait_seconds: float = Field(10.0, ge=0)  # longer Retry-After: wait outside
    microsoft_page_size: int = Field(250, ge=10, le=1000)
    # signs the clientState of Graph change notifications; unset = no push (polling only)
    microsoft_push_secret: SecretStr | None = None
    microsoft_ca_bundle: str | None = None  # a private CA for the authority and Graph

    # Google Workspace (docs/google.md): the OAuth client; empty client id = not offered
    google_client_id: str = ""
    google_client_secret: SecretStr | None = None
    google_api_url: str | None = None  # Gmail + Calendar rootUrl; unset: Google's own
    google_token_uri: str = "https://oauth2.googleapis.com/token"
    google_auth_uri: str = "https://accounts.google.com/o/oauth2/auth"
    google_aliases: bool = True  # ask for gmail.settings.basic to learn send-as aliases
    # per-user Gmail quota: 6,000 units/min for projects created since May 2026, 15,000 before
    google_quota_units_per_minute: int = Field(6000, ge=10)
    google_quota_window_seconds: float = Field(60.0, gt=0)
    # quota units per Gmail method over Google's published costs, e.g. {"messages.get": 5}
    google_method_costs: dict[str, int] = {}
    google_calendar_requests_per_minute: int = Field(600, ge=1)
    google_max_in_flight: int = Field(4, ge=1, le=16)  # concurrent (batch) requests per user
    google_max_wait_seconds: float = Field(60.0, ge=0)  # longer Retry-After: wait outside
    google_batch_size: int = Field(50, ge=1, le=100)
    google_page_size: int = Field(500, ge=10, le=500)
    google_timeout_seconds: float = Field(60.0, gt=0)
    # push: a Pub/Sub topic for users.watch (projects/<p>/topics/<t>); unset = no Gmail push
    google_pubsub_topic: str = ""
    # the token of the Pub/Sub push URL and the key of Calendar channel tokens; unset = no push
    google_push_token: SecretStr | None = None

    log_level: str = "INFO"
    log_json: bool = False

    @field_validator("database_url")
    @classmethod
    def _strip(cls, value: str) -> str:
        return value.strip()

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'tally.db').as_posix()}"


@lru_cache
def get_settings() -> Settings:
    return Settings()


settings = get_settings()
