"""Architecture rules, read from the source with `ast`:

- connectors/ never imports app/ (connectors are reusable and know nothing of the database);
- in app/, only app/sync/ imports provider modules (connectors.imap, connectors.files, ...);
  the rest of app/ may use the shared connectors.base and connectors.mail;
- nothing in app/ commits a session except app/db.py, which owns the transaction rule;
- only app/activities/store.py (and app/activities/rollups.py, which only it calls) writes
  activity and rollup rows.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APP, CONNECTORS = ROOT / "app", ROOT / "connectors"
# what app/ may use of connectors/ outside app/sync: no provider, only shared parts (the
# private-network guard is checked when a configuration is saved, as well as at connect time)
SHARED_CONNECTOR_MODULES = {
    "connectors",
    "connectors.base",
    "connectors.mail",
    "connectors.oauth",
    "connectors.netguard",
    "connectors.chat",
}


def sources(folder: Path) -> Iterator[tuple[Path, ast.Module]]:
    for path in sorted(folder.rglob("*.py")):
        yield path, ast.parse(path.read_text(), filename=str(path))


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported(path: Path, tree: ast.Module) -> Iterator[tuple[int, str]]:
    """(line, absolute module) for every import anywhere in the file, functions included;
    `from x import y` yields both x and x.y (y may be a module), and relative imports are
    resolved. String imports through importlib count too."""
    package = module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            yield node.lineno, module
            for alias in node.names:
                yield node.lineno, f"{module}.{alias.name}"
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and (getattr(node.func, "attr", None) or getattr(node.func, "id", None))
            in ("import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            yield node.lineno, node.args[0].value


def within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def provider_modules() -> set[str]:
    names = {module_name(p) for p in CONNECTORS.rglob("*.py")}
    return names - SHARED_CONNECTOR_MODULES


def test_the_walk_sees_the_code() -> None:
    assert len(list(sources(APP))) > 20 and len(list(sources(CONNECTORS))) >= 4
    assert {"connectors.imap", "connectors.files", "connectors.slack"} <= provider_modules()
    registry = APP / "sync" / "registry.py"
    found = {m for _, m in imported(registry, ast.parse(registry.read_text()))}
    assert "connectors.imap" in found and "app.models" in found


def test_connectors_never_import_the_app() -> None:
    offending = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path, tree in sources(CONNECTORS)
        for line, module in imported(path, tree)
        if within(module, "app")
    ]
    assert not offending, "\n".join(offending)


def test_only_app_sync_imports_provider_modules() -> None:
    providers = provider_modules()
    offending = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path, tree in sources(APP)
        if not within(module_name(path), "app.sync")
        for line, module in imported(path, tree)
        if any(within(module, provider) for provider in providers)
    ]
    assert not offending, "\n".join(offending)


def test_the_app_imports_connectors_only_through_their_public_modules() -> None:
    """connectors.base and connectors.mail are shared; a provider's internals are not."""
    known = provider_modules() | SHARED_CONNECTOR_MODULES
    offending = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path, tree in sources(APP)
        for line, module in imported(path, tree)
        if within(module, "connectors")
        and not any(module == k or module.rsplit(".", 1)[0] == k for k in known)
    ]
    assert not offending, "\n".join(offending)


def test_no_one_but_app_db_commits() -> None:
    """Whoever opens the session owns the commit: routes and jobs go through app.db."""
    allowed = {APP / "db.py"}
    offending = [
        f"{path.relative_to(ROOT)}:{node.lineno} calls .{node.func.attr}()"
        for path, tree in sources(APP)
        if path not in allowed
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "commit"
    ]
    assert not offending, "\n".join(offending)


def test_the_import_reader_resolves_every_form() -> None:
    code = (
        "import app.models\n"
        "from ..sync import registry\n"
        "from . import queries\n"
        "from connectors import imap\n"
        "def later():\n"
        "    from connectors.files import MailFileConnector\n"
        "    importlib.import_module('app.db')\n"
    )
    found = {m for _, m in imported(APP / "contacts" / "example.py", ast.parse(code))}
    assert {
        "app.models",
        "app.sync.registry",
        "app.contacts.queries",
        "connectors.imap",
        "connectors.files",
        "app.db",
    } <= found


# Rows whose every write must pass through app/activities/store.py (and the rollup SQL it
# calls, app/activities/rollups.py), so that the stored rollups (and whatever later listens
# for changes) never miss one.
ACTIVITY_ROWS = ("Activity", "ActivityContact", "ActivityDay", "ContactDay")
ACTIVITY_TABLES = ("activities", "activity_contacts", "activity_days", "contact_days")
WRITES = {"insert", "delete", "update", "insert_ignore", "bulk_insert_mappings"}
ACTIVITY_STORE = (APP / "activities" / "store.py", APP / "activities" / "rollups.py")


def _names_activity_rows(node: ast.AST, aliases: set[str]) -> bool:
    for inner in ast.walk(node):
        if isinstance(inner, ast.Name) and (inner.id in ACTIVITY_ROWS or inner.id in aliases):
            return True
        if isinstance(inner, ast.Constant) and inner.value in ACTIVITY_TABLES:
            return True
    return False


def activity_writes(tree: ast.Module) -> list[int]:
    """Lines that insert, change or delete activity rows: a write call (insert(), delete(),
    update(), insert_ignore()) naming one of the models or tables, directly or through a
    module-level alias (`ACTIVITIES = cast(Table, Activity.__table__)`), or a model built."""
    aliases: set[str] = set()
    for statement in tree.body:
        if isinstance(statement, ast.Assign) and _names_activity_rows(statement.value, aliases):
            aliases.update(t.id for t in statement.targets if isinstance(t, ast.Name))
    lines = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = getattr(node.func, "attr", None) or getattr(node.func, "id", None)
        writes = name in WRITES and any(_names_activity_rows(a, aliases) for a in node.args)
        if writes or name in ACTIVITY_ROWS:
            lines.add(node.lineno)
    return sorted(lines)


def test_only_the_store_writes_activity_rows() -> None:
    offending = [
        f"{path.relative_to(ROOT)}:{line} writes activity rows"
        for path, tree in sources(APP)
        if path not in (*ACTIVITY_STORE, APP / "models.py")
        for line in activity_writes(tree)
    ]
    assert not offending, "\n".join(offending)


def test_only_the_store_calls_the_rollup_sql() -> None:
    """app/activities/rollups.py writes rollup rows for the store, inside its transactions:
    anyone else calling it would change counts without the rows they count."""
    offending = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path, tree in sources(APP)
        if path not in ACTIVITY_STORE
        for line, module in imported(path, tree)
        if within(module, "app.activities.rollups")
    ]
    assert ACTIVITY_STORE[1].is_file() and not offending, "\n".join(offending)


def test_the_activity_write_reader_sees_every_form() -> None:
    code = (
        "LINKS = cast(Table, ActivityContact.__table__)\n"
        "insert_ignore(session, LINKS, rows)\n"
        "session.execute(delete(Activity).where(Activity.id == 1))\n"
        "session.add(ActivityContact(activity_id=1, contact_id=2))\n"
        "session.execute(update(ActivityDay).values(count=0))\n"
        "session.execute(insert(table('contact_days')))\n"
        "session.execute(select(Activity.id))\n"
    )
    assert activity_writes(ast.parse(code)) == [2, 3, 4, 5, 6]


def test_the_metric_engine_takes_no_caller() -> None:
    """app/metrics answers for an organization and a subject; who may ask is decided around
    it (app/access.py in the routes' services), never inside it."""
    offending = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path, tree in sources(APP / "metrics")
        for line, module in imported(path, tree)
        if any(within(module, m) for m in ("app.access", "app.deps", "fastapi"))
    ]
    assert (APP / "metrics").is_dir() and not offending, "\n".join(offending)


# Judgement as pure functions: the alert conditions and the top-performer ranking take numbers
# and give answers; they read no database, no clock of their own and no request.
PURE_JUDGEMENT = (APP / "alerts" / "rules.py", APP / "insights" / "drivers.py")
IMPURE = ("sqlalchemy", "app.db", "app.models", "app.access", "app.deps", "fastapi", "time")


def test_alert_rules_and_performer_drivers_are_pure() -> None:
    offending = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path in PURE_JUDGEMENT
        for line, module in imported(path, ast.parse(path.read_text()))
        if any(within(module, m) for m in IMPURE)
    ]
    assert all(p.is_file() for p in PURE_JUDGEMENT) and not offending, "\n".join(offending)


def test_the_dashboard_knows_nothing_of_the_api_but_http() -> None:
    """The dashboard is a frontend like any other: its Python only serves its files (no
    domain, no database), and its scripts call the public API under /api/v1 with fetch."""
    offending = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path, tree in sources(APP / "dashboard")
        for line, module in imported(path, tree)
        if within(module, "app") or within(module, "sqlalchemy")
    ]
    scripts = sorted((APP / "dashboard" / "static").glob("*.js"))
    assert scripts and not offending, "\n".join(offending)
    for script in scripts:
        text = script.read_text()
        assert "XMLHttpRequest" not in text and "/api/" not in text.replace("/api/v1", ""), script


def test_other_domains_announce_webhooks_only_through_the_outbox() -> None:
    """A change and its announcement commit together: other domains call
    app.webhooks.outbox.announce in their transaction, never the delivery or the routes."""
    offending = [
        f"{path.relative_to(ROOT)}:{line} imports {module}"
        for path, tree in sources(APP)
        if not within(module_name(path), "app.webhooks") and path.name != "scheduler.py"
        for line, module in imported(path, tree)
        if within(module, "app.webhooks")
        and not within(module, "app.webhooks.outbox")
        and not (path.name == "main.py" and within(module, "app.webhooks.routes"))
        and not (path.name == "tables.py" and module in ("app.webhooks", "app.webhooks.models"))
    ]
    assert not offending, "\n".join(offending)
