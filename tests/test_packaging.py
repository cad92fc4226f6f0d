"""`pip install .` builds Tally without a warning, and the installed copy (not the checkout)
carries its migrations: `tally migrate` works from a wheel, and its data lives in the XDG data
directory rather than in whatever directory it was started from."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The wheel `pip install .` builds (in pip's isolated build environment), and pip's output.
    Built from a copy of what the package is made of: setuptools builds in the source tree, and
    its build/ folder is no business of the checkout's."""
    source, out = tmp_path_factory.mktemp("source"), tmp_path_factory.mktemp("wheel")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    for folder in ("app", "connectors", "migrations"):
        caches = shutil.ignore_patterns("__pycache__")
        shutil.copytree(ROOT / folder, source / folder, ignore=caches)
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", str(source), "-w", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    (found,) = out.glob("tally-*.whl")
    return found, build.stdout + build.stderr


def test_the_build_prints_no_warning(wheel: tuple[Path, str]) -> None:
    _, output = wheel
    # pip's own notes about this machine's index configuration are not the build's
    lines = [line for line in output.splitlines() if "is ignored: it is neither" not in line]
    assert not [line for line in lines if "warning" in line.lower()], "\n".join(lines)


def test_the_wheel_holds_every_migration(wheel: tuple[Path, str]) -> None:
    path, _ = wheel
    names = set(zipfile.ZipFile(path).namelist())
    revisions = {
        f"migrations/versions/{p.name}" for p in (ROOT / "migrations/versions").glob("*.py")
    }
    assert len(revisions) >= 9 and revisions <= names
    assert {"migrations/env.py", "migrations/script.py.mako", "app/docs_ui.py"} <= names
    assert not [n for n in names if n.startswith("tests/")]
    # the dashboard's files ship inside the package: no CDN, no build step at install
    static = ROOT / "app/dashboard/static"
    assets = {f"app/dashboard/static/{p.name}" for p in static.iterdir() if p.is_file()}
    assert {"app/dashboard/static/index.html", "app/dashboard/static/app.js"} <= assets
    assert assets <= names, sorted(assets - names)


def test_the_installed_copy_migrates_and_keeps_its_data_in_the_xdg_directory(
    wheel: tuple[Path, str], tmp_path: Path
) -> None:
    """Installed into a virtualenv outside the checkout (its dependencies seen from this one's
    site-packages through a .pth line, which runs no editable finder) and run from another
    directory: the wheel's code and migrations, not the checkout's."""
    path, _ = wheel
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    (site,) = venv.glob("lib/python*/site-packages")
    deps = next(p for p in map(Path, sys.path) if p.name == "site-packages" and p.is_dir())
    (site / "dependencies.pth").write_text(f"{deps}\n")
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(venv / "bin/python"), "install",
         "--quiet", "--no-deps", str(path)],
        check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TALLY_")}
    env["XDG_DATA_HOME"] = str(tmp_path / "xdg")

    def tally(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(venv / "bin/tally"), *args],
            cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip

    migrated = tally("migrate")
    assert migrated.returncode == 0, migrated.stderr
    database = tmp_path / "xdg" / "tally" / "tally.db"
    assert f"sqlite:///{database} is at the latest schema" in migrated.stderr
    assert database.is_file() and list(elsewhere.iterdir()) == []
    info = tally("info")
    assert "the default for an installed Tally" in info.stdout
    assert "schema ready" in info.stdout
    where = subprocess.run(
        [str(venv / "bin/python"), "-c", "import app, migrations; print(app.__file__)"],
        cwd=elsewhere, env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert where.stdout.strip() == str(site / "app" / "__init__.py")
