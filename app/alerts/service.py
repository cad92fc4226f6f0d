"""Alerts as callers see them: a rep their own subjects, a manager their teams' (the members
and the teams themselves), an admin the whole organization; anything else is a 404."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, false, or_, select, true
from sqlalchemy.orm import Session

from app import jobs
from app.access import (
    managed_team_ids,
    require_role,
    team_member_ids,
    visible_team,
    visible_user,
    visible_user_ids,
)
from app.alerts import schemas, store
from app.alerts.models import Alert, AlertSettings
from app.alerts.rules import Kind
from app.errors import NotFound
from app.models import Role, User, utcnow


@dataclass(frozen=True)
class AlertFilter:
    status: schemas.AlertStatus | None = None
    kind: Kind | None = None
    user_id: int | None = None
    team_id: int | None = None


def _visible(session: Session, caller: User) -> ColumnElement[bool]:
    if caller.role == Role.admin:
        return true()
    users = visible_user_ids(session, caller)
    teams = managed_team_ids(session, caller)
    return or_(
        Alert.user_id.in_(sorted(users)) if users else false(),
        Alert.team_id.in_(sorted(teams)) if teams else false(),
    )


def list_for(
    session: Session, caller: User, criteria: AlertFilter, *, before: int | None, limit: int
) -> list[Alert]:
    """The caller's visible alerts matching `criteria`, newest first (404 for a user or team
    the caller cannot see)."""
    query = select(Alert).where(Alert.org_id == caller.org_id, _visible(session, caller))
    if criteria.user_id is not None:
        query = query.where(Alert.user_id == visible_user(session, caller, criteria.user_id).id)
    if criteria.team_id is not None:
        team = visible_team(session, caller, criteria.team_id)
        members = sorted(team_member_ids(session, team.id))
        query = query.where(or_(Alert.team_id == team.id, Alert.user_id.in_(members)))
    if criteria.status is schemas.AlertStatus.open:
        query = query.where(Alert.resolved_at.is_(None))
    elif criteria.status is schemas.AlertStatus.resolved:
        query = query.where(Alert.resolved_at.is_not(None))
    if criteria.kind is not None:
        query = query.where(Alert.kind == criteria.kind.value)
    if before is not None:
        query = query.where(Alert.id < before)
    return list(session.scalars(query.order_by(Alert.id.desc()).limit(limit)))


def visible_alert(session: Session, caller: User, alert_id: int) -> Alert:
    alert = session.scalar(
        select(Alert).where(
            Alert.id == alert_id, Alert.org_id == caller.org_id, _visible(session, caller)
        )
    )
    if alert is None:
        raise NotFound(f"alert {alert_id} not found")
    return alert


def acknowledge(session: Session, caller: User, alert_id: int) -> Alert:
    """Whoever sees an alert may acknowledge it; the first acknowledgement's time is kept."""
    alert = visible_alert(session, caller, alert_id)
    if alert.acknowledged_at is None:
        alert.acknowledged_at = utcnow()
        session.flush()
    return alert


def replace_settings(
    session: Session, caller: User, data: schemas.AlertSettings
) -> schemas.AlertSettings:
    require_role(caller, Role.admin)
    row = session.get(AlertSettings, caller.org_id)
    if row is None:
        row = AlertSettings(org_id=caller.org_id)
        session.add(row)
    row.thresholds = data.model_dump()
    row.updated_at = utcnow()
    jobs.mark_due(session, caller.org_id, "alerts")  # judged again with them within a tick
    session.flush()
    return store.settings_of(session, caller.org_id)
