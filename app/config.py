"""Settings from the environment (prefix TALLY_); `settings` is the one instance."""

from __future__ import annotations

import os
import sys
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def _checkout() -> Path | None:
    """The source checkout this Tally runs from: the code's own folder (an editable install,
    the tests) or the folder holding the virtualenv it is installed in (`./scripts/serve`
    installs into the checkout's .venv); None for any other installation."""
    for folder in (Path(__file__).resolve().parent.parent, Path(sys.prefix).resolve().parent):
        project = folder / "pyproject.toml"
        if project.is_file() and 'name = "tally"' in project.read_text(encoding="utf-8"):
            return folder
    return None


CHECKOUT = _checkout()


def default_data_dir() -> Path:
    """Where the data lives unless TALLY_DATA_DIR says otherwise: an absolute place, so every
    command finds the same database wherever it is started. Run from a source checkout, the
    checkout's ./data, where earlier versions kept it; otherwise the XDG data directory,
    ~/.local/share/tally."""
    if CHECKOUT is not None:
        return CHECKOUT / "data"
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "tally"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TALLY_", extra="ignore")

    data_dir: Path = Field(default_factory=default_data_dir)  # made absolute: see _absolute
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
    # at most this many log lines from the connectors per sync run of one connection; the
    # rest are counted in one summary line (a mailbox listing 1,000,000 missing folders logged
    # a line for each, on every sync)
    sync_log_lines_per_run: int = Field(20, ge=1)
    # PostgreSQL time limits (docs/operations.md "Frozen and dead workers, timeouts"), set per
    # transaction so they hold behind PgBouncer too; 0 turns one off. A transaction left idle
    # this long (a frozen process) is ended by the server, which frees its locks: keep it
    # below sync_lease_seconds so a frozen worker holds nothing once its lease ends
    db_idle_in_transaction_seconds: float = Field(60.0, ge=0)
    # API requests: a lock waited for longer, or a statement running longer, answers 503
    # with Retry-After instead of holding a thread and a database connection
    db_lock_timeout_seconds: float = Field(2.0, ge=0)
    db_statement_timeout_seconds: float = Field(30.0, ge=0)
    # POST /connections/{id}/sync waits this long for the row: a sync holds it only for the
    # last statements of a page (well under a millisecond), so a longer wait means a worker
    # stopped there, and the request answers 503 at once rather than queueing behind it
    db_connection_lock_seconds: float = Field(0.25, ge=0)
    # sync workers' statements (a page's inserts take milliseconds; settling a large
    # organization's ended events the longest, seconds); the CLI's bulk commands have none
    db_worker_statement_timeout_seconds: float = Field(300.0, ge=0)
    # each worker process writes its heartbeat row this often; /readyz wants one younger than
    # ready_heartbeat_age_seconds (unset: three beats, so one slow beat is not an outage)
    worker_heartbeat_seconds: float = Field(15.0, gt=0)
    ready_heartbeat_age_seconds: float | None = Field(None, gt=0)
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
    # Mail.Read (default) reads the headers that tell newsletters and auto-replies apart;
    # Mail.ReadBasic counts them as customer mail (a deviation shown on each connection)
    microsoft_mail_permission: Literal["Mail.Read", "Mail.ReadBasic"] = "Mail.Read"
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
    # ask for gmail.metadata, not gmail.readonly (docs/google.md): invitations from calendar
    # systems other than Google and Exchange then count as emails (a deviation shown)
    google_gmail_metadata_only: bool = False
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

    # Slack (docs/slack.md): the app's OAuth client; empty client id = only pasted bot tokens
    slack_client_id: str = ""
    slack_client_secret: SecretStr | None = None
    slack_api_url: str | None = None  # Web API base ending in "/"; unset: https://slack.com/api/
    slack_authorize_url: str = "https://slack.com/oauth/v2/authorize"
    slack_user_scopes: bool = True  # ask the installer for their own DMs with outside people
    # Slack's tiers per method per workspace (Tier 2: 20, 3: 50, 4: 100 a minute); a
    # commercially distributed app outside the Marketplace gets 1 history call a minute and
    # 15 messages a page: set these to 1 and 15 for one
    slack_window_seconds: float = Field(60.0, gt=0)
    slack_history_per_minute: int | None = Field(None, ge=1)
    slack_history_page: int = Field(200, ge=1, le=999)
    slack_max_wait_seconds: float = Field(30.0, ge=0)  # longer Retry-After: wait outside
    slack_thread_days: int = Field(7, ge=0, le=90)  # threads asked again for late replies
    slack_timeout_seconds: int = Field(30, ge=1)
    # the app's signing secret: POST /push/slack takes Slack's events (deletions at once, new
    # messages make the workspace due); unset: the route answers 404 and polling does it all
    slack_signing_secret: SecretStr | None = None

    # a delivered or failed-for-good webhook delivery stays in its log this many days after it
    # settled, then is deleted (app/webhooks/prune.py); pending ones are kept whatever their age
    webhook_retention_days: int = Field(30, ge=1)

    # the largest request body accepted (bytes); a larger one is a 413 (docs/operations.md)
    max_body_bytes: int = Field(1_048_576, ge=1024)

    # Brakes on guessing (docs/operations.md "Rate limits"): failures counted per fixed
    # window in the database, so every API process shares them. More failures than the limit
    # in one window answer 429 until the window ends; a request that authenticates is never
    # slowed.
    rate_limit_window_seconds: int = Field(60, ge=1, le=86_400)
    rate_limit_failures_per_address: int = Field(30, ge=1)  # bad keys; bad webhook proofs
    rate_limit_failures_per_key: int = Field(10, ge=1)  # bad keys sharing their first 8 chars

    # Connections to private networks (docs/operations.md): IMAP and CalDAV never reach a
    # loopback, private, link-local or otherwise non-public address unless it is listed here
    # as a host name (exact) or a network in CIDR, e.g. ["mail.corp.lan", "10.20.0.0/16"]
    allowed_private_hosts: list[str] = []
    connect_timeout_seconds: float = Field(10.0, gt=0, le=120)  # then the read timeouts apply

    log_level: str = "INFO"
    log_json: bool = False

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        # a relative TALLY_DATA_DIR is taken from where the process starts, once: what the
        # start-up lines print is then the one place every later path is under
        return value.expanduser().resolve()

    @field_validator("database_url")
    @classmethod
    def _strip(cls, value: str) -> str:
        return value.strip()

    @field_validator("allowed_private_hosts")
    @classmethod
    def _hosts_or_networks(cls, value: list[str]) -> list[str]:
        import ipaddress
        import re

        cleaned = [v.strip().lower().rstrip(".") for v in value if v.strip()]
        for entry in cleaned:
            if any(c in entry for c in "/:") or entry.replace(".", "").isdigit():
                try:
                    ipaddress.ip_network(entry, strict=False)
                except ValueError as error:
                    raise ValueError(f"{entry!r} is not an IP network in CIDR") from error
            elif not re.fullmatch(r"[a-z0-9_]([a-z0-9_.-]{0,251}[a-z0-9_])?", entry):
                raise ValueError(f"{entry!r} is neither a host name nor a CIDR network")
        return cleaned

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'tally.db').as_posix()}"


@lru_cache
def get_settings() -> Settings:
    return Settings()


settings = get_settings()
