"""Organizations, teams, users, their addresses and API keys."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.access import require_active, require_role, visible_user, visible_user_ids
from app.activities import reevaluate
from app.calls.service import default_region, holds_number, normalize_phone, secrets_of
from app.deals.currency import load_rates
from app.deals.models import ExchangeRate
from app.deals.pipeline import add_default_stages
from app.deals.rates import rebase
from app.errors import Conflict, NotFound, Unprocessable
from app.models import ApiKey, Deal, Organization, Role, Team, User, UserAddress
from app.security import encrypt_secret, hash_api_key, new_api_key
from app.users import lifecycle, schemas


def issue_key(session: Session, user: User) -> str:
    key = new_api_key()
    session.add(
        ApiKey(org_id=user.org_id, user_id=user.id, key_hash=hash_api_key(key), prefix=key[:8])
    )
    return key


def create_org(session: Session, data: schemas.OrgCreate) -> tuple[Organization, str]:
    org = Organization(
        name=data.name,
        domains=sorted(set(data.domains)),
        timezone=data.timezone,
        week_start=data.week_start,
        fiscal_year_start_month=data.fiscal_year_start_month,
        currency=data.currency,
    )
    session.add(org)
    session.flush()
    add_default_stages(session, org.id)
    admin_email = data.admin_email or f"admin@{data.domains[0]}"
    admin = _add_user(
        session, org.id, admin_email, data.admin_name, Role.admin, None, [], new_org=True
    )
    return org, issue_key(session, admin)


def update_org(session: Session, caller: User, data: schemas.OrgUpdate) -> Organization:
    require_role(caller, Role.admin)
    org = session.get_one(Organization, caller.org_id)
    if data.currency is not None and data.currency != org.currency:
        _check_currency_change(session, org.id)
    zone, domains = org.timezone, set(org.domains)
    for field, value in data.model_dump(exclude_unset=True, exclude_none=True).items():
        setattr(org, field, sorted(set(value)) if field == "domains" else value)
    # what became internal or external: its mail and events are derived again
    reevaluate.record_change(session, org.id, domains=domains ^ set(org.domains))
    if org.timezone != zone:  # the rollups count local days of the old zone
        from app.activities import store

        session.flush()
        store.rebuild(session, org.id)
        # a closed deal converts at the rate of its local closing date, which may have moved
        rebase(session, org.id, load_rates(session, org.id))
    return org


def _check_currency_change(session: Session, org_id: int) -> None:
    """Deals' converted amounts and the rates are in the reporting currency: changing it
    would make them wrong, so it may change only while there are none."""
    for table, what in ((Deal, "deals"), (ExchangeRate, "exchange rates")):
        if session.scalar(select(table.id).where(table.org_id == org_id).limit(1)) is not None:
            raise Conflict(f"the currency cannot change while the organization has {what}")


def _check_team(session: Session, org_id: int, team_id: int | None) -> None:
    if team_id is not None:
        team = session.get(Team, team_id)
        if team is None or team.org_id != org_id:
            raise NotFound(f"team {team_id} not found")


def _set_addresses(
    session: Session, user: User, aliases: Sequence[str], *, new_org: bool = False
) -> None:
    """Give the user exactly these addresses; the mail and events of every address gained or
    lost are derived again (reevaluate.py), except in an organization just made."""
    wanted = {user.email, *aliases}
    taken = session.scalars(
        select(UserAddress.email).where(
            UserAddress.org_id == user.org_id,
            UserAddress.email.in_(wanted),
            UserAddress.user_id != user.id,
        )
    ).all()
    if taken:
        raise Conflict(f"address already belongs to another user: {', '.join(sorted(taken))}")
    had = set()
    for address in session.scalars(select(UserAddress).where(UserAddress.user_id == user.id)):
        had.add(address.email)
        session.delete(address)
    session.flush()
    for email in sorted(wanted):
        session.add(
            UserAddress(
                org_id=user.org_id, user_id=user.id, email=email, is_primary=email == user.email
            )
        )
    if not new_org:
        reevaluate.record_change(session, user.org_id, addresses=had ^ wanted)


def learn_addresses(session: Session, user: User, emails: Sequence[str]) -> list[str]:
    """Add addresses a provider reports for the user (send-as aliases); those another user of
    the organization already has are left to them. The ones added, sorted."""
    wanted = {e.strip().lower() for e in emails if e and "@" in e}
    known = set(
        session.scalars(
            select(UserAddress.email).where(
                UserAddress.org_id == user.org_id, UserAddress.email.in_(wanted)
            )
        )
    )
    added = sorted(wanted - known)
    for email in added:
        session.add(UserAddress(org_id=user.org_id, user_id=user.id, email=email, is_primary=False))
    session.flush()
    reevaluate.record_change(session, user.org_id, addresses=added)
    return added


def _add_user(
    session: Session,
    org_id: int,
    email: str,
    name: str,
    role: Role,
    team_id: int | None,
    aliases: Sequence[str],
    *,
    new_org: bool = False,
) -> User:
    _check_team(session, org_id, team_id)
    taken = session.scalar(
        select(UserAddress.email).where(
            UserAddress.org_id == org_id, UserAddress.email.in_({email, *aliases})
        )
    )
    if taken is not None:
        raise Conflict(f"address already belongs to another user: {taken}")
    user = User(org_id=org_id, email=email, name=name, role=role, team_id=team_id)
    session.add(user)
    session.flush()
    _set_addresses(session, user, aliases, new_org=new_org)
    session.flush()
    return user


def _set_phones(session: Session, user: User, raw: Sequence[str]) -> None:
    """Store the user's numbers in E.164 (422 for one that is not a valid number; 409 for one
    another user has: a call must name one rep)."""
    region = default_region(session.get_one(Organization, user.org_id))
    phones: list[str] = []
    for text in raw:
        number = normalize_phone(text, region)
        if number is None:
            hint = "" if region else " (write it with +country code, or set a default_region)"
            raise Unprocessable(f"phones: {text[:64]!r} is not a valid phone number{hint}")
        if number not in phones:
            phones.append(number)
    for number in phones:
        other = session.scalar(
            select(User.email).where(
                User.org_id == user.org_id,
                User.id != user.id,
                holds_number(User.phones, number),
            )
        )
        if other is not None:
            raise Conflict(f"phone number {number} already belongs to another user")
    user.phones = phones


def create_team(session: Session, caller: User, data: schemas.TeamCreate) -> Team:
    require_role(caller, Role.admin)
    if data.manager_id is not None:
        require_active(visible_user(session, caller, data.manager_id))
    team = Team(org_id=caller.org_id, name=data.name, manager_id=data.manager_id)
    session.add(team)
    session.flush()
    return team


def list_teams(session: Session, caller: User) -> Sequence[Team]:
    query = select(Team).where(Team.org_id == caller.org_id).order_by(Team.id)
    if caller.role == Role.manager:
        query = query.where(Team.manager_id == caller.id)
    elif caller.role == Role.rep:
        query = query.where(Team.id == caller.team_id)
    return session.scalars(query).all()


def create_user(session: Session, caller: User, data: schemas.UserCreate) -> tuple[User, str]:
    require_role(caller, Role.admin)
    user = _add_user(
        session, caller.org_id, data.email, data.name, data.role, data.team_id, data.aliases
    )
    _set_phones(session, user, data.phones)
    session.flush()
    return user, issue_key(session, user)


def update_user(session: Session, caller: User, user_id: int, data: schemas.UserUpdate) -> User:
    require_role(caller, Role.admin)
    user = visible_user(session, caller, user_id)
    changes = data.model_dump(exclude_unset=True)
    if "team_id" in changes:
        _check_team(session, caller.org_id, changes["team_id"])
        user.team_id = changes["team_id"]
    if changes.get("name") is not None:
        user.name = changes["name"]
    if changes.get("role") is not None:
        lifecycle.change_role(session, caller, user, changes["role"])
    if changes.get("aliases") is not None:
        _set_addresses(session, user, changes["aliases"])
    if changes.get("phones"):  # a deactivated user's numbers were released with them
        require_active(user)
    if changes.get("phones") is not None:
        _set_phones(session, user, changes["phones"])
    session.flush()
    return user


def new_key_for(session: Session, caller: User, user_id: int) -> str:
    if user_id != caller.id:
        require_role(caller, Role.admin)
    user = visible_user(session, caller, user_id)
    require_active(user)
    return issue_key(session, user)


def aliases_of(session: Session, user_ids: Sequence[int]) -> dict[int, list[str]]:
    rows = session.execute(
        select(UserAddress.user_id, UserAddress.email)
        .where(UserAddress.user_id.in_(user_ids), UserAddress.is_primary.is_(False))
        .order_by(UserAddress.email)
    )
    found: dict[int, list[str]] = {uid: [] for uid in user_ids}
    for uid, email in rows:
        found[uid].append(email)
    return found


def list_users(session: Session, caller: User, *, active: bool | None = None) -> Sequence[User]:
    ids = visible_user_ids(session, caller)
    query = select(User).where(User.id.in_(ids)).order_by(User.id)
    if active is not None:
        left = User.deactivated_at.is_not(None)
        query = query.where(~left if active else left)
    return session.scalars(query).all()


# --- telephony settings -----------------------------------------------------------------------

WEBHOOK_SECRET_PREFIX = "whsec_"


def telephony_read(org: Organization) -> schemas.TelephonyRead:
    settings: dict[str, Any] = org.telephony or {}
    stored = secrets_of(org)
    return schemas.TelephonyRead(
        twilio_account_sid=settings.get("twilio_account_sid"),
        default_region=settings.get("default_region"),
        twilio_auth_token_set=bool(stored.get("twilio_auth_token")),
        webhook_secret_set=bool(stored.get("webhook_secret")),
        generic_webhook_path=f"/api/v1/calls/webhook/generic?org={org.id}",
        twilio_webhook_path=f"/api/v1/calls/webhook/twilio?org={org.id}",
    )


def telephony_org(session: Session, caller: User) -> Organization:
    require_role(caller, Role.admin)
    return session.get_one(Organization, caller.org_id)


def _store_secret(org: Organization, name: str, value: str | None) -> None:
    stored = secrets_of(org)
    if value is None:
        stored.pop(name, None)
    else:
        stored[name] = value
    org.telephony_secret = encrypt_secret(stored) if stored else None


def update_telephony(session: Session, caller: User, data: schemas.TelephonyUpdate) -> Organization:
    org = telephony_org(session, caller)
    changes = data.model_dump(exclude_unset=True)
    settings = dict(org.telephony or {})
    for field in ("twilio_account_sid", "default_region"):
        if field in changes:
            if changes[field] is None:
                settings.pop(field, None)
            else:
                settings[field] = changes[field]
    org.telephony = settings  # a new dict: the JSON column sees the change
    if "twilio_auth_token" in changes:
        token = data.twilio_auth_token
        _store_secret(org, "twilio_auth_token", token.get_secret_value() if token else None)
    session.flush()
    return org


def new_webhook_secret(session: Session, caller: User) -> str:
    """A new signing secret for the generic webhook (the old one stops working at once)."""
    org = telephony_org(session, caller)
    secret = WEBHOOK_SECRET_PREFIX + secrets.token_urlsafe(32)
    _store_secret(org, "webhook_secret", secret)
    session.flush()
    return secret
