"""create_app(): the FastAPI application, its routers and the one error handler."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException

from app import (
    docs_ui,
    health,
    limits,
    observability,
    tables,  # noqa: F401  (every table, before the first query)
)
from app.activities.routes import router as activities_router
from app.alerts.routes import router as alerts_router
from app.calls.routes import router as calls_router
from app.chat.routes import router as chat_router
from app.config import settings
from app.connections.push_google import router as push_google_router
from app.connections.push_microsoft import router as push_microsoft_router
from app.connections.routes import router as connections_router
from app.contacts.routes import router as contacts_router
from app.dashboard import routes as dashboard
from app.deals.routes import router as deals_router
from app.errors import AppError
from app.insights.routes import router as insights_router
from app.quotas.routes import router as quotas_router
from app.schemas import (
    COMMON_ERRORS,
    LINE_PATTERN,
    NAME_PATTERN,
    OUT_OF_RANGE,
    TEXT_PATTERN,
)
from app.signin.routes import router as signin_router
from app.sync.oauth_routes import router as oauth_router
from app.sync.push_slack import router as push_slack_router
from app.users.routes import router as users_router
from app.users.schemas import DOMAIN_PATTERN, EMAIL_PATTERN, PHONE_PATTERN
from app.webhooks.routes import router as webhooks_router

API_PREFIX = "/api/v1"

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    503: "unavailable",
}


# What a pattern means, in words, instead of the regular expression.
_PATTERN_MESSAGES = {
    NAME_PATTERN: "must not be blank, nor hold a control character (NUL, tab, line break...)",
    LINE_PATTERN: "must not hold a control character (NUL, tab, line break...)",
    TEXT_PATTERN: "must not hold a NUL or another control character but tab and line breaks",
    DOMAIN_PATTERN: "must be a domain name (labels of letters, digits and hyphens, dotted)",
    EMAIL_PATTERN: "must be an email address (local part, @, domain name)",
    PHONE_PATTERN: "must be a phone number (digits, a leading +, spaces ( ) . / -)",
}


def _body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


async def _app_error(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, AppError)
    return JSONResponse(_body(error.code, error.message), status_code=error.status_code)


async def _validation_error(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    errors = error.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return JSONResponse(_body("bad_request", "the body is not valid JSON"), status_code=400)
    if errors and all(tuple(e.get("loc", ())) == ("query", "cursor") for e in errors):
        # the contract: a cursor this API did not make is bad input (400), however it is wrong
        return JSONResponse(_body("bad_request", "invalid cursor"), status_code=400)
    status, code = 422, "validation_error"
    if all(e.get("type") == OUT_OF_RANGE for e in errors):
        # a real date the API cannot compute with (year 1 or 9999): bad input, as the spec says
        status, code = 400, "bad_request"
    parts = []
    for e in errors[:5]:
        where = ".".join(str(p) for p in e.get("loc", ()) if p != "body")
        text = _PATTERN_MESSAGES.get(str((e.get("ctx") or {}).get("pattern")), e.get("msg"))
        parts.append(f"{where}: {text}" if where else str(text))
    return JSONResponse(_body(code, "; ".join(parts)), status_code=status)


async def _integrity_error(_request: Request, error: Exception) -> JSONResponse:
    """A concurrent writer won a race past the service's own checks: a conflict, not a 500."""
    return JSONResponse(
        _body("conflict", "conflicts with existing data; retry after reading it again"),
        status_code=409,
    )


async def _unstorable(_request: Request, error: Exception) -> JSONResponse:
    """A value no column or date can hold (an id beyond 32 bits, year 10000, a NUL byte in
    text for PostgreSQL): bad input, whichever layer noticed it."""
    return JSONResponse(
        _body("bad_request", "a value cannot be stored: out of range, or it holds a NUL character"),
        status_code=400,
    )


async def _http_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    code = _HTTP_CODES.get(error.status_code, "error")
    headers = dict(error.headers or {})
    message = str(error.detail)
    if error.status_code == 405:
        # Starlette's Allow names the methods of the first route that matched the path only
        headers["Allow"] = ", ".join(sorted(limits.allowed_methods(request.app, request.url.path)))
        message = f"{request.method} is not allowed here; allowed: {headers['Allow']}"
    return JSONResponse(_body(code, message), status_code=error.status_code, headers=headers)


# A created resource's id feeds the calls on it (OpenAPI links: clients and stateful testing
# follow them): POST path -> (parameter, the paths that take it).
_LINKS = {
    "/api/v1/deals": (
        "deal_id",
        ["/api/v1/deals/{deal_id}", "/api/v1/deals/{deal_id}/history"],
    ),
    "/api/v1/quotas": ("quota_id", ["/api/v1/quotas/{quota_id}"]),
}


def _add_links(spec: dict[str, Any]) -> None:
    paths = spec.get("paths", {})
    for created, (parameter, targets) in _LINKS.items():
        response = paths.get(created, {}).get("post", {}).get("responses", {}).get("201")
        if response is None:
            continue
        links = response.setdefault("links", {})
        for target in targets:
            for operation in paths.get(target, {}).values():
                if isinstance(operation, dict) and "operationId" in operation:
                    links[operation["operationId"]] = {
                        "operationId": operation["operationId"],
                        "parameters": {parameter: "$response.body#/id"},
                    }


def _openapi_with_limits(app: FastAPI) -> None:
    """The OpenAPI also states the rules enforced outside the route signatures: path ids."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = original()
            limits.document_path_ids(spec)
            _add_links(spec)
        assert app.openapi_schema is not None
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def create_app() -> FastAPI:
    app = FastAPI(
        title="Tally",
        version="0.1.0",
        summary="Automatic sales-activity capture and quota rollups",
        dependencies=[Depends(limits.single_query_values)],
        responses={
            400: COMMON_ERRORS[400],
            413: COMMON_ERRORS[413],
            422: COMMON_ERRORS[422],
        },
    )
    for router in (
        users_router,
        oauth_router,
        connections_router,
        activities_router,
        contacts_router,
        deals_router,
        quotas_router,
        insights_router,
        alerts_router,
        calls_router,
        chat_router,
        push_microsoft_router,
        push_google_router,
        push_slack_router,
        signin_router,
        webhooks_router,
    ):
        limits.tighten_path_ids(router)
        app.include_router(router, prefix=API_PREFIX, responses=COMMON_ERRORS)
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(IntegrityError, _integrity_error)
    app.add_exception_handler(DataError, _unstorable)
    app.add_exception_handler(OverflowError, _unstorable)
    # a body over the limit is refused before anything reads it (inside the metrics, which
    # count the 413)
    app.add_middleware(limits.BodyLimit, limit=settings.max_body_bytes)
    observability.install(app)
    _openapi_with_limits(app)
    docs_ui.install(app)  # /docs and /redoc from packaged files
    health.install(app)  # /readyz
    dashboard.install(app)  # / and /assets/<version>/: the dashboard's files
    return app
