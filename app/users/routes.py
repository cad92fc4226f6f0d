"""Routes for organizations, teams, users and API keys."""

from __future__ import annotations

from fastapi import APIRouter, status

from app.access import visible_user
from app.deps import CurrentUser, InstanceAdmin, SessionDep
from app.models import Organization, User
from app.schemas import CONFLICT_ERROR
from app.users import schemas, service

router = APIRouter(tags=["organizations and users"])


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


@router.post("/teams", status_code=status.HTTP_201_CREATED, summary="Create a team (admin)")
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


@router.get("/users", summary="Users the caller can see")
def list_users(session: SessionDep, caller: CurrentUser) -> list[schemas.UserRead]:
    users = service.list_users(session, caller)
    aliases = service.aliases_of(session, [u.id for u in users])
    return [_read(u, aliases[u.id]) for u in users]


@router.get("/users/{user_id}", summary="One user")
def read_user(user_id: int, session: SessionDep, caller: CurrentUser) -> schemas.UserRead:
    user = visible_user(session, caller, user_id)
    return _read(user, service.aliases_of(session, [user.id])[user.id])


@router.patch(
    "/users/{user_id}",
    summary="Change a user's name, role, team, aliases or phones (admin)",
    responses=CONFLICT_ERROR,
)
def update_user(
    user_id: int, data: schemas.UserUpdate, session: SessionDep, caller: CurrentUser
) -> schemas.UserRead:
    user = service.update_user(session, caller, user_id, data)
    return _read(user, service.aliases_of(session, [user.id])[user.id])


@router.post(
    "/users/{user_id}/api-keys",
    status_code=status.HTTP_201_CREATED,
    summary="Issue another API key for a user (admin, or the user for themself)",
)
def new_api_key(user_id: int, session: SessionDep, caller: CurrentUser) -> schemas.ApiKeyCreated:
    return schemas.ApiKeyCreated(api_key=service.new_key_for(session, caller, user_id))
