"""The open pipeline by stage (GET /pipeline/summary): counts, values and weighted values in
the organization's currency, for the deals the caller may list (as GET /deals)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

from sqlalchemy import case, func, select, union_all
from sqlalchemy.orm import Session

from app.access import team_member_ids, visible_team, visible_user, visible_user_ids
from app.deals import pipeline, schemas
from app.deals.currency import RateBook, load_rates
from app.deals.models import PipelineStage
from app.errors import Unprocessable
from app.models import Deal, DealStatus, Organization, User

ZERO = Decimal(0)


@dataclass
class _Stage:
    count: int = 0
    value: Decimal = ZERO


def owners_of(
    session: Session, caller: User, *, user_id: int | None, team_id: int | None
) -> set[int]:
    """Whose open deals: a user, a team's members, or (neither) all the caller may list."""
    if user_id is not None and team_id is not None:
        raise Unprocessable("give user_id or team_id, not both")
    if user_id is not None:
        return {visible_user(session, caller, user_id).id}
    if team_id is not None:
        return team_member_ids(session, visible_team(session, caller, team_id).id)
    return visible_user_ids(session, caller)


def summary(
    session: Session,
    caller: User,
    *,
    user_id: int | None = None,
    team_id: int | None = None,
    now: datetime | None = None,
) -> schemas.PipelineSummary:
    """Open deals in a currency other than the organization's are converted one by one at the
    rate in force today in the organization's zone (semantics §8, as the pipeline forecast
    does), so the sums are those of the deals' own converted values."""
    owners = owners_of(session, caller, user_id=user_id, team_id=team_id)
    org = session.get_one(Organization, caller.org_id)
    today = (now or datetime.now(UTC)).astimezone(ZoneInfo(org.timezone)).date()
    # one row per stage in the organization's currency; deals in another one row per stage,
    # currency and distinct value, so each is converted (and rounded to the cent) alone
    undated = func.sum(case((Deal.expected_close_date.is_(None), 1), else_=0))
    where = (
        Deal.org_id == caller.org_id,
        Deal.owner_id.in_(sorted(owners)),
        Deal.status == DealStatus.open,
    )
    counted = (func.count(), func.sum(Deal.value), undated)
    foreign = (
        select(Deal.stage, Deal.currency, Deal.value, *counted)
        .where(*where, Deal.currency != org.currency)
        .group_by(Deal.stage, Deal.currency, Deal.value)
    )
    own = (
        select(Deal.stage, Deal.currency, func.min(Deal.value), *counted)
        .where(*where, Deal.currency == org.currency)
        .group_by(Deal.stage, Deal.currency)
    )
    rows = session.execute(union_all(foreign, own)).all()
    rates: RateBook | None = None
    by_stage: dict[str | None, _Stage] = {}
    without_date = 0
    for stage, currency, each, count, total, no_date in rows:
        without_date += int(no_date or 0)
        row = by_stage.setdefault(stage, _Stage())
        row.count += count
        if currency == org.currency:
            row.value += Decimal(total or 0)
            continue
        rates = rates or load_rates(session, org.id)
        converted = rates.convert_open(Decimal(each), currency, today)
        if converted is not None:  # a currency whose every rate was removed: counted only
            row.value += converted * count
    return _read(org.currency, pipeline.stages_of(session, org.id), by_stage, without_date)


def _read(
    currency: str,
    stages: Iterable[PipelineStage],
    by_stage: dict[str | None, _Stage],
    without_date: int,
) -> schemas.PipelineSummary:
    listed: list[schemas.StageSummary] = []
    total = schemas.PipelineTotals(count=0, value=ZERO, weighted=ZERO)
    for stage in stages:
        found = by_stage.pop(stage.name, _Stage())
        weighted = found.value * stage.probability
        listed.append(
            schemas.StageSummary(
                name=stage.name,
                probability=stage.probability,
                count=found.count,
                value=found.value,
                weighted=weighted,
            )
        )
        total.count += found.count
        total.value += found.value
        total.weighted += weighted
    for gone in by_stage.values():  # stages the pipeline no longer has: probability 0
        total.count += gone.count
        total.value += gone.value
    return schemas.PipelineSummary(
        currency=currency, stages=listed, total=total, open_without_close_date=without_date
    )
