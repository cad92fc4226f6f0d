"""Keyset pagination: `{"items": [...], "next_cursor": ...}` with an opaque cursor."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Annotated, Any, Generic, Protocol, TypeVar

from fastapi import Query
from pydantic import BaseModel

from app.errors import BadRequest
from app.schemas import MAX_ID

T = TypeVar("T")
C = TypeVar("C")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = None


class PageParams(BaseModel):
    limit: int = 100
    cursor: str | None = None


# A cursor is base64url without padding, as encode_cursor makes it; the longest one made (an
# activity's [occurred_at, id]) is under 100 characters.
CURSOR_PATTERN = r"^[A-Za-z0-9_-]+$"
MAX_CURSOR = 512


def page_params(
    limit: Annotated[int, Query(ge=1, le=1000, description="page size")] = 100,
    cursor: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=MAX_CURSOR,
            pattern=CURSOR_PATTERN,
            description="next_cursor of the previous page, as given; leave it out for the first "
            "page. One not made by this API is a 400.",
        ),
    ] = None,
) -> PageParams:
    return PageParams(limit=limit, cursor=cursor)


def encode_cursor(values: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None, read: Callable[[list[Any]], C]) -> C | None:
    """The position a cursor encodes, read by `read`; anything malformed is a 400."""
    if cursor is None:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(values, list):
            raise ValueError("not a list")
        return read(values)
    except (ValueError, TypeError, IndexError, OverflowError, UnicodeDecodeError) as error:
        raise BadRequest("invalid cursor") from error


class _HasId(Protocol):
    @property
    def id(self) -> int: ...


Identified = TypeVar("Identified", bound=_HasId)


def page_by_id(items: list[Identified], limit: int) -> Page[Identified]:
    """A page from up to `limit + 1` items ordered by id: the extra one only says there is more."""
    shown = items[:limit]
    more = len(items) > limit
    return Page(items=shown, next_cursor=encode_cursor([shown[-1].id]) if more else None)


def read_id(values: list[Any]) -> int:
    """A cursor `[id]`: exactly one JSON integer an id column holds (not `true`, not 1.5)."""
    if len(values) != 1 or isinstance(values[0], bool) or not isinstance(values[0], int):
        raise ValueError("not an id")
    if not 0 <= values[0] <= MAX_ID:
        raise ValueError("not an id")
    return values[0]
