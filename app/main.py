"""create_app(): the FastAPI application, its routers and the one error handler."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import DataError, IntegrityError
from starlette.exceptions import HTTPException as StarletteHTTPException

from app import observability
from app.activities.routes import router as activities_router
from app.calls.routes import router as calls_router
from app.connections.push_google import router as push_google_router
from app.connections.push_microsoft import router as push_microsoft_router
from app.connections.routes import router as connections_router
from app.contacts.routes import router as contacts_router
from app.deals.routes import router as deals_router
from app.errors import AppError
from app.quotas.routes import router as quotas_router
from app.schemas import COMMON_ERRORS
from app.sync.oauth_routes import router as oauth_router
from app.users.routes import router as users_router

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
    parts = []
    for e in errors[:5]:
        where = ".".join(str(p) for p in e.get("loc", ()) if p != "body")
        parts.append(f"{where}: {e.get('msg', 'invalid')}" if where else str(e.get("msg")))
    return JSONResponse(_body("validation_error", "; ".join(parts)), status_code=422)


async def _integrity_error(_request: Request, error: Exception) -> JSONResponse:
    """A concurrent writer won a race past the service's own checks: a conflict, not a 500."""
    return JSONResponse(
        _body("conflict", "conflicts with existing data; retry after reading it again"),
        status_code=409,
    )


async def _unstorable(_request: Request, error: Exception) -> JSONResponse:
    """A value no column or date can hold (an id beyond 64 bits, year 10000, a NUL byte in
    text for PostgreSQL): bad input, whichever layer noticed it."""
    return JSONResponse(
        _body("bad_request", "a value cannot be stored: out of range, or it holds a NUL character"),
        status_code=400,
    )


async def _http_error(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    code = _HTTP_CODES.get(error.status_code, "error")
    return JSONResponse(
        _body(code, str(error.detail)), status_code=error.status_code, headers=error.headers
    )


def create_app() -> FastAPI:
    app = FastAPI(
        title="Tally",
        version="0.1.0",
        summary="Automatic sales-activity capture and quota rollups",
        responses={400: COMMON_ERRORS[400], 422: COMMON_ERRORS[422]},
    )
    for router in (
        users_router,
        oauth_router,
        connections_router,
        activities_router,
        contacts_router,
        deals_router,
        quotas_router,
        calls_router,
        push_microsoft_router,
        push_google_router,
    ):
        app.include_router(router, prefix=API_PREFIX, responses=COMMON_ERRORS)
    app.add_exception_handler(AppError, _app_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(IntegrityError, _integrity_error)
    app.add_exception_handler(DataError, _unstorable)
    app.add_exception_handler(OverflowError, _unstorable)
    observability.install(app)
    return app
