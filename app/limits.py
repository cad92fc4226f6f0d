"""Limits on what clients send: the request body's size, ids in paths, one value per query
parameter.

`BodyLimit` is a pure ASGI middleware: it answers 413 before the application sees a body
larger than the limit, whether the client declared its size (Content-Length) or streams it
in chunks without one. It reads the body into memory up to the limit (what every route does
anyway, to parse JSON) and hands it on unchanged.

`tighten_path_ids` makes every integer path parameter match only an id that can exist
(1 to 2^31-1, written without sign or leading zeros), so `/users/me` is never read as an id
and `/deals/99999999999999999999` is a 404 on both databases instead of a database error.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from types import UnionType
from typing import Any, Union, get_args, get_origin

import fastapi.routing
from fastapi import APIRouter, FastAPI, Request
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.convertors import Convertor, register_url_convertor
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.schemas import MAX_ID

PAYLOAD_TOO_LARGE = 413


def _error(message: str) -> bytes:
    return json.dumps({"error": {"code": "payload_too_large", "message": message}}).encode()


class BodyLimit:
    """Answer 413 `payload_too_large` to a request whose body exceeds `limit` bytes (or the
    limit of the longest matching prefix in `overrides`, for a route that needs more)."""

    def __init__(
        self, app: ASGIApp, *, limit: int, overrides: Mapping[str, int] | None = None
    ) -> None:
        self.app = app
        self.limit = limit
        self.overrides = sorted((overrides or {}).items(), key=lambda item: -len(item[0]))

    def limit_for(self, path: str) -> int:
        for prefix, limit in self.overrides:
            if path.startswith(prefix):
                return limit
        return self.limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _too_large(send, limit)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away: let the app see it
                await self.app(scope, _replay([message], receive), send)
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await _too_large(send, limit)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body: Message = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        await self.app(scope, _replay([body], receive), send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server refuses a malformed length before we get here
    return None


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """A receive that gives the buffered messages first, then whatever the client sends
    (an http.disconnect)."""
    pending = list(messages)

    async def replayed() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replayed


async def _too_large(send: Send, limit: int) -> None:
    body = _error(f"the request body is larger than the limit of {limit} bytes")
    await send(
        {
            "type": "http.response.start",
            "status": PAYLOAD_TOO_LARGE,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                # the rest of the body is not read: the connection cannot be reused
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


# --- ids in paths -----------------------------------------------------------------------------


def id_regex(maximum: int) -> str:
    """A regular expression for the decimal numbers from 1 to `maximum` (no sign, no leading
    zero): shorter numbers, then same-length ones digit by digit below `maximum`."""
    digits = str(maximum)
    parts = []
    if len(digits) > 1:
        parts.append(f"[1-9][0-9]{{0,{len(digits) - 2}}}")
    for i, digit in enumerate(digits):
        low = "1" if i == 0 else "0"
        high = int(digit) - 1
        if high >= int(low):
            rest = len(digits) - i - 1
            tail = f"[0-9]{{{rest}}}" if rest else ""
            parts.append(f"{digits[:i]}[{low}-{high}]{tail}")
    parts.append(digits)
    return "(?:" + "|".join(parts) + ")"


class IdConvertor(Convertor[int]):
    regex = id_regex(MAX_ID)

    def convert(self, value: str) -> int:
        return int(value)

    def to_string(self, value: int) -> str:
        return str(value)


register_url_convertor("id", IdConvertor())

_PLAIN_PARAM = re.compile(r"{(\w+)}")


def tighten_path_ids(router: APIRouter) -> None:
    """Route every `int` path parameter of `router` through the `id` convertor (before the
    router is included: inclusion compiles the paths); the OpenAPI path stays
    `/deals/{deal_id}` and says 1..2^31-1 (see `document_path_ids`)."""
    for route in router.routes:
        if not isinstance(route, APIRoute):
            continue
        ints = {p.name for p in route.dependant.path_params if p.field_info.annotation is int}
        if not ints:
            continue

        def convert(match: re.Match[str], ints: set[str] = ints) -> str:
            name = match.group(1)
            return f"{{{name}:id}}" if name in ints else match.group(0)

        route.path = _PLAIN_PARAM.sub(convert, route.path)
        route.path_regex, route.path_format, route.param_convertors = compile_path(route.path)


def allowed_methods(app: FastAPI, path: str) -> set[str]:
    """Every method registered on `path` (FastAPI makes one route per method)."""
    methods: set[str] = set()
    for route in _routes(app):
        regex = getattr(route, "path_regex", None)
        if regex is not None and regex.match(path):
            methods |= set(getattr(route, "methods", None) or ())
    return methods


def _routes(app: FastAPI) -> list[Any]:
    # FastAPI >= 0.160 keeps included routers whole; iter_route_contexts flattens them
    flatten = getattr(fastapi.routing, "iter_route_contexts", None)
    return list(flatten(app.routes)) if flatten else list(app.routes)


def integer_bounds(node: Any) -> None:
    """Put back the integer bounds of integer schemas: FastAPI writes a body model's bounds
    as floats (12.0), which a client may read as a fraction allowed."""
    if isinstance(node, dict):
        if node.get("type") == "integer":
            for key in ("minimum", "maximum"):
                if isinstance(node.get(key), float):
                    node[key] = int(node[key])
        for value in node.values():
            integer_bounds(value)
    elif isinstance(node, list):
        for value in node:
            integer_bounds(value)


def document_path_ids(spec: dict[str, Any]) -> None:
    """State in the OpenAPI what the `id` convertor enforces: ids from 1 to 2^31-1."""
    integer_bounds(spec)
    for item in spec.get("paths", {}).values():
        for operation in item.values():
            if not isinstance(operation, dict):
                continue
            for parameter in operation.get("parameters", []):
                schema = parameter.get("schema", {})
                if parameter.get("in") == "path" and schema.get("type") == "integer":
                    schema.setdefault("minimum", 1)
                    schema.setdefault("maximum", MAX_ID)
                    parameter.setdefault(
                        "description", "an id (1 to 2^31-1); any other value is a 404"
                    )


# --- one value per query parameter ----------------------------------------------------------


def _takes_many(annotation: Any) -> bool:
    origin = get_origin(annotation)
    if origin in (Union, UnionType):
        return any(_takes_many(arg) for arg in get_args(annotation))
    return (origin or annotation) in (list, tuple, set, frozenset)


def _scalar_query_names(dependant: Dependant) -> frozenset[str]:
    names: set[str] = set()
    pending = [dependant]
    while pending:
        current = pending.pop()
        for field in current.query_params:
            if not _takes_many(field.field_info.annotation):
                names.add(field.alias)
        pending.extend(current.dependencies)
    return frozenset(names)


async def single_query_values(request: Request) -> None:
    """A global dependency: a query parameter that takes one value given twice is a 422, not
    silently the last one (`?active=true&active=false` holds no answer the OpenAPI admits)."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    # async and no cache: a walk of a few dependencies, with no thread hop per request
    names = _scalar_query_names(route.dependant)
    repeated = sorted(name for name in names if len(request.query_params.getlist(name)) > 1)
    if repeated:
        raise RequestValidationError(
            [
                {
                    "type": "value_error",
                    "loc": ("query", name),
                    "msg": "give one value, not several",
                    "input": request.query_params.getlist(name),
                }
                for name in repeated
            ]
        )
