"""Routes for organizations, teams, users and API keys."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status

from app.access import visible_user
from app.activities import reevaluate
from app.deps import CurrentUser, InstanceAdmin, SessionDep
from app.models import Organization, User, utcnow
from app.schemas import CONFLICT_ERROR, ErrorBody
from app.users import lifecycle, schemas, service

router = APIRouter(tags=["organizations and users"])


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description}


def _read(user: User, aliases: list[str]) -> schemas.UserRead:
    return schemas.UserRead(
        id=user.id,
        email=user.email,
        name=user.name,
        role=user.role,
        team_id=user.team_id,
        aliases=aliases,
        phones=list(user.phones or []),
        created_at=user.created_at,
        active=user.deactivated_at is None,
        deactivated_at=user.deactivated_at,
    )


@router.post(
    "/orgs",
    status_code=status.HTTP_201_CREATED,
    summary="Create an organization and its first admin (instance admin token only)",
)
def create_org(
    data: schemas.OrgCreate, session: SessionDep, _admin: InstanceAdmin
) -> schemas.OrgCreated:
    org, key = service.create_org(session, data)
    return schemas.OrgCreated(**schemas.OrgRead.model_validate(org).model_dump(), admin_api_key=key)


@router.get("/org", summary="The caller's organization")
def read_org(session: SessionDep, caller: CurrentUser) -> schemas.OrgRead:
    return schemas.OrgRead.model_validate(session.get_one(Organization, caller.org_id))


@router.get(
    "/org/reevaluation",
    summary="Progress of the re-derivation that follows a change of users, aliases or domains",
    description="A change of who is a user (users and aliases added or removed, send-as "
    "addresses learnt) or of the internal domains derives the activities, links, contacts and "
    "companies of exactly the mail and events it concerns again, in the background, without "
    "fetching anything. Until it is done, metrics may still count by the old directory.",
)
def read_reevaluation(session: SessionDep, caller: CurrentUser) -> schemas.ReevaluationRead:
    found = reevaluate.status(session, caller.org_id, now=utcnow())
    return schemas.ReevaluationRead.model_validate(found)


@router.patch(
    "/org",
    summary="Change the organization's domains, time zone, calendar or currency (admin)",
    responses=CONFLICT_ERROR,
)
def update_org(
    data: schemas.OrgUpdate, session: SessionDep, caller: CurrentUser
) -> schemas.OrgRead:
    return schemas.OrgRead.model_validate(service.update_org(session, caller, data))


@router.get("/org/telephony", summary="The telephony webhook settings; never the secrets (admin)")
def read_telephony(session: SessionDep, caller: CurrentUser) -> schemas.TelephonyRead:
    return service.telephony_read(service.telephony_org(session, caller))


@router.put(
    "/org/telephony",
    summary="Set the Twilio account and auth token (write-only) and the default region (admin)",
)
def update_telephony(
    data: schemas.TelephonyUpdate, session: SessionDep, caller: CurrentUser
) -> schemas.TelephonyRead:
    return service.telephony_read(service.update_telephony(session, caller, data))


@router.post(
    "/org/telephony/webhook-secret",
    status_code=status.HTTP_201_CREATED,
    summary="Generate a new signing secret for the generic call webhook; shown once (admin)",
)
def new_webhook_secret(session: SessionDep, caller: CurrentUser) -> schemas.WebhookSecretCreated:
    return schemas.WebhookSecretCreated(webhook_secret=service.new_webhook_secret(session, caller))


@router.post(
    "/teams",
    status_code=status.HTTP_201_CREATED,
    summary="Create a team (admin)",
    responses={409: _error("The manager is deactivated")},
)
def create_team(
    data: schemas.TeamCreate, session: SessionDep, caller: CurrentUser
) -> schemas.TeamRead:
    return schemas.TeamRead.model_validate(service.create_team(session, caller, data))


@router.get("/teams", summary="Teams the caller can see")
def list_teams(session: SessionDep, caller: CurrentUser) -> list[schemas.TeamRead]:
    return [schemas.TeamRead.model_validate(t) for t in service.list_teams(session, caller)]


@router.post(
    "/users",
    status_code=status.HTTP_201_CREATED,
    summary="Create a user with their aliases; the API key is shown once (admin)",
    responses=CONFLICT_ERROR,
)
def create_user(
    data: schemas.UserCreate, session: SessionDep, caller: CurrentUser
) -> schemas.UserCreated:
    user, key = service.create_user(session, caller, data)
    read = _read(user, service.aliases_of(session, [user.id])[user.id])
    return schemas.UserCreated(**read.model_dump(), api_key=key)


@router.get("/users/me", summary="The caller")
def me(caller: CurrentUser) -> schemas.Me:
    return schemas.Me(
        id=caller.id,
        email=caller.email,
        name=caller.name,
        role=caller.role,
        team_id=caller.team_id,
        org_id=caller.org_id,
    )


@router.get("/users", summary="Users the caller can see, deactivated ones included")
def list_users(
    session: SessionDep,
    caller: CurrentUser,
    active: Annotated[
        bool | None,
        Query(description="true: only active users; false: only deactivated ones; unset: all"),
    ] = None,
) -> list[schemas.UserRead]:
    users = service.list_users(session, caller, active=active)
    aliases = service.aliases_of(session, [u.id for u in users])
    return [_read(u, aliases[u.id]) for u in users]


@router.get("/users/{user_id}", summary="One user")
def read_user(user_id: int, session: SessionDep, caller: CurrentUser) -> schemas.UserRead:
    user = visible_user(session, caller, user_id)
    return _read(user, service.aliases_of(session, [user.id])[user.id])


@router.patch(
    "/users/{user_id}",
    summary="Change a user's name, role, team, aliases or phones (admin)",
    description="409 when the change would leave the organization without an active admin "
    "(demoting the last one), or gives a deactivated user a role or phone numbers.",
    responses=CONFLICT_ERROR,
)
def update_user(
    user_id: int, data: schemas.UserUpdate, session: SessionDep, caller: CurrentUser
) -> schemas.UserRead:
    user = service.update_user(session, caller, user_id, data)
    return _read(user, service.aliases_of(session, [user.id])[user.id])


@router.delete(
    "/users/{user_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    summary="Deactivate a user who left (admin): keys revoked, connections stopped and their "
    "secrets erased, history kept",
    description="The user stays (GET /users shows them with active: false) with their team, "
    "activities and deals, so past periods do not change; they can no longer authenticate and "
    "their mailboxes and calendars never sync again. Repeating it changes nothing. The last "
    "active admin of the organization cannot be deactivated (409).",
    responses={
        204: {"description": "deactivated (or already was)"},
        409: _error("The user is the organization's last active admin"),
    },
)
def deactivate_user(user_id: int, session: SessionDep, caller: CurrentUser) -> Response:
    lifecycle.deactivate(session, caller, user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/users/{user_id}/api-keys",
    status_code=status.HTTP_201_CREATED,
    summary="Issue another API key for a user (admin, or the user for themself)",
    responses={409: _error("The user is deactivated")},
)
def new_api_key(user_id: int, session: SessionDep, caller: CurrentUser) -> schemas.ApiKeyCreated:
    return schemas.ApiKeyCreated(api_key=service.new_key_for(session, caller, user_id))
