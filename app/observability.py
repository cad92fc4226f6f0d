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
        # the route template, not the URL, keeps the label set small; routers included under a
        # prefix report their path without it, so it is put back
        route = getattr(request.scope.get("route"), "path", None)
        prefix = "/api/v1" if request.url.path.startswith("/api/v1/") else ""
        path = prefix + route if route else "unmatched"
        HTTP_REQUESTS.labels(request.method, path, str(response.status_code)).inc()
        HTTP_LATENCY.labels(request.method, path).observe(time.perf_counter() - started)
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
