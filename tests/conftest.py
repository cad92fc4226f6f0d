"""Shared fixtures: both database backends with migrations applied, the API client, services."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

# Settings are read at import time: fix them before anything imports app.
_DATA_DIR = tempfile.mkdtemp(prefix="tally-test-")
os.environ.setdefault("TALLY_DATA_DIR", _DATA_DIR)
os.environ["TALLY_ADMIN_TOKEN"] = "test-admin-token"
os.environ["TALLY_SECRET_KEYS"] = "Jd1HmA2l0QW4c7fqQpXq0b3Xw5k8m4bVv0bq2mE8Sxg="
# Dovecot and Radicale listen on loopback, which the app refuses unless an operator allows it
os.environ["TALLY_ALLOWED_PRIVATE_HOSTS"] = '["127.0.0.1/32"]'

import pytest  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from sqlalchemy import text  # noqa: E402

import app.tables  # noqa: E402, F401  (every table, for _empty)
from app.db import Base, Database, set_database, upgrade  # noqa: E402
from tests.api import Org, make_org  # noqa: E402
from tests.services import throwaway_postgres  # noqa: E402

pytest_plugins = ["tests.fixtures.dovecot", "tests.fixtures.radicale"]

ADMIN_TOKEN = "test-admin-token"
ROOT = Path(__file__).resolve().parent.parent


def migrate(database: Database) -> None:
    upgrade(database)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A throw-away database on the local PostgreSQL server, dropped at the end of the run."""
    with throwaway_postgres("tally_test") as url:
        yield url


@pytest.fixture(scope="session")
def _sqlite_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path_factory.mktemp('db') / 'tally.db'}")
    migrate(database)
    yield database
    database.engine.dispose()


@pytest.fixture(scope="session")
def _postgresql_database(postgres_url: str) -> Iterator[Database]:
    database = Database(postgres_url)
    migrate(database)
    yield database
    database.engine.dispose()


def _empty(database: Database) -> None:
    tables = [t.name for t in reversed(Base.metadata.sorted_tables)]
    with database.engine.begin() as connection:
        if database.is_sqlite:
            for name in tables:
                connection.execute(text(f'DELETE FROM "{name}"'))
            # AUTOINCREMENT tables (deals) count on across tests otherwise; PostgreSQL's
            # RESTART IDENTITY below does the same, so a test sees the same ids on both
            connection.execute(text("DELETE FROM sqlite_sequence"))
        else:
            joined = ", ".join(f'"{n}"' for n in tables)
            connection.execute(text(f"TRUNCATE {joined} RESTART IDENTITY CASCADE"))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A test marked `postgresql_only` keeps only its PostgreSQL case: what it checks (row
    locks between processes) does not exist on SQLite, so that case is not collected rather
    than skipped (CI turns skips into failures)."""
    kept, dropped = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        sqlite = callspec is not None and callspec.params.get("database") == "sqlite"
        (dropped if sqlite and item.get_closest_marker("postgresql_only") else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest) -> Iterator[Database]:
    """An empty, migrated database: every test that uses it runs on SQLite and on PostgreSQL."""
    database: Database = request.getfixturevalue(f"_{request.param}_database")
    _empty(database)
    set_database(database)
    yield database
    set_database(None)


@pytest.fixture
def sqlite_database(_sqlite_database: Database) -> Iterator[Database]:
    """SQLite only: for slow end-to-end tests where the second backend adds nothing."""
    _empty(_sqlite_database)
    set_database(_sqlite_database)
    yield _sqlite_database
    set_database(None)


@pytest.fixture
def client(database: Database) -> Iterator[TestClient]:
    from app.main import create_app

    with TestClient(create_app(), raise_server_exceptions=True) as test_client:
        yield test_client


@pytest.fixture
def org(client: TestClient) -> Org:
    """An organization with one rep, ana@acme.example (a module may define its own `org`)."""
    org = make_org(client)
    org.user("ana@acme.example")
    return org
