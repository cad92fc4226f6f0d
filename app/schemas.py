"""Schemas shared by every domain: the error body and the documented error responses."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorBody(BaseModel):
    error: ErrorDetail


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description}


# Added to every route: bad input, no or bad key, role forbids, not visible, validation.
COMMON_ERRORS: dict[int | str, dict[str, Any]] = {
    400: _error("Bad input (malformed JSON, an invalid cursor or parameter)"),
    401: _error("No API key, or an invalid one"),
    403: _error("The caller's role does not allow this"),
    404: _error("Not found, or not visible to the caller"),
    422: _error("The body or the query failed validation"),
}
CONFLICT_ERROR: dict[int | str, dict[str, Any]] = {409: _error("Conflicts with existing data")}
