"""Routes for connected mailboxes and calendars."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response, status
from pydantic import BaseModel, ValidationError

from app.connections import schemas, service
from app.deps import CurrentUser, SessionDep
from app.errors import BadRequest, Unprocessable
from app.pagination import Page, PageParams, decode_cursor, page_by_id, page_params, read_id
from app.providers import not_made_by_the_api

router = APIRouter(tags=["connections"])


def _validated(provider: str, config: dict[str, Any], *, partial: bool) -> dict[str, Any]:
    refusal = not_made_by_the_api(provider)
    if refusal is not None:
        raise BadRequest(refusal)
    models: dict[str, tuple[type[BaseModel], type[BaseModel]]] = {
        "imap": (schemas.ImapConfig, schemas.ImapConfigUpdate),
        "caldav": (schemas.CaldavConfig, schemas.CaldavConfigUpdate),
    }
    model = models[provider][1 if partial else 0]
    try:
        return schemas.plain_config(model.model_validate(config))
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise Unprocessable(f"config.{where}: {first['msg']}") from None


@router.post(
    "/connections",
    status_code=status.HTTP_201_CREATED,
    summary="Connect a mailbox (admin, or a rep for themself); the first sync starts at once",
)
def create_connection(
    data: schemas.ConnectionCreate, session: SessionDep, caller: CurrentUser
) -> schemas.ConnectionRead:
    config = _validated(data.provider, data.config, partial=False)
    connection = service.create(
        session, caller, user_id=data.user_id, provider=data.provider, config=config
    )
    return schemas.ConnectionRead.of(connection)


@router.get("/connections", summary="Connections the caller can see")
def list_connections(
    session: SessionDep,
    caller: CurrentUser,
    paging: Annotated[PageParams, Depends(page_params)],
    user_id: Annotated[int | None, Query()] = None,
) -> Page[schemas.ConnectionRead]:
    rows = service.list_for(
        session,
        caller,
        user_id=user_id,
        after=decode_cursor(paging.cursor, read_id),
        limit=paging.limit + 1,
    )
    return page_by_id([schemas.ConnectionRead.of(c) for c in rows], paging.limit)


@router.get("/connections/{connection_id}", summary="One connection: status, last sync, counts")
def read_connection(
    connection_id: int, session: SessionDep, caller: CurrentUser
) -> schemas.ConnectionRead:
    return schemas.ConnectionRead.of(service.get(session, caller, connection_id))


@router.patch(
    "/connections/{connection_id}",
    summary="Change settings or credentials (reconnect); a sync is queued at once",
)
def update_connection(
    connection_id: int, data: schemas.ConnectionUpdate, session: SessionDep, caller: CurrentUser
) -> schemas.ConnectionRead:
    provider = service.get(session, caller, connection_id).provider
    config = _validated(provider, data.config, partial=True)
    return schemas.ConnectionRead.of(service.update_config(session, caller, connection_id, config))


@router.post(
    "/connections/{connection_id}/sync",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Queue a sync now",
)
def sync_connection(
    connection_id: int, session: SessionDep, caller: CurrentUser
) -> schemas.ConnectionRead:
    return schemas.ConnectionRead.of(service.request_sync(session, caller, connection_id))


@router.delete(
    "/connections/{connection_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Disconnect; with purge=true also delete what only this connection captured",
    response_class=Response,
)
def delete_connection(
    connection_id: int,
    session: SessionDep,
    caller: CurrentUser,
    purge: Annotated[bool, Query()] = False,
) -> Response:
    service.remove(session, caller, connection_id, purge=purge)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
