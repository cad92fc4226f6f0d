"""Skips for tests that need a server: a skip on a laptop, a failure in CI."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import pytest
from sqlalchemy import create_engine, text

REQUIRE_ENV = "TALLY_REQUIRE_SERVICES"


def require_service(name: str, reason: str) -> NoReturn:
    """Skip because `name` is missing, or fail when TALLY_REQUIRE_SERVICES=1 (set by .ci/run)."""
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{name} is required here ({REQUIRE_ENV}=1) but unavailable: {reason}")
    pytest.skip(f"{name} unavailable: {reason}")


POSTGRES_ADMIN_URL = os.environ.get(
    "TALLY_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@contextmanager
def throwaway_postgres(prefix: str) -> Iterator[str]:
    """The URL of a new, empty database on the test PostgreSQL server, dropped afterwards."""
    try:
        admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as error:  # pragma: no cover - depends on the machine
        require_service("postgresql", f"no PostgreSQL at {POSTGRES_ADMIN_URL}: {error}")
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
