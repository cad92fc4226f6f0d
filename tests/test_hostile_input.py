"""Every route, walked with hostile input, answers a documented 4xx, the same on both databases.

Like the role tests, the routes come from the app's own OpenAPI document, so a new route is
walked without anyone listing it. Each gets, one at a time: hostile path ids (zero,
negative, beyond 64 bits, path traversal, SQL), hostile query values (NUL bytes, huge and
negative numbers, booleans, SQL metacharacters, unicode oddities, invalid cursors) and
hostile bodies (over the size limit, deeply nested, NUL bytes in every text, booleans for
ids, huge integers, wrong types). What a user would check: never a server error; a refusal
carries the documented `{"error": {"code", "message"}}`; SQLite and PostgreSQL give the
same status to the same request, in the same order from the same data. The routes of mail and
calendar connections are walked in a test of their own, so what fails there is reported apart.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from app.db import Database, set_database
from app.main import create_app
from tests.api import ADMIN
from tests.conftest import _empty
from tests.openapi_rules import is_connection
from tests.test_openapi import INSTANCE_ROUTES, document, is_error_body, operations, resolve, seed

HUGE = 2**64
NUL_TEXT = "a\x00b"
SQL = "' OR '1'='1'; DROP TABLE users; --"
ODD_UNICODE = "\u202eevil\u200b\ufeff😀\u0301"
TRAVERSAL = "../../../etc/passwd"

# Path values that name no row: each must be a 404 (or 405 where the path names a sibling
# route), never a database error.
PATH_VALUES = [
    "0",
    "-1",
    str(HUGE),
    str(2**63),
    str(2**31),  # beyond an id column on PostgreSQL, within one on SQLite
    "1.5",
    "true",
    "00001",
    quote(TRAVERSAL, safe=""),
    quote("1' OR '1'='1", safe=""),
    "%00",
    quote(ODD_UNICODE, safe=""),
]
# Query values that no parameter of this API accepts as they are.
QUERY_REFUSED = {
    "integer": [str(HUGE), str(2**63), str(2**31), "-1", "0", "true", "1e400", "1.5", SQL],
    "string": [NUL_TEXT, "\x1f", "x" * 5000],
    "boolean": ["maybe", "2", NUL_TEXT],
    "enum": ["nope", NUL_TEXT],
}
# Query values a text parameter may accept (a search for SQL text finds nothing, harmlessly).
QUERY_ODD = [SQL, ODD_UNICODE, "%", "_", "", "-1", "true"]
# Microsoft Graph's subscription handshake echoes validationToken as text, as Graph requires;
# it is never stored.
ECHOED = {("post", "/api/v1/push/microsoft", "validationToken")}
CURSORS = [
    "",
    "!!",
    "bnVsbA",
    "W10",
    "WyJhIl0",
    "W3RydWVd",
    "WzE4NDQ2NzQ0MDczNzA5NTUxNjE2XQ",
    "WzQyOTQ5NjcyOTZd",  # [2^32]: beyond an id column on PostgreSQL
    "WyIyMDI2LTAxLTAxVDAwOjAwOjAwKzAwOjAwIiwgNDI5NDk2NzI5Nl0",  # [a moment, 2^32]
    "A" * 600,
]


@dataclass
class Probe:
    label: str
    method: str
    path: str
    must_refuse: bool
    params: dict[str, str] | None = None
    content: bytes | None = None
    headers: dict[str, str] | None = None


def _fill(spec: dict[str, Any], template: str, ids: list[int], operation: dict[str, Any]) -> str:
    path = template
    for p in operation.get("parameters", []):
        if p["in"] == "path":
            value = str(ids[0]) if p["schema"].get("type") == "integer" else "imap"
            path = path.replace("{" + p["name"] + "}", value)
    return path


def plausible(spec: dict[str, Any], schema: dict[str, Any], name: str, ids: list[int]) -> Any:
    """A simple value of the schema's shape, so that one hostile field is what is wrong."""
    schema = resolve(spec, schema)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = [s for s in schema[key] if resolve(spec, s).get("type") != "null"]
            return plausible(spec, options[0], name, ids) if options else None
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "integer":
        return ids[0] if name.endswith("_id") else max(1, int(schema.get("minimum", 1)))
    if kind == "number":
        return 1
    if kind == "boolean":
        return True
    if kind == "array":
        return []
    if kind == "object":
        return body_of(spec, schema, ids)
    if schema.get("format") == "date":
        return "2026-03-02"
    if schema.get("format") == "date-time":
        return "2026-03-02T09:00:00+01:00"
    return {"timezone": "Europe/Brussels", "email": "zed@acme.example"}.get(name, "x")


def body_of(spec: dict[str, Any], schema: dict[str, Any], ids: list[int]) -> dict[str, Any]:
    schema = resolve(spec, schema)
    return {
        key: plausible(spec, sub, key, ids)
        for key, sub in schema.get("properties", {}).items()
        if key in schema.get("required", [])
    }


def _strings_to(value: Any, text: str) -> Any:
    """Every string in the body (keys left alone) replaced by `text`."""
    if isinstance(value, str):
        return text
    if isinstance(value, list):
        return [_strings_to(v, text) for v in value]
    if isinstance(value, dict):
        return {k: _strings_to(v, text) for k, v in value.items()}
    return value


def body_probes(
    spec: dict[str, Any], method: str, path: str, schema: dict[str, Any], ids: list[int]
) -> Iterator[Probe]:
    base = body_of(spec, schema, ids)
    properties = resolve(spec, schema).get("properties", {})
    json_type = {"Content-Type": "application/json"}

    def probe(label: str, body: Any, refuse: bool = True) -> Probe:
        return Probe(label, method, path, refuse, content=json.dumps(body).encode())

    yield Probe("2 MiB body", method, path, True, content=b" " * (2 << 20), headers=json_type)
    deep = ("[" * 100_000 + "]" * 100_000).encode()
    yield Probe("deeply nested JSON", method, path, True, content=deep, headers=json_type)
    yield Probe("truncated JSON", method, path, True, content=b'{"name": ', headers=json_type)
    yield probe("a list for the object", [base])
    yield probe("a string for the object", "x")
    yield probe("null for the object", None)
    texts = [k for k, v in properties.items() if _admits(spec, v, "string")]
    if texts:
        yield probe(
            "NUL in every text", _strings_to(base, NUL_TEXT) | dict.fromkeys(texts, NUL_TEXT)
        )
        yield probe("control character in every text", base | dict.fromkeys(texts, "a\x1bb"))
        yield probe("lone surrogate in every text", base | dict.fromkeys(texts, "\ud800"))
        yield probe("5,000-character texts", base | dict.fromkeys(texts, "x" * 5000))
        yield probe("SQL in every text", base | dict.fromkeys(texts, SQL), refuse=False)
        yield probe("odd unicode in every text", base | dict.fromkeys(texts, ODD_UNICODE), False)
    numbers = [k for k, v in properties.items() if _admits(spec, v, "integer")]
    if numbers:
        yield probe("true for every integer", base | dict.fromkeys(numbers, True))
        yield probe("2^64 for every integer", base | dict.fromkeys(numbers, HUGE))
        yield probe("2^31 for every integer", base | dict.fromkeys(numbers, 2**31))
        yield probe("-1 for every integer", base | dict.fromkeys(numbers, -1))
        yield probe("a string for every integer", base | dict.fromkeys(numbers, "1"))
        yield probe("1.5 for every integer", base | dict.fromkeys(numbers, 1.5))
    lists = [k for k, v in properties.items() if _admits(spec, v, "array")]
    if lists:
        yield probe("100,000-item lists", base | dict.fromkeys(lists, [1] * 100_000))
    dates = [k for k, v in properties.items() if _formats(spec, v) & {"date", "date-time"}]
    if dates:
        yield probe("0 for every date", base | dict.fromkeys(dates, 0))
        yield probe("year 1 with -14:00", base | dict.fromkeys(dates, "0001-01-01T00:00:00-14:00"))


def _query_kind(spec: dict[str, Any], schema: dict[str, Any]) -> str:
    kinds = [v for v in _variants(spec, schema) if v.get("type") != "null"]
    if any("enum" in v for v in kinds):
        return "enum"
    return str(kinds[0].get("type")) if kinds else "string"


def _variants(spec: dict[str, Any], schema: dict[str, Any]) -> list[dict[str, Any]]:
    schema = resolve(spec, schema)
    options = schema.get("anyOf") or schema.get("oneOf")
    if options:
        return [v for option in options for v in _variants(spec, option)]
    return [schema]


def _admits(spec: dict[str, Any], schema: dict[str, Any], kind: str) -> bool:
    return any(v.get("type") == kind for v in _variants(spec, schema))


def _formats(spec: dict[str, Any], schema: dict[str, Any]) -> set[str]:
    return {v["format"] for v in _variants(spec, schema) if "format" in v}


def probes(spec: dict[str, Any], ids: list[int]) -> Iterator[Probe]:
    for method, template, operation in operations(spec):
        parameters = operation.get("parameters", [])
        path = _fill(spec, template, ids, operation)
        for p in parameters:
            if p["in"] == "path" and p["schema"].get("type") == "integer":
                for value in PATH_VALUES:
                    hostile = template.replace("{" + p["name"] + "}", value)
                    yield Probe(
                        f"path {p['name']}={value}",
                        method,
                        _fill(spec, hostile, ids, operation),
                        True,
                    )
        for p in parameters:
            if p["in"] != "query":
                continue
            kind = _query_kind(spec, p["schema"])
            refused = CURSORS if p["name"] == "cursor" else QUERY_REFUSED.get(kind, [])
            echoed = (method, template, p["name"]) in ECHOED
            for value in refused:
                label = f"query {p['name']}={value[:20]!r}"
                yield Probe(label, method, path, not echoed, {p["name"]: value})
            for value in QUERY_ODD if kind == "string" and p["name"] != "cursor" else []:
                label = f"query {p['name']}={value[:20]!r}"
                yield Probe(label, method, path, False, {p["name"]: value})
        body = operation.get("requestBody", {}).get("content", {}).get("application/json")
        if body is not None:
            yield from body_probes(spec, method, path, body["schema"], ids)


def run(
    client: TestClient, spec: dict[str, Any], paths: Callable[[str], bool]
) -> tuple[dict[str, int], list[str]]:
    headers, ids = seed(client)
    statuses: dict[str, int] = {}
    wrong: list[str] = []
    for probe in probes(spec, ids):
        if not paths(probe.path):
            continue
        template_auth = ADMIN if (probe.method, probe.path) in INSTANCE_ROUTES else headers
        response = client.request(
            probe.method.upper(),
            probe.path,
            params=probe.params,
            content=probe.content,
            headers={**(probe.headers or {"Content-Type": "application/json"}), **template_auth},
        )
        key = f"{probe.method.upper()} {probe.path} [{probe.label}]"
        statuses[key] = response.status_code
        if response.status_code >= 500:
            wrong.append(f"{key} -> {response.status_code} {response.text[:200]}")
        elif response.status_code >= 400 and not is_error_body(_json(response.content)):
            wrong.append(f"{key} -> not the error body: {response.text[:200]}")
        elif probe.must_refuse and response.status_code < 400:
            wrong.append(f"{key} -> accepted ({response.status_code})")
    return statuses, wrong


def _json(content: bytes) -> Any:
    try:
        return json.loads(content)
    except ValueError:
        return None


@pytest.fixture
def both(
    _sqlite_database: Database, _postgresql_database: Database
) -> Iterator[list[tuple[str, Database]]]:
    yield [("sqlite", _sqlite_database), ("postgresql", _postgresql_database)]
    set_database(None)


def walk(both: list[tuple[str, Database]], paths: Callable[[str], bool]) -> tuple[int, list[str]]:
    """The probes of the routes `paths` selects on each database: how many were sent (per
    database), and what went wrong, a wrong answer or one database answering otherwise."""
    spec = document()
    results: dict[str, dict[str, int]] = {}
    problems: list[str] = []
    for name, database in both:
        _empty(database)
        set_database(database)
        with TestClient(create_app(), raise_server_exceptions=False) as client:
            results[name], wrong = run(client, spec, paths)
        problems += [f"{name}: {w}" for w in wrong]
    differ = [
        f"{key}: sqlite {status}, postgresql {results['postgresql'].get(key)}"
        for key, status in results["sqlite"].items()
        if results["postgresql"].get(key) != status
    ]
    return len(results["sqlite"]), problems + differ


def test_hostile_input_gets_the_same_documented_refusal_on_both_databases(
    both: list[tuple[str, Database]],
) -> None:
    sent, problems = walk(both, lambda path: not is_connection(path))
    assert sent > 500  # every route was walked
    assert not problems, "\n".join(problems)


def test_hostile_input_to_connections(both: list[tuple[str, Database]]) -> None:
    """The same for the routes of mail and calendar connections, reported apart."""
    sent, problems = walk(both, is_connection)
    assert sent > 50
    assert not problems, "\n".join(problems)
