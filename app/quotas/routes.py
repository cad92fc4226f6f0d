"""Routes for metric series, quota targets and attainment."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response, status

from app.deps import CurrentUser, SessionDep
from app.errors import Unprocessable
from app.metrics.catalogue import Metric
from app.metrics.periods import PeriodUnit
from app.pagination import Page, PageParams, page_params
from app.quotas import attainment as attainments
from app.quotas import batch, planning, schemas, service
from app.schemas import CONFLICT_ERROR, ONE_SUBJECT_DOC, Day, id_query

router = APIRouter(tags=["metrics and quotas"])

UserId = Annotated[
    int | None,
    id_query("a user; default: the caller. " + ONE_SUBJECT_DOC.format(other="team_id")),
]
TeamId = Annotated[
    int | None, id_query("a team, instead of a user. " + ONE_SUBJECT_DOC.format(other="user_id"))
]


@router.get(
    "/metrics",
    summary="One metric for a user or team, one row per period (zeros included)",
    description="Counts are integers, sums and means decimals; a ratio or mean with nothing "
    "to divide by is null. Teams pool their current members (semantics §6, §8).",
)
def metric_series(
    session: SessionDep,
    caller: CurrentUser,
    metric: Metric,
    period: PeriodUnit,
    start: Annotated[Day, Query(description="a day in the first period")],
    end: Annotated[
        Day,
        Query(description="a day in the last period; not before start, at most 1,000 periods on"),
    ],
    user_id: UserId = None,
    team_id: TeamId = None,
) -> schemas.MetricSeries:
    return service.metric_series(
        session,
        caller,
        metric=metric,
        period=period,
        start=start,
        end=end,
        user_id=user_id,
        team_id=team_id,
    )


@router.post(
    "/quotas",
    status_code=status.HTTP_201_CREATED,
    summary="Set a target (admin; a manager for their teams and their members)",
    responses=CONFLICT_ERROR,
)
def create_quota(
    data: schemas.QuotaCreate, session: SessionDep, caller: CurrentUser
) -> schemas.QuotaRead:
    return schemas.QuotaRead.model_validate(service.create_quota(session, caller, data))


@router.get("/quotas", summary="Quotas the caller can see, optionally of one user or team")
def list_quotas(
    session: SessionDep,
    caller: CurrentUser,
    page: Annotated[PageParams, Depends(page_params)],
    user_id: Annotated[int | None, id_query("quotas of this user")] = None,
    team_id: Annotated[int | None, id_query("quotas of this team")] = None,
) -> Page[schemas.QuotaRead]:
    return service.list_quotas(session, caller, user_id=user_id, team_id=team_id, page=page)


# Declared before /quotas/{quota_id}, which would otherwise take "attainment" for an id.
@router.get(
    "/quotas/attainment",
    summary="Attainment, pace and forecast of every quota in force on a date",
    description="With team_id and members=true, also `members`: each current member of the "
    "team with their own quotas' items, as `?user_id=` gives them, in one call (the team's "
    "manager or an admin; a rep: 403; members=true without team_id: 422).",
)
def attainment(
    session: SessionDep,
    caller: CurrentUser,
    day: Annotated[
        Day | None, Query(alias="date", description="default: today in the org's time zone")
    ] = None,
    user_id: UserId = None,
    team_id: TeamId = None,
    members: Annotated[
        bool, Query(description="with team_id: each member's attainment too (`members`)")
    ] = False,
) -> schemas.Attainment:
    if members:
        if user_id is not None:
            raise Unprocessable("members=true is for a team: give team_id, not user_id")
        return batch.team_attainment(session, caller, team_id=team_id, day=day)
    return attainments.attainment(session, caller, day=day, user_id=user_id, team_id=team_id)


DateParam = Annotated[
    Day | None, Query(alias="date", description="default: today in the org's time zone")
]


@router.get(
    "/quotas/reconciliation",
    summary="A team's target beside its members' targets and their suggested quotas",
    description="members_target_sum, gap and suggested_sum only for counts and sums; a "
    "suggestion is the mean of the member's last 4 complete periods (semantics §9).",
)
def reconciliation(
    session: SessionDep,
    caller: CurrentUser,
    team_id: Annotated[int, id_query("the team")],
    metric: Metric,
    period: PeriodUnit,
    day: DateParam = None,
) -> schemas.Reconciliation:
    return planning.reconciliation(
        session, caller, team_id=team_id, metric=metric, period=period, day=day
    )


@router.get(
    "/quotas/plan",
    summary="The activity a revenue target takes, from the subject's own funnel history",
    description="Reads the last 4 complete periods of the unit before the date's period "
    "(semantics §9); figures that are unknown or 0 there are listed in `missing`.",
)
def quota_plan(
    session: SessionDep,
    caller: CurrentUser,
    target: Annotated[
        str,
        Query(
            max_length=64,
            pattern=schemas.TARGET_TEXT,
            description=f"the revenue target: {schemas.TARGET_DOC}",
        ),
    ],
    period: PeriodUnit,
    day: DateParam = None,
    user_id: UserId = None,
    team_id: TeamId = None,
) -> schemas.Plan:
    return planning.plan(
        session,
        caller,
        target=Decimal(target).quantize(schemas.TARGET_STEP),
        period=period,
        day=day,
        user_id=user_id,
        team_id=team_id,
    )


@router.get("/quotas/{quota_id}", summary="One quota")
def read_quota(quota_id: int, session: SessionDep, caller: CurrentUser) -> schemas.QuotaRead:
    return schemas.QuotaRead.model_validate(service.get_quota(session, caller, quota_id))


@router.patch(
    "/quotas/{quota_id}",
    summary="Change a quota's target or dates (whoever may set it)",
    responses=CONFLICT_ERROR,
)
def update_quota(
    quota_id: int, data: schemas.QuotaUpdate, session: SessionDep, caller: CurrentUser
) -> schemas.QuotaRead:
    quota = service.update_quota(session, caller, quota_id, data)
    return schemas.QuotaRead.model_validate(quota)


@router.delete(
    "/quotas/{quota_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a quota (whoever may set it)",
    response_class=Response,
)
def delete_quota(quota_id: int, session: SessionDep, caller: CurrentUser) -> None:
    service.delete_quota(session, caller, quota_id)
