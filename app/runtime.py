"""What a command checks and settles before it starts: where the data is, the database and
its schema, the secrets a shared deployment needs, and the heap (serve, worker, import)."""

from __future__ import annotations

import gc
from pathlib import Path

from pydantic import SecretStr


def settle_heap() -> None:
    """Take what start-up built out of the cyclic garbage collector's way.

    A sync allocates millions of short-lived objects; every so often Python's collector walks
    all live container objects, and most of them are start-up's (modules, SQLAlchemy's
    metadata, the public suffix list). Frozen, they are never walked again; with a larger
    first-generation threshold the young objects are walked ten times less often. Measured by
    bench/ingest.py (bench/README.md). Cycles are still collected, only in larger batches.
    """
    from app.contacts import identity

    identity.registrable_domain("example.co.uk")  # loads the public suffix list now
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)


class StartupError(Exception):
    """A command cannot start; the message is one sentence that says what to do."""


def shown_url(url: str) -> str:
    """The database URL as printed: without its password."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def data_dir_source() -> str:
    from app.config import CHECKOUT, settings

    if "data_dir" in settings.model_fields_set:
        return "from TALLY_DATA_DIR"
    if CHECKOUT is not None and settings.data_dir == CHECKOUT / "data":
        return "this checkout's data folder; TALLY_DATA_DIR moves it"
    return "the default for an installed Tally; TALLY_DATA_DIR moves it"


def database_url() -> str:
    """The URL of the database this process uses (the one a test installed, or the settings')."""
    from app import db
    from app.config import settings

    # db._database: set by tests (and by a command that already opened it); reading it here
    # keeps this check from opening, and so creating, a SQLite file
    return db._database.url if db._database is not None else settings.resolved_database_url


def where() -> list[str]:
    """Where this process keeps its data, for the start-up lines and `tally info`."""
    from app.config import settings

    return [
        f"data directory {settings.data_dir} ({data_dir_source()})",
        f"database {shown_url(database_url())}",
    ]


def is_embedded(url: str) -> bool:
    return url.startswith("sqlite")


def _given(value: SecretStr | None) -> bool:
    return value is not None and bool(value.get_secret_value().strip())


def require_secrets(command: str, names: tuple[str, ...]) -> None:
    """Refuse to start a process that shares a database with others without the shared
    secrets: a host that made its own key could not read what the others encrypted."""
    from app.config import settings

    values = {"TALLY_ADMIN_TOKEN": settings.admin_token, "TALLY_SECRET_KEYS": settings.secret_keys}
    missing = [n for n in names if not _given(values[n])]
    if missing:
        raise StartupError(
            f"`tally {command}` shares its database with other processes, so it needs "
            f"{' and '.join(missing)} set, the same on every host "
            "(docs/operations.md, Starting on PostgreSQL)"
        )


def require_database() -> None:
    """Refuse to go on when the database is missing, unreachable or not at this code's schema;
    never creates a SQLite file on the way."""
    from sqlalchemy.engine import make_url

    from app.db import get_database
    from app.health import schema

    url = database_url()
    parsed = make_url(url)
    if is_embedded(url) and parsed.database not in (None, "", ":memory:"):
        path = Path(parsed.database).resolve()
        if not path.is_file():
            raise StartupError(
                f"no Tally database at {path}: create it with `tally migrate` (or point "
                "TALLY_DATA_DIR or TALLY_DATABASE_URL at the one you have)"
            )
    try:
        with get_database().engine.connect() as connection:
            found = schema(connection)
    except Exception as error:  # the driver's reason, first line, is the useful part
        reason = getattr(error, "orig", None) or error  # without SQLAlchemy's wrapping
        lines = str(reason).strip().splitlines() or [type(reason).__name__]
        raise StartupError(f"cannot reach the database {shown_url(url)}: {lines[0]}") from None
    if not found.ok:
        raise StartupError(f"the database {shown_url(url)} {found.problem()}")


def info() -> list[str]:
    """`tally info`: where everything is and whether the database is ready; creates nothing."""
    from app.config import settings
    from app.security import ADMIN_TOKEN_FILE, KEY_FILE

    lines = where()
    try:
        require_database()
        lines.append("schema ready (the latest)")
    except StartupError as error:
        lines.append(f"schema not ready: {error}")
    for value, variable, file, what in (
        (settings.secret_keys, "TALLY_SECRET_KEYS", KEY_FILE, "encryption keys"),
        (settings.admin_token, "TALLY_ADMIN_TOKEN", ADMIN_TOKEN_FILE, "admin token"),
    ):
        path = settings.data_dir / file
        if _given(value):
            lines.append(f"{what} from {variable}")
        elif path.is_file():
            lines.append(f"{what} in {path}")
        else:
            lines.append(f"{what}: none yet ({variable}, or {path} made by `tally serve`)")
    return lines


def migrate() -> None:
    """Create the database or bring it to the latest schema (`tally migrate`, `tally serve`)."""
    import warnings

    from app.db import get_database, upgrade

    with warnings.catch_warnings():
        # SQLite's reflection cannot read the search indexes' lower(...) expressions
        # (migration 0007); the warning said nothing an operator can act on at every start
        warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression-based")
        upgrade(get_database())


def started(what: str) -> list[str]:
    """The lines a long-running command prints as it starts."""
    return [f"Tally {what}", *(f"  {line}" for line in where())]


def serving(docs: str) -> list[str]:
    """`tally serve`'s start: where everything is, the key and admin token made if need be."""
    from app.config import settings
    from app.security import ADMIN_TOKEN_FILE, KEY_FILE, admin_token, encryption_keys

    encryption_keys()
    admin_token()
    embedded = "embedded: " if is_embedded(database_url()) else ""
    lines = [
        *started(f"{embedded}API, scheduler and sync worker in one process"),
        f"  API docs {docs}",
    ]
    if settings.secret_keys is None:
        lines.append(
            f"  encryption key kept in {settings.data_dir / KEY_FILE} "
            "(back it up; set TALLY_SECRET_KEYS to manage it yourself)"
        )
    if settings.admin_token is None:
        lines.append(f"  instance admin token kept in {settings.data_dir / ADMIN_TOKEN_FILE}")
    return lines
