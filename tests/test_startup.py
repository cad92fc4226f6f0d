"""The `tally` command as started from a shell, anywhere: it finds the same data directory
wherever it runs, says where it is, never creates a database by accident, and refuses to start
with one sentence (exit 2) when the database or a shared deployment's secrets are missing.

Every test runs the installed `tally` script in a subprocess, from a directory of its own."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory

import migrations
from app.db import Database
from tests.services import throwaway_postgres

ROOT = Path(__file__).resolve().parent.parent
TALLY = str(Path(sys.executable).parent / "tally")
MBOX = ROOT / "tests" / "data" / "enron" / "allen-p" / "inbox.mbox"
KEYS = {
    "TALLY_ADMIN_TOKEN": "startup-admin-token",
    "TALLY_SECRET_KEYS": "Jd1HmA2l0QW4c7fqQpXq0b3Xw5k8m4bVv0bq2mE8Sxg=",
}


def tally(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """`tally ARGS` from `cwd`, with no TALLY_* variable but those given."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TALLY_")}
    return subprocess.run(
        [TALLY, *args],
        cwd=cwd,
        env={**clean, "TALLY_LOG_LEVEL": "WARNING", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*"))


@pytest.fixture
def elsewhere(tmp_path: Path) -> Path:
    """A directory that is neither the checkout nor the data directory."""
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    return folder


def test_a_command_run_anywhere_uses_the_checkouts_data_directory_and_says_so(
    elsewhere: Path,
) -> None:
    database = ROOT / "data" / "tally.db"
    existed = database.exists()
    result = tally("info", cwd=elsewhere)
    assert result.returncode == 0, result.stderr
    assert f"data directory {ROOT / 'data'} (this checkout's data folder" in result.stdout
    assert f"database sqlite:///{database}" in result.stdout
    assert files_under(elsewhere) == [] and database.exists() == existed
    help_text = " ".join(tally("--help", cwd=elsewhere).stdout.split())
    assert f"Data directory: {ROOT / 'data'}" in help_text


def test_an_import_without_a_database_says_so_in_one_line_and_creates_nothing(
    elsewhere: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    result = tally(
        "import", "mbox", "--user", "ana@acme.example", str(MBOX), cwd=elsewhere,
        TALLY_DATA_DIR=str(data),
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"error: no Tally database at {data / 'tally.db'}: create it with `tally migrate` "
        "(or point TALLY_DATA_DIR or TALLY_DATABASE_URL at the one you have)"
    )
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert not data.exists() and files_under(elsewhere) == []


def test_migrate_then_every_directory_finds_the_same_database(
    elsewhere: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    other = tmp_path / "other"
    other.mkdir()
    migrated = tally("migrate", cwd=elsewhere, TALLY_DATA_DIR=str(data))
    assert migrated.returncode == 0, migrated.stderr
    assert (data / "tally.db").is_file()
    info = tally("info", cwd=other, TALLY_DATA_DIR=str(data))
    assert f"data directory {data} (from TALLY_DATA_DIR)" in info.stdout
    assert "schema ready" in info.stdout
    rebuilt = tally("rollups", "rebuild", cwd=other, TALLY_DATA_DIR=str(data))
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert "0 organizations" in rebuilt.stderr
    assert files_under(elsewhere) == [] and files_under(other) == []


@pytest.fixture
def empty_postgres() -> Iterator[str]:
    with throwaway_postgres("tally_startup") as url:
        yield url


def test_commands_on_an_unmigrated_postgresql_name_the_fix(
    elsewhere: Path, empty_postgres: str
) -> None:
    for args in (["rollups", "rebuild"], ["api"]):
        result = tally(*args, cwd=elsewhere, TALLY_DATABASE_URL=empty_postgres, **KEYS)
        assert result.returncode == 2, (args, result.stderr)
        assert result.stderr.strip().endswith(
            "has no Tally tables yet: create them with `tally migrate`"
        ), (args, result.stderr)
    head = migrate_to_one_before_head(empty_postgres)
    result = tally("worker", cwd=elsewhere, TALLY_DATABASE_URL=empty_postgres, **KEYS)
    assert result.returncode == 2
    assert f"this Tally needs {head}: run `tally migrate`" in result.stderr


def migrate_to_one_before_head(url: str) -> str:
    """Migrate `url` to the revision before the newest; returns the newest."""
    scripts = ScriptDirectory(str(Path(migrations.__file__).parent))
    head = scripts.get_revision(scripts.get_current_head())
    assert head is not None and isinstance(head.down_revision, str)
    database = Database(url)
    config = Config()
    config.set_main_option("script_location", str(Path(migrations.__file__).parent))
    with database.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, head.down_revision)
    database.engine.dispose()
    return head.revision


def test_an_unreachable_database_is_one_sentence(elsewhere: Path) -> None:
    url = "postgresql://tally:hunter2@127.0.0.1:1/tally"  # nothing listens on port 1
    result = tally("import", "mbox", "--user", "a@b.example", str(MBOX), cwd=elsewhere,
                   TALLY_DATABASE_URL=url)  # fmt: skip
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith(
        "error: cannot reach the database postgresql://tally:***@127.0.0.1:1/tally: "
    )
    assert "hunter2" not in result.stderr


@pytest.mark.parametrize(
    ("args", "env", "missing"),
    [
        (["api"], {}, "TALLY_ADMIN_TOKEN and TALLY_SECRET_KEYS"),
        (["api"], {"TALLY_SECRET_KEYS": KEYS["TALLY_SECRET_KEYS"]}, "TALLY_ADMIN_TOKEN"),
        (["worker"], {}, "TALLY_SECRET_KEYS"),
        (["serve"], {"TALLY_DATABASE_URL": "postgresql://x@127.0.0.1:1/x"}, "TALLY_ADMIN_TOKEN"),
        (["rotate-keys"], {"TALLY_DATABASE_URL": "postgresql://x@127.0.0.1:1/x"}, "TALLY_SECRET"),
    ],
)
def test_a_shared_deployment_refuses_to_start_without_its_secrets(
    elsewhere: Path, tmp_path: Path, args: list[str], env: dict[str, str], missing: str
) -> None:
    data = tmp_path / "data"
    result = tally(*args, cwd=elsewhere, TALLY_DATA_DIR=str(data), **env)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"error: `tally {args[0]}` shares its database")
    assert f"needs {missing}" in result.stderr and len(result.stderr.splitlines()) == 1
    assert not data.exists()  # no key of its own, no admin token, no database


def test_the_embedded_server_says_where_its_data_is(elsewhere: Path, tmp_path: Path) -> None:
    """`tally serve` on SQLite needs no secrets; it makes them and says where (the first lines
    before uvicorn's; the server itself is run by tests/test_readiness.py)."""
    data = tmp_path / "data"
    process = subprocess.Popen(
        [TALLY, "serve", "--port", "0"],
        cwd=elsewhere,
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("TALLY_")},
            "TALLY_DATA_DIR": str(data),
        },
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        lines = []
        for line in process.stderr:
            lines.append(line.rstrip())
            if "Uvicorn running" in line or len(lines) > 40:
                break
    finally:
        process.terminate()
        process.wait(timeout=30)
    text = "\n".join(lines)
    assert f"data directory {data} (from TALLY_DATA_DIR)" in text, text
    assert f"database sqlite:///{data / 'tally.db'}" in text
    assert f"encryption key kept in {data / 'secret.key'}" in text
    assert "Traceback" not in text and "SAWarning" not in text
    assert files_under(elsewhere) == []
