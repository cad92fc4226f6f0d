"""The organization's pipeline: ordered stages with win probabilities, and replacing them."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.access import require_role
from app.deals import schemas
from app.deals.history import record
from app.deals.models import PipelineStage
from app.errors import Conflict
from app.models import Deal, DealStatus, Role, User

# What a new organization starts with. Migration 0006 holds a frozen copy for the
# organizations that existed before it; change this one, not that one.
DEFAULT_STAGES: tuple[tuple[str, Decimal, int], ...] = (
    ("Qualification", Decimal("0.1"), 14),
    ("Discovery", Decimal("0.25"), 14),
    ("Proposal", Decimal("0.5"), 14),
    ("Negotiation", Decimal("0.75"), 14),
)


def add_default_stages(session: Session, org_id: int) -> None:
    for position, (name, probability, rotten_days) in enumerate(DEFAULT_STAGES):
        session.add(
            PipelineStage(
                org_id=org_id,
                position=position,
                name=name,
                probability=probability,
                rotten_days=rotten_days,
            )
        )


def stages_of(session: Session, org_id: int) -> list[PipelineStage]:
    return list(
        session.scalars(
            select(PipelineStage)
            .where(PipelineStage.org_id == org_id)
            .order_by(PipelineStage.position)
        )
    )


def probabilities(session: Session, org_id: int) -> dict[str, Decimal]:
    return {s.name: s.probability for s in stages_of(session, org_id)}


def read(stages: list[PipelineStage]) -> schemas.PipelineRead:
    return schemas.PipelineRead(
        stages=[
            schemas.StageRead(name=s.name, probability=s.probability, rotten_days=s.rotten_days)
            for s in stages
        ]
    )


def open_deals_by_stage(session: Session, org_id: int) -> dict[str, int]:
    rows = session.execute(
        select(Deal.stage, func.count())
        .where(Deal.org_id == org_id, Deal.status == DealStatus.open)
        .group_by(Deal.stage)
    )
    return {stage: count for stage, count in rows if stage is not None}


def replace_stages(
    session: Session, org_id: int, data: schemas.PipelineUpdate, *, by_user_id: int | None
) -> list[PipelineStage]:
    """The new pipeline; open deals in a removed stage go where `data.move` says (409 when it
    says nothing for a stage that holds some), each move kept in the deal's history."""
    old = {s.name for s in stages_of(session, org_id)}
    new = [s.name for s in data.stages]
    removed = old - set(new)
    strays = sorted(set(data.move) - removed)
    if strays:
        # which stages an update removes depends on the pipeline as it is: a conflict with it
        raise Conflict(f"move: {', '.join(strays)} is not a stage this update removes")
    held = {s: n for s, n in open_deals_by_stage(session, org_id).items() if s in removed}
    unmoved = sorted(s for s in held if s not in data.move)
    if unmoved:
        counts = ", ".join(f"{s!r} ({held[s]} open deals)" for s in unmoved)
        raise Conflict(f"removing stages that hold open deals: {counts}; say where they go in move")
    _move_deals(session, org_id, {s: data.move[s] for s in held}, by_user_id=by_user_id)
    for row in stages_of(session, org_id):
        session.delete(row)
    session.flush()
    for position, stage in enumerate(data.stages):
        session.add(
            PipelineStage(
                org_id=org_id,
                position=position,
                name=stage.name,
                probability=stage.probability,
                rotten_days=stage.rotten_days,
            )
        )
    session.flush()
    return stages_of(session, org_id)


def _move_deals(
    session: Session, org_id: int, moves: Mapping[str, str], *, by_user_id: int | None
) -> None:
    if not moves:
        return
    deals = session.scalars(
        select(Deal)
        .where(
            Deal.org_id == org_id,
            Deal.status == DealStatus.open,
            Deal.stage.in_(list(moves)),
        )
        .order_by(Deal.id)
    )
    for deal in deals:
        assert deal.stage is not None
        old, deal.stage = deal.stage, moves[deal.stage]
        record(session, deal, [("stage", old, deal.stage)], by_user_id=by_user_id)


def replace_for(
    session: Session, caller: User, data: schemas.PipelineUpdate
) -> schemas.PipelineRead:
    require_role(caller, Role.admin)
    return read(replace_stages(session, caller.org_id, data, by_user_id=caller.id))
