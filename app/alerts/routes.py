"""Routes for alerts (semantics §10) and their thresholds."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from app.alerts import schemas, service, store
from app.alerts.rules import Kind
from app.deps import CurrentUser, SessionDep
from app.pagination import Page, PageParams, decode_cursor, encode_cursor, page_params, read_id
from app.schemas import id_query

router = APIRouter(tags=["alerts"])


@router.get(
    "/alerts",
    summary="Alerts about what the caller may see (a rep their own, a manager their teams'), "
    "newest first",
    description="404 when `user_id` or `team_id` names someone the caller cannot see. "
    "`team_id` gives the team's own alerts and its members'.",
)
def list_alerts(
    session: SessionDep,
    caller: CurrentUser,
    paging: Annotated[PageParams, Depends(page_params)],
    status: Annotated[
        schemas.AlertStatus | None, Query(description="open or resolved (default both)")
    ] = None,
    kind: Annotated[Kind | None, Query(description="one kind of semantics §10")] = None,
    user_id: Annotated[int | None, id_query("alerts about this user")] = None,
    team_id: Annotated[int | None, id_query("alerts about this team or its members")] = None,
) -> Page[schemas.AlertRead]:
    criteria = service.AlertFilter(status=status, kind=kind, user_id=user_id, team_id=team_id)
    before = decode_cursor(paging.cursor, read_id)
    rows = service.list_for(session, caller, criteria, before=before, limit=paging.limit + 1)
    page = rows[: paging.limit]
    more = len(rows) > paging.limit
    return Page(
        items=[store.read(a) for a in page],
        next_cursor=encode_cursor([page[-1].id]) if more else None,
    )


@router.get("/alerts/{alert_id}", summary="One alert")
def read_alert(alert_id: int, session: SessionDep, caller: CurrentUser) -> schemas.AlertRead:
    return store.read(service.visible_alert(session, caller, alert_id))


@router.post(
    "/alerts/{alert_id}/acknowledge",
    summary="Acknowledge an alert (whoever sees it); the first acknowledgement's time is kept",
)
def acknowledge_alert(alert_id: int, session: SessionDep, caller: CurrentUser) -> schemas.AlertRead:
    return store.read(service.acknowledge(session, caller, alert_id))


@router.get(
    "/org/alert-settings",
    summary="The organization's alert thresholds (any member: the dashboard shows them)",
)
def read_alert_settings(session: SessionDep, caller: CurrentUser) -> schemas.AlertSettings:
    return store.settings_of(session, caller.org_id)


@router.put(
    "/org/alert-settings",
    summary="Replace the alert thresholds; a field left out takes its default (admin)",
    description="Applies from the next evaluation (within a tick: the change asks for one).",
)
def replace_alert_settings(
    data: schemas.AlertSettings, session: SessionDep, caller: CurrentUser
) -> schemas.AlertSettings:
    return service.replace_settings(session, caller, data)
