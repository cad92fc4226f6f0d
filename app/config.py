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
