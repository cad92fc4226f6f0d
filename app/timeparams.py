"""Parse the API's time bounds: an ISO datetime with offset, or a date in the org's zone.

`Start` and `End` are the query parameters. Their pattern (stated in the OpenAPI, checked
here) admits exactly the valid days and moments of the years 1900 to 2999, so moving one to
UTC never leaves what Python and both databases hold: `0001-01-01` and
`0001-01-01T00:00:00-14:00` get the same 400. Anything else is a 400 too, as the contract
has it for malformed bounds.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import Query

from app.errors import BadRequest
from app.schemas import BOUND_PATTERN

MAX_BOUND = 32  # 2026-03-02T09:30:00.123456+01:00
BOUND_DOC = (
    "an ISO 8601 date-time with seconds and a UTC offset (2026-03-02T09:30:00+01:00), or a "
    "date (YYYY-MM-DD) in the organization's zone; years 1900 to 2999; anything else is a 400"
)
_BOUND = re.compile(BOUND_PATTERN)


def _bound_query(description: str) -> Any:
    # the pattern is checked by parse_bound (a 400, not FastAPI's 422), and stated here
    return Query(
        description=f"{description}: {BOUND_DOC}",
        json_schema_extra={"pattern": BOUND_PATTERN, "maxLength": MAX_BOUND},
    )


Start = Annotated[str | None, _bound_query("from")]
End = Annotated[str | None, _bound_query("until (a date: to the end of that day)")]


def parse_bound(value: str | None, tz: ZoneInfo, *, end: bool) -> datetime | None:
    """A date means the start of that day (`start`) or the end of it (`end`, inclusive)."""
    if value is None:
        return None
    if len(value) > MAX_BOUND or not _BOUND.fullmatch(value):
        raise BadRequest(f"{value[:MAX_BOUND]!r} is not {BOUND_DOC.rsplit(';', 1)[0]}")
    if len(value) == 10:
        day = date.fromisoformat(value) + timedelta(days=1 if end else 0)
        moment = datetime.combine(day, time(), tz)
    else:
        moment = datetime.fromisoformat(value)
    return moment.astimezone(UTC)
