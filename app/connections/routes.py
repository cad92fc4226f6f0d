"""Routes for connected mailboxes and calendars."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Query, Response, status
from pydantic import ValidationError

from app.config import settings
from app.connections import schemas, service
from app.connections.schemas import read
from app.deps import CurrentUser, SessionDep
from app.errors import BadRequest, Forbidden, Unprocessable
from app.pagination import Page, PageParams, decode_cursor, page_by_id, page_params, read_id
from app.providers import not_made_by_the_api
from app.schemas import ErrorBody, id_query
from connectors.netguard import BlockedAddress, check_host

router = APIRouter(tags=["connections"])

_MOVED: dict[int | str, dict[str, Any]] = {
    403: {
        "model": ErrorBody,
        "description": "The role forbids it; or the server named is, or resolves to, a "
        "loopback, private or link-local address this instance does not connect to "
        "(TALLY_ALLOWED_PRIVATE_HOSTS)",
    },
    422: {
        "model": ErrorBody,
        "description": "Invalid settings; or they change where the credentials are sent "
        "(host, port, security, username; url) without giving the password again",
    },
}


def _validated(provider: str, config: dict[str, Any], *, partial: bool) -> dict[str, Any]:
    refusal = not_made_by_the_api(provider)
    if refusal is not None:
        raise BadRequest(refusal)
    model = schemas.CONFIG_MODELS[provider][1 if partial else 0]
    try:
        return schemas.plain_config(model.model_validate(config))
    except ValidationError as error:
        first = error.errors()[0]
        where = "".join(f".{p}" for p in first["loc"])
        message = str(first["msg"]).removeprefix("Value error, ")
        raise Unprocessable(f"config{where}: {message}") from None


def _guard(provider: str, config: dict[str, Any]) -> None:
    """Refuse, when the settings are saved, a server this instance never connects to (a
    loopback or private address not in allowed_private_hosts); connectors check again when
    they connect. A name that does not resolve now is saved: the sync will say so."""
    if provider == "imap":
        host, port = str(config["host"]), int(config.get("port") or 993)
    elif provider != "caldav":
        return  # the others talk to their provider's fixed address (settings)
    else:
        url = urlsplit(str(config["url"]))
        try:
            host, port = url.hostname or "", url.port or (443 if url.scheme == "https" else 80)
        except ValueError:
            raise Unprocessable("config.url: the port is not a number from 0 to 65535") from None
    try:
        check_host(host, port, settings.allowed_private_hosts)
    except BlockedAddress as error:
        # the instance's policy, not the shape of the input (no schema can say which names
        # resolve where): refused like a firewall would, 403
        raise Forbidden(f"config: {error}") from None
    except (OSError, UnicodeError):
        return


@router.post(
    "/connections",
    status_code=status.HTTP_201_CREATED,
    summary="Connect a mailbox (admin, or a rep for themself); the first sync starts at once",
)
def create_connection(
    data: schemas.ConnectionCreate, session: SessionDep, caller: CurrentUser
) -> schemas.ConnectionRead:
    config = _validated(data.provider, data.config, partial=False)
    _guard(data.provider, config)
    connection = service.create(
        session, caller, user_id=data.user_id, provider=data.provider, config=config
    )
    return read(session, [connection])[0]


@router.get("/connections", summary="Connections the caller can see")
def list_connections(
    session: SessionDep,
    caller: CurrentUser,
    paging: Annotated[PageParams, Depends(page_params)],
    user_id: Annotated[int | None, id_query("only this user's connections")] = None,
) -> Page[schemas.ConnectionRead]:
    rows = service.list_for(
        session,
        caller,
        user_id=user_id,
        after=decode_cursor(paging.cursor, read_id),
        limit=paging.limit + 1,
    )
    return page_by_id(read(session, rows), paging.limit)


@router.get("/connections/{connection_id}", summary="One connection: status, last sync, counts")
def read_connection(
    connection_id: int, session: SessionDep, caller: CurrentUser
) -> schemas.ConnectionRead:
    return read(session, [service.get(session, caller, connection_id)])[0]


@router.patch(
    "/connections/{connection_id}",
    summary="Change settings or credentials (reconnect); a sync is queued at once",
    description="Settings are merged over the stored ones. A run under way stops at its next "
    "page and the queued one starts with the new settings. Changing where the credentials "
    "are sent (IMAP host, port, security or username; CalDAV url or username) needs the "
    "password in the same call, else 422: a stored password is only ever sent to the "
    "server and account it was given for. Such a change also starts the sync afresh. If a "
    "worker holds the connection at this moment, the change is queued: the answer, and "
    "every read, show the connection with it, and it is applied before the next run.",
    responses=_MOVED,
)
def update_connection(
    connection_id: int, data: schemas.ConnectionUpdate, session: SessionDep, caller: CurrentUser
) -> schemas.ConnectionRead:
    stored = service.get(session, caller, connection_id)
    config = _validated(stored.provider, data.config, partial=True)
    if service.moved_endpoint(stored.provider, stored.config, config):
        _guard(stored.provider, {**stored.config, **config})
    return read(session, [service.update_config(session, caller, connection_id, config)])[0]


@router.post(
    "/connections/{connection_id}/sync",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Queue a sync now",
    description="Due at once; during a run, the next run starts right after it. Answered "
    "without waiting for a worker that holds the connection (the request is queued for it).",
)
def sync_connection(
    connection_id: int, session: SessionDep, caller: CurrentUser
) -> schemas.ConnectionRead:
    return read(session, [service.request_sync(session, caller, connection_id)])[0]


@router.post(
    "/connections/{connection_id}/backfill",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Reach further back: widen the window to start on an earlier day; a sync is "
    "queued at once",
    description="The owner or an admin (a manager only for their own connection). The "
    "window (by default `backfill_days` back from today, 365) then starts on `from`, kept as "
    "`config.history_from`, and the queued run fetches only what lies between `from` and the "
    "day the window started before: nothing already fetched is fetched again. Progress shows "
    "as for any run: `status` syncing, then idle (or error, with `last_error`), and `stats` "
    "growing. `from` must be earlier than the window's current start, so never today or "
    "later (else 409); the day already set is accepted again and changes nothing. IMAP and "
    "CalDAV connections widen (CalDAV re-reads its calendars whole: a listing has no dates); "
    "Gmail, Google Calendar and Microsoft 365 ones not yet (409). Like PATCH, answered "
    "without waiting for a worker that holds the connection (the change is queued for it).",
    responses={
        403: {
            "model": ErrorBody,
            "description": "Neither the owner nor an admin (a manager reads their team's "
            "connections but changes only their own)",
        },
        409: {
            "model": ErrorBody,
            "description": "`from` is not earlier than the day the window starts now (today "
            "or later included); the provider's connector cannot widen its window yet "
            "(gmail, google_calendar, microsoft) or has none (import); or the owner was "
            "deactivated",
        },
    },
)
def backfill_connection(
    connection_id: int, data: schemas.BackfillRequest, session: SessionDep, caller: CurrentUser
) -> schemas.ConnectionRead:
    widened = service.widen_history(session, caller, connection_id, data.from_)
    return read(session, [widened])[0]


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
