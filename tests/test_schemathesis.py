"""Schemathesis, stateless and stateful, finds no failure of any of its checks on either database.

Stateless: every operation of the OpenAPI gets schema-valid requests (each must be accepted,
or refused only for a reason the schema cannot see: 401/403/404/409) and schema-invalid
ones (each must be refused with a 4xx); every answer must match its documented status,
content type, headers and schema. Stateful: the links of the OpenAPI chain a created
resource's id into the calls that read, change and delete it.

The caller is the admin of an organization with users, a team, a connection, contacts,
companies, activities, a quota and a deal (tests/test_openapi.py's seed). A schema-valid
request is first kept within the rules the OpenAPI states only in words (tests/openapi_rules.py:
a range in order, a stage of the pipeline as it is...). The operations of mail and calendar
connections are checked in tests of their own, so what fails there is reported apart. The
number of examples is kept small: the whole module takes about a minute on two cores.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given
from hypothesis import settings as hypothesis_settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import ignored_auth

from app.config import settings
from app.db import Database
from app.main import create_app
from tests.api import ADMIN
from tests.openapi_rules import CONNECTIONS, Rules, is_connection
from tests.test_openapi import seed

EXAMPLES = 6  # per operation and mode: ~60 operations x 2 modes x 2 databases
SCENARIOS = 15  # stateful scenarios per database
INSTANCE = {("POST", "/api/v1/orgs")}


@pytest.fixture
def seeded(
    database: Database, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Any, dict[str, str], Rules]]:
    # the ignored-auth check sends a wrong key after most requests: thousands of failed
    # authentications from one address, which the rate limiter (tested on its own) would stop
    monkeypatch.setattr(settings, "rate_limit_failures_per_address", 10**9)
    monkeypatch.setattr(settings, "rate_limit_failures_per_key", 10**9)
    app = create_app()
    with TestClient(app) as client:
        headers, _ = seed(client)
        yield app, headers, Rules(client, headers)


def _auth(operation: Any, headers: dict[str, str]) -> dict[str, str]:
    return ADMIN if (operation.method.upper(), operation.path) in INSTANCE else headers


def stateless_failures(
    app: Any, headers: dict[str, str], rules: Rules, examples: int, paths: Callable[[str], bool]
) -> list[str]:
    """Each operation whose path `paths` selects, in both modes: the failures found."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if not paths(operation.path):
            continue
        auth = _auth(operation, headers)
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            excluded = [] if mode.is_positive else [ignored_auth]

            @hypothesis_settings(
                max_examples=examples,
                deadline=None,
                database=None,
                derandomize=True,
                suppress_health_check=list(HealthCheck),
                phases=[Phase.explicit, Phase.generate],
            )
            @given(case=operation.as_strategy(generation_mode=mode))
            def check(case: Any) -> None:
                # the key first: setting the headers has schemathesis judge the case again,
                # and one made negative only through an undeclared header is then positive
                case.headers = {**(case.headers or {}), **auth}  # noqa: B023 - called at once
                rules.apply(case)
                # ignored_auth probes the key only in positive mode: a negative case is refused
                # anyway, and the check would read the key it was given as generated data
                case.call_and_validate(excluded_checks=excluded)  # noqa: B023

            try:
                check()
            except Unsatisfiable:
                pass  # no schema-invalid request exists for this operation (all strings)
            except (Exception, BaseExceptionGroup) as error:  # FailureGroup: the failed checks
                failures.append(f"{operation.label} [{mode.value}]: {error}"[:1500])
    return failures


def run_stateful(
    app: Any, headers: dict[str, str], rules: Rules, scenarios: int, connections: bool
) -> None:
    """Scenarios over the connections' operations, or over all the others."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    pattern = "^(" + "|".join(CONNECTIONS) + ")"
    selected = (
        schema.include(path_regex=pattern) if connections else schema.exclude(path_regex=pattern)
    )
    machine = selected.as_state_machine()

    class Admin(machine):  # type: ignore[valid-type,misc]
        def before_call(self, case: Any) -> None:
            rules.apply(case)

        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"headers": _auth(case.operation, headers)}

    Admin.run(
        settings=hypothesis_settings(
            max_examples=scenarios,
            stateful_step_count=6,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
            phases=[Phase.generate],
        )
    )


def test_stateless(seeded: tuple[Any, dict[str, str], Rules]) -> None:
    failures = stateless_failures(*seeded, EXAMPLES, lambda path: not is_connection(path))
    assert not failures, "\n\n".join(failures)


def test_stateless_connections(seeded: tuple[Any, dict[str, str], Rules]) -> None:
    failures = stateless_failures(*seeded, EXAMPLES, is_connection)
    assert not failures, "\n\n".join(failures)


def test_stateful(seeded: tuple[Any, dict[str, str], Rules]) -> None:
    run_stateful(*seeded, SCENARIOS, connections=False)


def test_stateful_connections(seeded: tuple[Any, dict[str, str], Rules]) -> None:
    run_stateful(*seeded, SCENARIOS // 3, connections=True)
