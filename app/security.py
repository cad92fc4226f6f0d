"""API keys (shown once, stored hashed) and encryption of stored credentials (MultiFernet)."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Any

import structlog
from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from app.config import settings

log = structlog.get_logger(__name__)

KEY_PREFIX = "tly_"
KEY_FILE = "secret.key"
ADMIN_TOKEN_FILE = "admin.token"


def new_api_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def same_secret(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def _read_or_create(path: Path, make: Any, what: str) -> str:
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value: str = make()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(value + "\n")
    log.warning("generated_secret", what=what, path=str(path.resolve()))
    return value


class KeysMissing(RuntimeError):
    """A shared database without TALLY_SECRET_KEYS: a key made here would be this host's
    alone, and the other hosts could not read what it encrypts."""


def encryption_keys() -> list[str]:
    """Configured keys (newest first), or the embedded install's own key file in data_dir.
    Never made on a shared database, however the process was started (the CLI refuses to
    start without the keys; `uvicorn app.main:create_app` would not)."""
    if settings.secret_keys is not None and settings.secret_keys.get_secret_value().strip():
        return [k.strip() for k in settings.secret_keys.get_secret_value().split(",") if k.strip()]
    if settings.database_url and not settings.database_url.startswith("sqlite"):
        raise KeysMissing("TALLY_SECRET_KEYS must be set when the database is not SQLite")
    path = settings.data_dir / KEY_FILE
    return [_read_or_create(path, lambda: Fernet.generate_key().decode(), "encryption key")]


def admin_token() -> str | None:
    """TALLY_ADMIN_TOKEN, or on an embedded install a token made once and kept in data_dir."""
    if settings.admin_token is not None and settings.admin_token.get_secret_value():
        return settings.admin_token.get_secret_value()
    if settings.database_url and not settings.database_url.startswith("sqlite"):
        return None  # a production deployment must set it explicitly
    return _read_or_create(
        settings.data_dir / ADMIN_TOKEN_FILE, lambda: secrets.token_urlsafe(32), "admin token"
    )


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(k.encode()) for k in keys])


def fernet() -> MultiFernet:
    return _fernet(tuple(encryption_keys()))


def encrypt_secret(data: dict[str, Any]) -> bytes:
    return fernet().encrypt(json.dumps(data).encode("utf-8"))


class SecretUnreadable(Exception):
    """The stored secret was encrypted with a key that is no longer configured."""


def decrypt_secret(token: bytes) -> dict[str, Any]:
    try:
        value: dict[str, Any] = json.loads(fernet().decrypt(token))
    except InvalidToken as error:
        raise SecretUnreadable(
            "stored credentials cannot be decrypted with the configured keys"
        ) from error
    return value


def rotate_secret(token: bytes) -> bytes:
    """Re-encrypt with the newest key (the old keys must still be configured)."""
    return fernet().rotate(token)
