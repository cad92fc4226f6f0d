"""Routes for the activity timeline."""

from __future__ import annotations

from typing import Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query

from app.activities import schemas, service
from app.deps import CurrentUser, SessionDep
from app.models import ActivityType, Organization
from app.pagination import Page, PageParams, decode_cursor, page_params
from app.schemas import id_query
from app.timeparams import End, Start, parse_bound

router = APIRouter(tags=["activities"])


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
    user_id: Annotated[int | None, id_query("a user's activities")] = None,
    team_id: Annotated[
        int | None, id_query("a team's members' activities (with user_id: that member's)")
    ] = None,
    type: Annotated[ActivityType | None, Query()] = None,
    contact_id: Annotated[int | None, id_query("activities with this contact")] = None,
    company_id: Annotated[int | None, id_query("activities with this company")] = None,
    start: Start = None,
    end: End = None,
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
    position = decode_cursor(paging.cursor, service.read_position)
    rows = service.list_for(session, caller, criteria, after=position, limit=paging.limit + 1)
    return service.page_of(session, rows, paging.limit)
