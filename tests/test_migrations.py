"""The migrations build exactly the models' schema, and go down and up again, on both backends."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect

import app.tables  # noqa: F401  (registers every table)
from app.db import Base, make_engine
from tests.conftest import ROOT
from tests.services import throwaway_postgres


def config() -> Config:
    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    return cfg


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An empty database of its own (never the shared test databases)."""
    if request.param == "sqlite":
        engine = make_engine(f"sqlite:///{tmp_path / 'migrations.db'}")
        yield engine
        engine.dispose()
        return
    with throwaway_postgres("tally_migrations") as url:
        engine = make_engine(url)
        try:
            yield engine
        finally:
            engine.dispose()


def run(engine: Engine, action: str, revision: str) -> None:
    cfg = config()
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        getattr(command, action)(cfg, revision)


SEARCH_INDEXES = ("ix_contacts_search", "ix_companies_search")


def differences(engine: Engine) -> list[Any]:
    with engine.connect() as connection, warnings.catch_warnings():
        # Alembic compares expression indexes (the search indexes) on PostgreSQL only, and
        # says so on SQLite, whose reflection skips them: there they are looked up by name.
        warnings.filterwarnings("ignore", ".*expression-based index")
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "render_as_batch": True}
        )
        found = list(compare_metadata(context, Base.metadata))
        if engine.dialect.name == "sqlite":
            names = set(
                connection.exec_driver_sql("SELECT name FROM sqlite_master WHERE type = 'index'")
                .scalars()
                .all()
            )
            found += [("missing index", n) for n in SEARCH_INDEXES if n not in names]
    return found


def tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names())


def current(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def test_one_head_and_every_revision_goes_down() -> None:
    scripts = ScriptDirectory.from_config(config())
    assert len(scripts.get_heads()) == 1
    for revision in scripts.walk_revisions():
        source = Path(revision.path).read_text()
        assert "def downgrade" in source, revision.revision
        assert revision.module.downgrade is not None


def test_upgrade_matches_the_models_then_down_and_up_again(engine: Engine) -> None:
    head = ScriptDirectory.from_config(config()).get_current_head()
    model_tables = set(Base.metadata.tables)

    run(engine, "upgrade", "head")
    assert current(engine) == head
    assert tables(engine) == model_tables | {"alembic_version"}
    assert differences(engine) == []

    run(engine, "downgrade", "base")
    assert current(engine) is None
    assert tables(engine) - {"alembic_version"} == set()

    run(engine, "upgrade", "head")
    assert current(engine) == head
    assert tables(engine) == model_tables | {"alembic_version"}
    assert differences(engine) == []


def test_upgrading_twice_is_a_no_op(engine: Engine) -> None:
    run(engine, "upgrade", "head")
    run(engine, "upgrade", "head")
    assert differences(engine) == []


def test_the_migrated_schema_enforces_the_models_constraints(engine: Engine) -> None:
    """A spot check that constraints the code relies on exist in the database itself."""
    run(engine, "upgrade", "head")
    inspector = inspect(engine)
    unique = {
        table: {tuple(c["column_names"]) for c in inspector.get_unique_constraints(table)}
        for table in ("users", "user_addresses", "contacts", "companies", "messages", "activities")
    }
    assert ("org_id", "email") in unique["users"]
    assert ("org_id", "email") in unique["user_addresses"]
    assert ("org_id", "email") in unique["contacts"]
    assert ("org_id", "domain") in unique["companies"]
    assert ("org_id", "key_hash") in unique["messages"]
    assert ("org_id", "source_key", "user_id", "type") in unique["activities"]
    foreign = {
        (fk["referred_table"], tuple(fk["constrained_columns"]))
        for fk in inspector.get_foreign_keys("activities")
    }
    assert ("users", ("user_id",)) in foreign and ("organizations", ("org_id",)) in foreign
