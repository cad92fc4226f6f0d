"""Structured logs (structlog, secrets redacted), Prometheus metrics and the health endpoint."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import structlog
from fastapi import FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest
from sqlalchemy import text

from app.config import settings

HTTP_REQUESTS = Counter(
    "tally_http_requests_total", "HTTP requests answered", ["method", "route", "status"]
)
HTTP_LATENCY = Histogram("tally_http_request_seconds", "HTTP request latency", ["method", "route"])
SYNC_RUNS = Counter("tally_sync_runs_total", "Connector runs", ["provider", "outcome"])
SYNC_MESSAGES = Counter(
    "tally_sync_messages_total", "Messages seen by sync", ["provider", "status"]
)

# Label values come from fixed sets only, so no request can add a series: a client may send
# any method name and any path (2,000 invented ones would otherwise be 2,000 series).
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
API_PREFIX = "/api/v1"


def method_label(method: str) -> str:
    return method if method in KNOWN_METHODS else "other"


def route_label(scope: MutableMapping[str, Any]) -> str:
    """The template of the route that answered (`/api/v1/deals/{deal_id}`), or "unmatched"
    (no route: a 404, a 405, a body refused before routing)."""
    route = scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    if not isinstance(template, str):
        return "unmatched"
    # routers included under the prefix report their path without it
    path = scope.get("path", "")
    if path.startswith(API_PREFIX + "/") and not template.startswith(API_PREFIX + "/"):
        template = API_PREFIX + template
    return template


_SECRET_KEYS = re.compile(r"pass|secret|token|authorization|api_key|credential", re.IGNORECASE)


def _redact(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event):
        if _SECRET_KEYS.search(key):
            event[key] = "[redacted]"
    return event


def configure_logging() -> None:
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if settings.log_json
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _redact,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelName(settings.log_level.upper())
        ),
    )


def install(app: FastAPI) -> None:
    @app.middleware("http")
    async def _count(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        method, path = method_label(request.method), route_label(request.scope)
        # statuses are the application's own (a fixed set), never the client's
        HTTP_REQUESTS.labels(method, path, str(response.status_code)).inc()
        HTTP_LATENCY.labels(method, path).observe(time.perf_counter() - started)
        return response

    @app.get("/healthz", summary="Liveness and database check", tags=["ops"])
    def healthz() -> dict[str, str]:
        from app.db import get_database

        with get_database().engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        return {"status": "ok", "database": get_database().engine.dialect.name}

    @app.get(
        "/metrics",
        summary="Prometheus metrics",
        tags=["ops"],
        response_class=Response,
        responses={200: {"content": {"text/plain": {}}}},
    )
    def prometheus() -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
