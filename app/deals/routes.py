"""Routes for deals, the pipeline and exchange rates."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status

from app.activities import schemas as activity_schemas
from app.activities import service as activity_service
from app.deals import history, pipeline, queries, rates, schemas, service, summary
from app.deps import CurrentUser, SessionDep
from app.models import DealStatus
from app.pagination import Page, PageParams, decode_cursor, encode_cursor, page_params, read_id
from app.schemas import CONFLICT_ERROR, id_query, text_query

router = APIRouter(tags=["deals"])


@router.post(
    "/deals",
    status_code=status.HTTP_201_CREATED,
    summary="Create a deal (a rep for themself, a manager for their teams, an admin for anyone)",
    responses=CONFLICT_ERROR,
)
def create_deal(
    data: schemas.DealCreate, session: SessionDep, caller: CurrentUser
) -> schemas.DealRead:
    return queries.read_deals(session, [service.create_for(session, caller, data)])[0]


@router.get("/deals", summary="Deals the caller manages, oldest first")
def list_deals(
    session: SessionDep,
    caller: CurrentUser,
    paging: Annotated[PageParams, Depends(page_params)],
    owner_id: Annotated[int | None, id_query("deals of this owner")] = None,
    team_id: Annotated[
        int | None, id_query("deals of the team's members (with owner_id: that member's)")
    ] = None,
    status: Annotated[DealStatus | None, Query()] = None,
    stage: Annotated[str | None, text_query(100, "deals in this stage")] = None,
    company_id: Annotated[int | None, id_query("deals with this company")] = None,
) -> Page[schemas.DealRead]:
    criteria = queries.DealFilter(
        owner_id=owner_id, team_id=team_id, status=status, stage=stage, company_id=company_id
    )
    after = decode_cursor(paging.cursor, read_id)
    rows = queries.list_for(session, caller, criteria, after=after, limit=paging.limit + 1)
    page = rows[: paging.limit]
    more = len(rows) > paging.limit
    return Page(
        items=queries.read_deals(session, page),
        next_cursor=encode_cursor([page[-1].id]) if more else None,
    )


@router.get("/deals/{deal_id}", summary="One deal")
def read_deal(deal_id: int, session: SessionDep, caller: CurrentUser) -> schemas.DealRead:
    return queries.read_deals(session, [service.visible_deal(session, caller, deal_id)])[0]


@router.patch(
    "/deals/{deal_id}",
    summary="Change a deal: any field of the creation; status open, won or lost",
    responses=CONFLICT_ERROR,
)
def update_deal(
    deal_id: int, data: schemas.DealUpdate, session: SessionDep, caller: CurrentUser
) -> schemas.DealRead:
    return queries.read_deals(session, [service.update_for(session, caller, deal_id, data)])[0]


@router.delete(
    "/deals/{deal_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a deal (its history is kept)",
    response_class=Response,
)
def delete_deal(deal_id: int, session: SessionDep, caller: CurrentUser) -> Response:
    service.delete_for(session, caller, deal_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/deals/{deal_id}/history", summary="Every change of a deal, oldest first")
def deal_history(
    deal_id: int,
    session: SessionDep,
    caller: CurrentUser,
    paging: Annotated[PageParams, Depends(page_params)],
) -> Page[schemas.DealChangeRead]:
    deal = service.visible_deal(session, caller, deal_id)
    after = decode_cursor(paging.cursor, read_id)
    rows = history.page(session, deal, after=after, limit=paging.limit + 1)
    page = rows[: paging.limit]
    more = len(rows) > paging.limit
    return Page(
        items=[history.read(c) for c in page],
        next_cursor=encode_cursor([page[-1].id]) if more else None,
    )


@router.get(
    "/deals/{deal_id}/activities",
    summary="Captured activities with the deal's contacts (or its company's), newest first",
)
def deal_activities(
    deal_id: int,
    session: SessionDep,
    caller: CurrentUser,
    paging: Annotated[PageParams, Depends(page_params)],
) -> Page[activity_schemas.ActivityRead]:
    deal = service.visible_deal(session, caller, deal_id)
    position = decode_cursor(paging.cursor, activity_service.read_position)
    rows = queries.deal_activities(session, caller, deal, after=position, limit=paging.limit + 1)
    return activity_service.page_of(session, rows, paging.limit)


@router.get("/pipeline/stages", summary="The organization's pipeline stages, in order")
def read_stages(session: SessionDep, caller: CurrentUser) -> schemas.PipelineRead:
    return pipeline.read(pipeline.stages_of(session, caller.org_id))


@router.get(
    "/pipeline/summary",
    summary="Open deals by stage: count, value and weighted value, with totals",
    description="The open deals the caller may list (as GET /deals: a rep their own, a "
    "manager their teams' and their own, an admin all), or those of one user or one team's "
    "members. Values in the organization's currency, a deal in another currency converted at "
    "the rate in force today (semantics §8); weighted = value x the stage's probability. "
    "user_id or team_id naming someone the caller cannot see: 404; both: 422.",
)
def pipeline_summary(
    session: SessionDep,
    caller: CurrentUser,
    user_id: Annotated[int | None, id_query("deals of this owner (not with team_id)")] = None,
    team_id: Annotated[
        int | None, id_query("deals of the team's members (not with user_id)")
    ] = None,
) -> schemas.PipelineSummary:
    return summary.summary(session, caller, user_id=user_id, team_id=team_id)


@router.put(
    "/pipeline/stages",
    summary="Replace the pipeline; open deals in a removed stage need a move (admin)",
    description="Stage names are unique, and `move` sends each removed stage to a stage of the "
    "new list (else a 422). 409 when a removed stage holds open deals and `move` says nothing "
    "for it, or when `move` names a stage this update does not remove.",
    responses=CONFLICT_ERROR,
)
def replace_stages(
    data: schemas.PipelineUpdate, session: SessionDep, caller: CurrentUser
) -> schemas.PipelineRead:
    return pipeline.replace_for(session, caller, data)


@router.get("/org/exchange-rates", summary="The organization's currency and exchange rates")
def read_rates(session: SessionDep, caller: CurrentUser) -> schemas.RatesRead:
    return rates.read(session, caller.org_id)


@router.put(
    "/org/exchange-rates",
    summary="Replace the exchange rates; closed deals are converted again (admin)",
    description="409 when a rate is for the organization's own currency, or when a deal would "
    "be left without a rate in force.",
    responses=CONFLICT_ERROR,
)
def replace_rates(
    data: schemas.RatesUpdate, session: SessionDep, caller: CurrentUser
) -> schemas.RatesRead:
    return rates.replace_for(session, caller, data)
