"""Routes for insights: what a team's top performers do differently."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from app.deps import CurrentUser, SessionDep
from app.insights import schemas, service
from app.metrics.catalogue import Metric
from app.metrics.periods import PeriodUnit
from app.schemas import Day, id_query

router = APIRouter(tags=["insights"])


@router.get(
    "/insights/performers",
    summary="A team's top performers on an outcome and the figures that set them apart "
    "(admin; a manager for their teams)",
    description="Semantics §12, over the period containing the date (the current period: to "
    "date, up to now). " + schemas.RULES + " A rep gets 403: the answer puts colleagues' "
    "figures side by side.",
)
def performers(
    session: SessionDep,
    caller: CurrentUser,
    team_id: Annotated[int, id_query("the team")],
    period: PeriodUnit,
    day: Annotated[
        Day | None, Query(alias="date", description="default: today in the org's time zone")
    ] = None,
    outcome: Annotated[
        Metric, Query(description="the metric members are ranked on; default revenue")
    ] = Metric.revenue,
) -> schemas.Performers:
    return service.performers(
        session, caller, team_id=team_id, period=period, day=day, outcome=outcome
    )
