"""Alert rows and settings as the API shows them, shared by the routes and the evaluation."""

from __future__ import annotations

from sqlalchemy.orm import Session

from app.alerts import schemas
from app.alerts.models import Alert, AlertSettings
from app.alerts.rules import Kind


def read(alert: Alert) -> schemas.AlertRead:
    return schemas.AlertRead(
        id=alert.id,
        kind=Kind(alert.kind),
        subject=schemas.AlertSubject(
            user_id=alert.user_id,
            team_id=alert.team_id,
            deal_id=alert.deal_id,
            quota_id=alert.quota_id,
            connection_id=alert.connection_id,
        ),
        message=alert.message,
        evidence=alert.evidence,
        opened_at=alert.opened_at,
        resolved_at=alert.resolved_at,
        acknowledged_at=alert.acknowledged_at,
    )


def settings_of(session: Session, org_id: int) -> schemas.AlertSettings:
    """The organization's thresholds; §10's defaults where none were set."""
    row = session.get(AlertSettings, org_id)
    return schemas.AlertSettings.model_validate(row.thresholds if row is not None else {})
