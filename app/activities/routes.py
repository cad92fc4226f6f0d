"""Routes for the activity timeline."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query

from app.activities import schemas, service
from app.deps import CurrentUser, SessionDep
from app.models import ActivityType, Organization
from app.pagination import Page, PageParams, decode_cursor, encode_cursor, page_params
from app.timeparams import parse_bound

router = APIRouter(tags=["activities"])

_BOUND = "an ISO datetime with offset, or a date (YYYY-MM-DD) in the organization's zone"


# a cursor's id beyond what an id column holds is not a position (and would not bind)
_LARGEST_ID = 2**63 - 1


def _read_position(values: list[Any]) -> service.Position:
    """A cursor is `[occurred_at (ISO, with offset), id]` of the last row of a page."""
    if len(values) != 2 or not isinstance(values[0], str) or isinstance(values[1], bool):
        raise ValueError("not a position")
    moment = datetime.fromisoformat(values[0])
    if moment.tzinfo is None:
        raise ValueError("naive")
    last_id = values[1]
    if not isinstance(last_id, int) or not 0 <= last_id <= _LARGEST_ID:
        raise ValueError("not an id")
    return moment.astimezone(UTC), last_id


@router.get(
    "/activities",
    summary="Activities the caller can see, newest first",
    description=(
        "Newest first by (occurred_at, id), in keyset pages: `next_cursor` resumes after the "
        "last row shown, so rows added meanwhile never shift a page. A malformed cursor is "
        "a 400."
    ),
)
def list_activities(
    session: SessionDep,
    caller: CurrentUser,
    paging: Annotated[PageParams, Depends(page_params)],
    user_id: Annotated[int | None, Query()] = None,
    team_id: Annotated[int | None, Query()] = None,
    type: Annotated[ActivityType | None, Query()] = None,
    contact_id: Annotated[int | None, Query()] = None,
    company_id: Annotated[int | None, Query()] = None,
    start: Annotated[str | None, Query(description=f"from: {_BOUND}")] = None,
    end: Annotated[str | None, Query(description=f"until (inclusive date): {_BOUND}")] = None,
) -> Page[schemas.ActivityRead]:
    tz = ZoneInfo(session.get_one(Organization, caller.org_id).timezone)
    criteria = service.ActivityFilter(
        user_id=user_id,
        team_id=team_id,
        type=type.value if type else None,
        contact_id=contact_id,
        company_id=company_id,
        start=parse_bound(start, tz, end=False),
        end=parse_bound(end, tz, end=True),
    )
    position = decode_cursor(paging.cursor, _read_position)
    rows = service.list_for(session, caller, criteria, after=position, limit=paging.limit + 1)
    page = rows[: paging.limit]
    links = service.links(session, [a.id for a in page])
    items = [
        schemas.ActivityRead(
            id=a.id,
            type=ActivityType(a.type),
            occurred_at=a.occurred_at,
            user_id=a.user_id,
            contact_ids=links[a.id][0],
            company_ids=links[a.id][1],
            source=schemas.Source(provider=a.provider, connection_id=a.connection_id),
            subject=a.subject,
        )
        for a in page
    ]
    more = len(rows) > paging.limit
    cursor = encode_cursor([page[-1].occurred_at.isoformat(), page[-1].id]) if more else None
    return Page(items=items, next_cursor=cursor)
