"""Schemas shared by every domain: the error body, the documented error responses, and the
annotated types every request model builds on (`Id`, `Name`, `ShortText`, `no_nul`)."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import Query
from pydantic import AfterValidator, BaseModel, BeforeValidator, Field, WithJsonSchema
from pydantic_core import PydanticCustomError

# The largest id a row can have: id columns are INTEGER, 32 bits on PostgreSQL. A larger one
# would not even bind there (a database error) while SQLite just finds nothing, so it is
# refused (or not found) before either database sees it, and the same on both.
MAX_ID = 2**31 - 1

# Control characters (Unicode category Cc: C0, DEL and C1). A NUL byte is stored by SQLite and
# refused by PostgreSQL, so it is refused here, before either sees it.
_CONTROL = r"\x00-\x1f\x7f-\x9f"
# A name: no control character and at least one character that is not white space.
NAME_PATTERN = rf"^[^{_CONTROL}]*[^\s{_CONTROL}][^{_CONTROL}]*$"
# Free text: line breaks and tabs are allowed, NUL and the other C0 controls and DEL are not.
TEXT_PATTERN = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"
# One line of text that may be empty (a title, a label): no control character at all.
LINE_PATTERN = rf"^[^{_CONTROL}]*$"


def no_nul(value: str) -> str:
    """Refuse a NUL character (a 422), for any `str` field not built on the types below:
    `Annotated[str, AfterValidator(no_nul)]`. Prefer `Name`/`ShortText`, whose pattern also
    shows the rule in the OpenAPI."""
    if "\x00" in value:
        raise ValueError("must not contain a NUL character")
    return value


def _strip(value: str) -> str:
    return value.strip()


def _json_integer(value: Any) -> Any:
    # JSON Schema's integer is any number without a fraction (1.0 included); a boolean or a
    # string is not one, whatever Python's int() would make of it
    if isinstance(value, bool | str | bytes):
        raise ValueError("must be a JSON integer, not a boolean or a string")
    return value


JSON_INTEGER = BeforeValidator(_json_integer)
"""For an `int` field: `Annotated[int, Field(ge=.., le=..), JSON_INTEGER]` refuses `true` and
`"1"`, which pydantic's lax mode would read as 1."""

Id = Annotated[
    int,
    Field(ge=1, le=MAX_ID),
    JSON_INTEGER,
    # said outright: derived through the validator, the bounds would become floats
    WithJsonSchema(
        {
            "type": "integer",
            "minimum": 1,
            "maximum": MAX_ID,
            "description": "an id: a JSON integer from 1 to 2^31-1",
        }
    ),
]
"""An id in a request body: a JSON integer (not `true`, not `"1"`; `1.0` is the integer 1,
as JSON Schema has it; `1.5` is refused) from 1 to 2^31-1, so it fits an id column on both
databases and `true` is never read as 1."""

Name = Annotated[
    str,
    Field(min_length=1, max_length=200, pattern=NAME_PATTERN),
    AfterValidator(_strip),
]
"""A name (of a person, a team, an organization, a deal): 1 to 200 characters, at least one
of them not white space, no control character (NUL, tab, line break, DEL...). The constraints
are checked on the value as sent, then leading and trailing white space is stripped, so what
the OpenAPI's `pattern`/`maxLength` accept is exactly what the server accepts."""

ShortText = Annotated[str, Field(max_length=1000, pattern=TEXT_PATTERN)]
"""Free text up to 1,000 characters (a note, a description): may be empty and may hold line
breaks and tabs; NUL and the other control characters are refused."""

Line = Annotated[str, Field(max_length=200, pattern=LINE_PATTERN)]
"""One line up to 200 characters that may be empty (a title, a label): no control character."""


# Dates and times: ISO 8601 strings only (never a number: `0` is not 1970-01-01), years
# 1900 to 2999, so that moving a time to UTC or a day to a period's bounds never leaves
# what Python and both databases can hold. The patterns accept exactly the valid dates
# (February 29 in leap years only), so the OpenAPI says precisely what the server accepts.
_YEAR = r"(?:19|2[0-9])[0-9]{2}"
_MONTH_DAY = (
    r"(?:(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8])"
    r"|(?:0[13-9]|1[0-2])-(?:29|30)"
    r"|(?:0[13578]|1[02])-31)"
)
_LEAP_DAY = r"(?:(?:19|2[0-9])(?:0[48]|[2468][048]|[13579][26])|2[048]00)-02-29"
_DAY = rf"(?:{_YEAR}-{_MONTH_DAY}|{_LEAP_DAY})"
_TIME = r"(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{1,6})?"
_OFFSET = r"(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
DAY_PATTERN = rf"^{_DAY}$"
MOMENT_PATTERN = rf"^{_DAY}T{_TIME}{_OFFSET}$"
# a time bound of a query: a day (in the organization's zone) or a moment
BOUND_PATTERN = rf"^{_DAY}(?:T{_TIME}{_OFFSET})?$"
_DAY_RE, _MOMENT_RE = re.compile(DAY_PATTERN), re.compile(MOMENT_PATTERN)
# the same shapes in any year: a real date outside 1900..2999 is bad input (a 400), a string
# that is no date at all fails validation (a 422)
_ANY_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_ANY_MOMENT = re.compile(rf"[0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}T{_TIME}{_OFFSET}")
OUT_OF_RANGE = "out_of_range"  # the error type the handler answers with a 400


def _out_of_range(value: str, parse: Any) -> PydanticCustomError:
    try:
        parse(value)
    except ValueError:
        return PydanticCustomError("value_error", "must be a date YYYY-MM-DD")
    return PydanticCustomError(OUT_OF_RANGE, "out of range: years 1900 to 2999 only")


def _day(value: Any) -> Any:
    if isinstance(value, str):
        if not _DAY_RE.fullmatch(value):
            if _ANY_DAY.fullmatch(value):
                raise _out_of_range(value, date.fromisoformat)
            raise ValueError("must be a date YYYY-MM-DD between 1900-01-01 and 2999-12-31")
        return date.fromisoformat(value)
    if isinstance(value, date) and not isinstance(value, datetime):
        return value  # from code, not from a client
    raise ValueError("must be a date string YYYY-MM-DD")


def _moment(value: Any) -> Any:
    if isinstance(value, str):
        if not _MOMENT_RE.fullmatch(value):
            if _ANY_MOMENT.fullmatch(value):
                raise _out_of_range(value, datetime.fromisoformat)
            raise ValueError(
                "must be an ISO 8601 date-time with seconds and a UTC offset "
                "(2026-03-02T09:30:00+01:00), in the years 1900 to 2999"
            )
        return datetime.fromisoformat(value)
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value
    raise ValueError("must be an ISO 8601 date-time string with a UTC offset")


Day = Annotated[
    date,
    BeforeValidator(_day),
    WithJsonSchema({"type": "string", "format": "date", "pattern": DAY_PATTERN}),
]
"""A date in a body or a query: the string YYYY-MM-DD (not a number, not a date-time),
1900-01-01 to 2999-12-31."""

Moment = Annotated[
    datetime,
    BeforeValidator(_moment),
    WithJsonSchema({"type": "string", "format": "date-time", "pattern": MOMENT_PATTERN}),
]
"""An instant in a body: an ISO 8601 string with seconds and a UTC offset (`Z` or ±hh:mm),
years 1900 to 2999; an aware datetime."""


def decimal_text(pattern: str, doc: str) -> Any:
    """Refuse a decimal string the OpenAPI's pattern refuses ("1e3", "+5", " 5"), saying
    `doc`; numbers are checked by the Field's bounds and decimal places."""
    compiled = re.compile(pattern)

    def check(value: Any) -> Any:
        if isinstance(value, str) and not compiled.fullmatch(value):
            raise ValueError(f"{doc} (a decimal string: no sign, exponent or leading zero)")
        return value

    return BeforeValidator(check)


def decimal_schema(number: dict[str, Any], pattern: str, doc: str) -> WithJsonSchema:
    return WithJsonSchema(
        {
            "anyOf": [{"type": "number", **number}, {"type": "string", "pattern": pattern}],
            "description": doc,
        }
    )


def id_query(description: str) -> Any:
    """A query parameter naming a row: 1 to 2^31-1 (else a 422), as the OpenAPI says."""
    return Query(ge=1, le=MAX_ID, description=description)


def text_query(max_length: int, description: str) -> Any:
    """A text query parameter: bounded, and no control character (a NUL would be an error on
    PostgreSQL and a plain character on SQLite)."""
    return Query(max_length=max_length, pattern=LINE_PATTERN, description=description)


ONE_SUBJECT_DOC = "not with {other}: give user_id or team_id (or neither, for the caller)"


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
    413: _error("The request body is larger than the limit (1 MiB unless configured)"),
    422: _error("The body or the query failed validation"),
    429: {
        **_error(
            "Too many failed authentications (or failed webhook/OAuth calls) from this client "
            "address or for this key prefix: code rate_limited; wait Retry-After seconds"
        ),
        "headers": {
            "Retry-After": {
                "description": "seconds until the window of counted failures ends",
                "schema": {"type": "integer", "minimum": 1},
            }
        },
    },
    503: {
        **_error(
            "The database could not do it now: a lock not granted within the API's lock "
            "timeout (a sync writing the same connection, say), a statement past its time "
            "limit, or no free database connection; code unavailable; retry after Retry-After"
        ),
        "headers": {
            "Retry-After": {
                "description": "seconds to wait before the same request",
                "schema": {"type": "integer", "minimum": 1},
            }
        },
    },
}
CONFLICT_ERROR: dict[int | str, dict[str, Any]] = {409: _error("Conflicts with existing data")}
