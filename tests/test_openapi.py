"""The OpenAPI document describes every route fully, and no input makes the API answer a 500.

The fuzz test reads the routes from the OpenAPI document itself and sends each one random
query parameters, path ids and bodies (plausible values from the schema mixed with junk:
huge and negative numbers, unicode, NUL characters, nulls, wrong types), then checks that the
answer is never a server error and that every 4xx carries the documented error body.
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any
from urllib.parse import quote

from fastapi.testclient import TestClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from app.contacts.models import Company, Contact
from app.db import Database, session_scope
from app.main import create_app
from app.models import Connection
from tests.api import ADMIN, make_org
from tests.factories import message
from tests.world import World

# Routes that need no key, or another one, and so document fewer errors.
OPS_ROUTES = {("get", "/healthz"), ("get", "/metrics")}
# answered in text/plain: Prometheus, and Graph's validation handshake (which must be a 200)
TEXT_ROUTES = {("get", "/metrics"), ("post", "/api/v1/push/microsoft")}
INSTANCE_ROUTES = {("post", "/api/v1/orgs")}
METHODS = ("get", "post", "put", "patch", "delete")


def document() -> dict[str, Any]:
    spec: dict[str, Any] = create_app().openapi()
    return spec


def operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    ]


def resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = spec["components"]["schemas"][name]
    return schema


def test_the_document_lists_the_contract_routes() -> None:
    found = {(m, p) for m, p, _ in operations(document())}
    for route in [
        ("post", "/api/v1/orgs"),
        ("post", "/api/v1/teams"),
        ("post", "/api/v1/users"),
        ("get", "/api/v1/users/me"),
        ("post", "/api/v1/connections"),
        ("get", "/api/v1/connections"),
        ("get", "/api/v1/connections/{connection_id}"),
        ("post", "/api/v1/connections/{connection_id}/sync"),
        ("delete", "/api/v1/connections/{connection_id}"),
        ("get", "/api/v1/activities"),
        ("get", "/api/v1/contacts"),
        ("get", "/api/v1/companies"),
        ("get", "/api/v1/metrics"),
        ("post", "/api/v1/quotas"),
        ("get", "/api/v1/quotas"),
        ("get", "/api/v1/quotas/attainment"),
        ("post", "/api/v1/deals"),
        ("get", "/api/v1/deals"),
        ("get", "/api/v1/deals/{deal_id}"),
        ("patch", "/api/v1/deals/{deal_id}"),
        ("delete", "/api/v1/deals/{deal_id}"),
        ("get", "/api/v1/deals/{deal_id}/history"),
        ("get", "/api/v1/deals/{deal_id}/activities"),
        ("get", "/api/v1/pipeline/stages"),
        ("put", "/api/v1/pipeline/stages"),
        ("get", "/api/v1/org/exchange-rates"),
        ("put", "/api/v1/org/exchange-rates"),
    ]:
        assert route in found, route


def test_every_route_has_a_summary_typed_responses_and_its_errors() -> None:
    spec = document()
    error_schema = resolve(spec, {"$ref": "#/components/schemas/ErrorBody"})
    detail = resolve(spec, error_schema["properties"]["error"])
    assert set(error_schema["required"]) == {"error"}
    assert set(detail["required"]) == {"code", "message"}
    assert {detail["properties"][k]["type"] for k in ("code", "message")} == {"string"}
    problems = []
    for method, path, operation in operations(spec):
        where = f"{method.upper()} {path}"
        if not operation.get("summary", "").strip():
            problems.append(f"{where}: no summary")
        responses = operation.get("responses", {})
        success = sorted(s for s in responses if s.startswith("2"))
        if len(success) != 1:
            problems.append(f"{where}: success statuses {success}")
            continue
        status = success[0]
        content = responses[status].get("content", {})
        if status == "204":
            if content:
                problems.append(f"{where}: a 204 with a body")
        elif (method, path) in TEXT_ROUTES:
            if "text/plain" not in content:
                problems.append(f"{where}: its text/plain answer is not documented")
        else:
            schema = content.get("application/json", {}).get("schema", {})
            if not ("$ref" in schema or schema.get("type") in ("object", "array")):
                problems.append(f"{where}: untyped {status} response {schema}")
        if (method, path) in OPS_ROUTES:
            needed: set[str] = set()
        elif (method, path) in INSTANCE_ROUTES:
            needed = {"401", "422"}
        else:
            needed = {"401", "403", "404", "422"}
        missing = needed - set(responses)
        if missing:
            problems.append(f"{where}: undocumented errors {sorted(missing)}")
        for code, response in responses.items():
            if code[0] in "45":
                schema = response.get("content", {}).get("application/json", {}).get("schema")
                if schema is None or resolve(spec, schema) != error_schema:
                    problems.append(f"{where}: {code} is not documented as the error body")
        body = operation.get("requestBody")
        if body is not None:
            schema = body.get("content", {}).get("application/json", {}).get("schema", {})
            if "$ref" not in schema:
                problems.append(f"{where}: untyped request body {schema}")
    assert not problems, "\n".join(problems)


def test_routes_that_can_conflict_document_409() -> None:
    spec = document()
    for method, path in (
        ("post", "/api/v1/users"),
        ("post", "/api/v1/quotas"),
        ("post", "/api/v1/deals"),
        ("patch", "/api/v1/deals/{deal_id}"),
        ("put", "/api/v1/pipeline/stages"),
    ):
        assert "409" in spec["paths"][path][method]["responses"], (method, path)


# --- fuzzing ----------------------------------------------------------------------------------

JUNK_TEXT = st.one_of(
    st.text(max_size=30),
    st.sampled_from(
        [
            "",
            " ",
            "\x00",
            "a\x00b",
            "null",
            "-1",
            "0",
            "1e400",
            "NaN",
            "Infinity",
            "99999999999999999999999",
            "%",
            "_",
            "'; DROP TABLE users; --",
            "../../etc/passwd",
            "😀" * 3,
            "é" * 300,
            "x" * 5000,
            "2026-02-30",
            "9999-12-31",
            "0001-01-01",
            "0001-01-01T00:00:00+01:00",
            "9999-12-31T23:59:59-01:00",
            "2026-03-02T10:00:00",
        ]
    ),
)
JUNK_INT = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, -1, 2**31, 2**63, -(2**63) - 1, 10**30]),
)
JUNK_SCALAR = st.one_of(
    JUNK_TEXT,
    JUNK_INT,
    st.floats(allow_nan=False, allow_infinity=False),
    st.booleans(),
    st.none(),
)
JUNK_JSON = st.recursive(
    JUNK_SCALAR,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=8,
)


def dates() -> st.SearchStrategy[str]:
    return st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31)).map(date.isoformat)


def near_dates() -> st.SearchStrategy[str]:
    base = date(2026, 3, 1)
    return st.integers(-800, 800).map(lambda d: (base + timedelta(days=d)).isoformat())


def moments() -> st.SearchStrategy[str]:
    return st.builds(
        lambda d, offset: (
            datetime.combine(d, datetime.min.time(), UTC)
            .astimezone(timezone(timedelta(minutes=offset)))
            .isoformat()
        ),
        st.dates(min_value=date(2, 1, 1), max_value=date(9998, 12, 31)),
        st.integers(-14 * 60, 14 * 60),
    )


def cursors() -> st.SearchStrategy[str]:
    return st.one_of(
        JUNK_TEXT,
        JUNK_JSON.map(lambda v: base64.urlsafe_b64encode(json.dumps(v).encode()).decode()),
        st.tuples(moments(), JUNK_INT).map(
            lambda v: base64.urlsafe_b64encode(json.dumps(list(v)).encode()).decode()
        ),
    )


def mangle(body: dict[str, Any], key: str, junk: Any, drop: bool) -> dict[str, Any]:
    """The body without `key`, or with `key` set to junk."""
    if drop:
        return {k: v for k, v in body.items() if k != key}
    return {**body, key: junk}


class Inputs:
    """Plausible values read from the schema, with the seeded rows' ids, mixed with junk."""

    def __init__(self, spec: dict[str, Any], ids: list[int]) -> None:
        self.spec, self.ids = spec, ids

    def ident(self) -> st.SearchStrategy[int]:
        """Mostly the id of a seeded row, so that handlers get past their lookups."""
        return st.integers(0, 9).flatmap(
            lambda n: (
                st.sampled_from(self.ids) if n < 6 else JUNK_INT if n < 8 else st.integers(-3, 60)
            )
        )

    def named(self, name: str) -> st.SearchStrategy[Any] | None:
        if name in ("start", "end"):
            return st.one_of(near_dates(), dates(), moments(), JUNK_TEXT)
        if name in ("date", "effective_from", "effective_to", "expected_close_date"):
            return st.one_of(near_dates(), dates(), JUNK_TEXT)
        if name == "cursor":
            return cursors()
        if name == "limit":
            return st.one_of(st.integers(-5, 1005), JUNK_INT)
        if name in ("email", "admin_email"):
            return st.one_of(
                st.sampled_from(
                    ["ana@acme.example", "joe@northwind.example", "JOE@Northwind.Example"]
                ),
                st.emails().map(str),
                JUNK_TEXT,
            )
        if name == "domain":
            return st.one_of(st.sampled_from(["northwind.example", "acme.example"]), JUNK_TEXT)
        if name == "timezone":
            return st.one_of(
                st.sampled_from(["Europe/Brussels", "UTC", "Pacific/Kiritimati", "localtime"]),
                JUNK_TEXT,
            )
        if name == "config":
            return st.one_of(
                st.fixed_dictionaries(
                    {
                        "host": st.one_of(st.just("imap.acme.example"), JUNK_TEXT),
                        "port": st.one_of(st.just(993), JUNK_INT),
                        "username": st.one_of(st.just("ana"), JUNK_TEXT),
                        "password": st.one_of(st.just("pw"), JUNK_TEXT),
                    },
                    optional={
                        "security": st.sampled_from(["ssl", "starttls", "none", "tls"]),
                        "folders": st.one_of(st.lists(JUNK_TEXT, max_size=3), JUNK_JSON),
                    },
                ),
                JUNK_JSON,
            )
        if name in ("value", "cost", "probability"):
            amounts = st.decimals(-1, 10**13, places=2, allow_nan=False)
            return st.one_of(amounts.map(str), amounts.map(float), st.integers(-2, 10**14))
        if name == "currency":
            return st.one_of(st.sampled_from(["EUR", "USD", "usd", "XYZ"]), JUNK_TEXT)
        if name in ("created_at", "closed_at"):
            return st.one_of(moments(), JUNK_TEXT)
        if name.endswith("_id") or name.endswith("_ids"):
            one = self.ident()
            return one if name.endswith("_id") else st.lists(one, max_size=3)
        return None

    def value(
        self, schema: dict[str, Any], name: str = "", depth: int = 0
    ) -> st.SearchStrategy[Any]:
        """Mostly a value of the right shape; now and then junk of any type."""
        junk = JUNK_JSON if depth else JUNK_SCALAR
        return st.integers(0, 7).flatmap(
            lambda n: junk if n == 0 else self.plausible(schema, name, depth)
        )

    def plausible(self, schema: dict[str, Any], name: str, depth: int) -> st.SearchStrategy[Any]:
        special = self.named(name)
        if special is not None:
            return special
        schema = resolve(self.spec, schema)
        if "anyOf" in schema:
            return st.one_of([self.plausible(s, name, depth) for s in schema["anyOf"]])
        if "enum" in schema:
            return st.sampled_from(schema["enum"])
        kind = schema.get("type")
        if kind == "integer":
            low, high = schema.get("minimum", -5), schema.get("maximum", 2000)
            return st.integers(int(low) - 2, int(high) + 2)
        if kind == "number":
            return st.floats(-1e6, 1e12, allow_nan=False)
        if kind == "string":
            return st.text(max_size=int(schema.get("maxLength", 40)) + 2)
        if kind == "boolean":
            return st.booleans()
        if kind == "null":
            return st.none()
        if kind == "array" and depth < 3:
            items = self.value(schema.get("items", {}), name.rstrip("s"), depth + 1)
            return st.lists(items, max_size=int(schema.get("maxItems", 4)) + 1)
        if kind == "object" and depth < 3:
            return self.body(schema, depth + 1)
        return JUNK_JSON

    def body(self, schema: dict[str, Any], depth: int = 0) -> st.SearchStrategy[Any]:
        schema = resolve(self.spec, schema)
        properties = schema.get("properties", {})
        if not properties:
            return st.dictionaries(st.text(max_size=8), JUNK_JSON, max_size=4)
        required = set(schema.get("required", []))
        fields = {key: self.value(sub, key, depth + 1) for key, sub in properties.items()}
        plausible = st.fixed_dictionaries(
            {k: v for k, v in fields.items() if k in required},
            optional={k: v for k, v in fields.items() if k not in required},
        )
        # sometimes a field goes missing, or an unknown one comes along
        mangled = st.builds(
            mangle, plausible, st.sampled_from([*properties, "unknown"]), JUNK_JSON, st.booleans()
        )
        return st.integers(0, 9).flatmap(
            lambda n: JUNK_JSON if n == 0 else mangled if n == 1 else plausible
        )


def seed(client: TestClient) -> tuple[dict[str, str], list[int]]:
    """An org with users, a team, a connection, contacts, companies, activities and a quota."""
    org = make_org(client, domains=("acme.example",))
    manager = org.user("mia@acme.example", role="manager")
    team = org.team("East", manager_id=manager["id"])
    ana = org.user("ana@acme.example", team_id=team["id"], aliases=["a.silva@acme.example"])
    quota = client.post(
        "/api/v1/quotas",
        json={
            "metric": "emails_sent",
            "period": "week",
            "target": 5,
            "user_id": ana["id"],
            "effective_from": "2026-01-01",
        },
        headers=org.as_admin(),
    )
    assert quota.status_code == 201, quota.text
    with session_scope() as session:
        row = Connection(org_id=org.id, user_id=ana["id"], provider="imap", config={}, cursors={})
        session.add(row)
        session.flush()
        world = World(org.id, {"ana": ana["id"]}, {"ana": row.id})
    world.ingest(
        "ana",
        message("ana@acme.example", ("Joe <joe@northwind.example>",), folder_role="sent"),
        message("Kim <kim@globex.example>", ("ana@acme.example",)),
    )
    with session_scope() as session:
        extra = [*session.scalars(select(Contact.id)), *session.scalars(select(Company.id))]
    deal = org.deal(ana["id"], contact_ids=extra[:1], external_id="crm-1")
    ids = sorted(
        {1, 2, 3, manager["id"], team["id"], ana["id"], quota.json()["id"], deal["id"], *extra}
    )
    return org.as_admin(), ids


def is_error_body(body: Any) -> bool:
    return (
        isinstance(body, dict)
        and set(body) == {"error"}
        and isinstance(body["error"], dict)
        and set(body["error"]) == {"code", "message"}
        and isinstance(body["error"]["code"], str)
        and isinstance(body["error"]["message"], str)
    )


def test_random_input_never_makes_a_server_error(database: Database) -> None:
    spec = document()
    targets = [
        (method, path, operation)
        for method, path, operation in operations(spec)
        if method in ("get", "post", "patch", "put")
    ]
    assert len(targets) >= 25
    wrong: dict[tuple[str, str, int], str] = {}
    statuses: Counter[int] = Counter()
    with TestClient(create_app(), raise_server_exceptions=False) as client:
        headers, ids = seed(client)
        inputs = Inputs(spec, ids)

        @settings(
            max_examples=500,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
            phases=[Phase.generate],
        )
        @given(data=st.data())
        def probe(data: st.DataObject) -> None:
            method, template, operation = data.draw(st.sampled_from(targets))
            parameters = operation.get("parameters", [])
            path = template
            for p in parameters:
                if p["in"] == "path":
                    value = data.draw(
                        st.integers(0, 9).flatmap(lambda n: JUNK_TEXT if n == 0 else inputs.ident())
                    )
                    segment = quote(str(value), safe="") or "%20"  # stays one path segment
                    path = path.replace("{" + p["name"] + "}", segment)
            query = {}
            for p in parameters:
                if p["in"] != "query":
                    continue
                if p.get("required") or data.draw(st.booleans()):
                    query[p["name"]] = data.draw(inputs.value(p["schema"], p["name"]))
            if data.draw(st.integers(0, 9)) == 0:
                query[data.draw(st.text(min_size=1, max_size=8))] = data.draw(JUNK_TEXT)
            kwargs: dict[str, Any] = {"params": query}
            body = operation.get("requestBody")
            if body is not None:
                schema = body["content"]["application/json"]["schema"]
                kwargs["content"] = json.dumps(data.draw(inputs.body(schema)))
                kwargs["headers"] = {"Content-Type": "application/json"}
            auth = ADMIN if (method, template) in INSTANCE_ROUTES else headers
            kwargs["headers"] = {**kwargs.get("headers", {}), **auth}
            response = client.request(method.upper(), path, **kwargs)
            statuses[response.status_code] += 1
            key = (method.upper(), template, response.status_code)
            shown = f"{method.upper()} {path} params={query!r} body={kwargs.get('content')!r}"
            if response.status_code >= 500:
                wrong.setdefault(key, f"{shown} -> {response.text[:200]}")
            elif 400 <= response.status_code < 500:
                try:
                    parsed = response.json()
                except ValueError:
                    parsed = None
                if not is_error_body(parsed):
                    wrong.setdefault(key, f"{shown} -> not the error body: {response.text[:200]}")
            elif (method, template) not in OPS_ROUTES | TEXT_ROUTES and response.status_code != 204:
                try:
                    response.json()
                except ValueError:
                    wrong.setdefault(key, f"{shown} -> not JSON: {response.text[:200]}")

        probe()
    assert not wrong, "\n".join(f"{k}: {v}" for k, v in sorted(wrong.items()))
    # the fuzzing reached the handlers, not only validation
    assert statuses[200] + statuses[201] + statuses[202] > 60, statuses
    assert sum(n for s, n in statuses.items() if 400 <= s < 500) > 60, statuses
