"""Prometheus labels take only known values: no request can add a series.

A client chooses the method name and the path of its request. Before, 2,000 requests with
invented methods made 2,000 new series; now the method label is one of a fixed set (else
"other") and the route label is a route's template (else "unmatched").
"""

from __future__ import annotations

import random
import string

from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from app.main import create_app
from app.observability import KNOWN_METHODS


def series() -> set[tuple[str, ...]]:
    return {
        (sample.labels["method"], sample.labels["route"], sample.labels["status"])
        for metric in REGISTRY.collect()
        if metric.name == "tally_http_requests"
        for sample in metric.samples
        if sample.name == "tally_http_requests_total"
    }


def test_invented_methods_and_random_paths_add_no_series() -> None:
    client = TestClient(create_app(), raise_server_exceptions=False)
    rng = random.Random(7)

    def word(n: int) -> str:
        return "".join(rng.choices(string.ascii_uppercase, k=n))

    # the first of each kind may add its one series ("other"/"unmatched", per status)
    for method in [*KNOWN_METHODS, "BREW"]:
        client.request(method, "/warmup/" + word(8))
        client.request(method, "/api/v1/deals/" + word(8))
    before = series()
    for i in range(2000):
        method = word(rng.randint(3, 12)) if i % 2 else rng.choice(sorted(KNOWN_METHODS))
        path = rng.choice(["/", "/api/v1/", "/api/v1/deals/", "/x/"]) + word(rng.randint(1, 30))
        response = client.request(method, path)
        assert response.status_code in (404, 405), (method, path, response.status_code)
    added = series() - before
    assert not added, sorted(added)[:10]
    # every route of the app, those left out of the OpenAPI (/readyz, /docs...) too: other
    # tests in this process have called them
    app = client.app  # type: ignore[attr-defined]
    templates = set(app.openapi()["paths"]) | {
        str(getattr(r, "path_format", None) or getattr(r, "path", "")) for r in app.routes
    }
    assert {m for m, _, _ in series()} <= KNOWN_METHODS | {"other"}
    assert {r for _, r, _ in series()} <= templates | {"unmatched"}


def test_the_route_label_is_the_template() -> None:
    client = TestClient(create_app(), raise_server_exceptions=False)
    client.get("/api/v1/deals/12345")  # 401 without a key, from the deal route
    routes = {r for _, r, status in series() if status == "401"}
    assert "/api/v1/deals/{deal_id}" in routes
    assert not any("12345" in r for r in routes)
