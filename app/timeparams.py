"""Parse the API's time bounds: an ISO datetime with offset, or a date in the org's zone."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from app.errors import BadRequest


def parse_bound(value: str | None, tz: ZoneInfo, *, end: bool) -> datetime | None:
    """A date means the start of that day (`start`) or the end of it (`end`, inclusive)."""
    if value is None:
        return None
    try:
        if len(value) == 10:
            day = date.fromisoformat(value) + timedelta(days=1 if end else 0)
            moment = datetime.combine(day, time(), tz)
        else:
            moment = datetime.fromisoformat(value)
            if moment.tzinfo is None:
                raise BadRequest(f"{value!r} needs a UTC offset")
        return moment.astimezone(UTC)
    except ValueError as error:
        raise BadRequest(f"{value!r} is neither a date (YYYY-MM-DD) nor an ISO datetime") from error
    except OverflowError as error:
        raise BadRequest(f"{value!r} is out of range") from error
