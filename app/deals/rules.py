"""Pure judgement on a deal's state: what a write leaves it as, and what changed.

A deal's state is a dict of its API fields (TRACKED). `settle` applies a write to the current
state (or to nothing, for a creation) and returns the new state, or raises DealRuleError with
the message a client reads; `diff` lists the changed fields for the history.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from app.models import DealStatus

TRACKED = (
    "name",
    "owner_id",
    "company_id",
    "contact_ids",
    "value",
    "cost",
    "currency",
    "stage",
    "status",
    "expected_close_date",
    "created_at",
    "closed_at",
    "external_id",
)
MONEY_FIELDS = frozenset({"value", "cost"})

State = dict[str, Any]


class DealRuleError(ValueError):
    """A write the rules of semantics §8 refuse (a 422)."""


def settle(
    current: Mapping[str, Any] | None,
    given: Mapping[str, Any],
    *,
    now: datetime,
    stages: Collection[str],
) -> State:
    """The state after writing `given` (the fields the client sent) over `current`.

    Open deals sit in a stage of the pipeline and have no closed_at; won and lost deals keep
    the stage they had (none needed) and take closed_at (default: now, or the moment they
    already closed). A stage being set must be one of the pipeline's."""
    if current is None:
        fresh: State = {name: None for name in TRACKED}
        current_or_fresh = fresh | {"contact_ids": [], "status": DealStatus.open, "created_at": now}
        state = current_or_fresh | dict(given)
    else:
        state = dict(current) | dict(given)
    for name in ("created_at", "closed_at"):
        if state.get(name) is not None:
            state[name] = state[name].astimezone(UTC)
    status = DealStatus(state["status"])
    state["status"] = status
    state["contact_ids"] = sorted(set(state["contact_ids"]))
    stage = state.get("stage")
    stage_set = "stage" in given and given["stage"] is not None
    if stage_set and stage not in stages:
        raise DealRuleError(f"stage {str(stage)[:100]!r} is not a stage of the pipeline")
    if status == DealStatus.open:
        if given.get("closed_at") is not None:
            raise DealRuleError("closed_at is only for won or lost deals")
        state["closed_at"] = None
        if stage is None:
            raise DealRuleError("an open deal needs a stage of the pipeline")
        if stage not in stages:
            raise DealRuleError(f"stage {stage!r} is no longer in the pipeline; give a stage")
    else:
        if "closed_at" in given and given["closed_at"] is None:
            raise DealRuleError(f"a {status} deal has a closed_at")
        was_closed = current is not None and current.get("status") != DealStatus.open
        if given.get("closed_at") is None and not (was_closed and state.get("closed_at")):
            state["closed_at"] = now
    closed_at: datetime | None = state.get("closed_at")
    if closed_at is not None and closed_at < state["created_at"]:
        raise DealRuleError("closed_at is before created_at")
    return state


def probability(status: str, stage: str | None, stages: Mapping[str, Decimal]) -> Decimal:
    if status == DealStatus.won:
        return Decimal(1)
    if status == DealStatus.lost or stage is None:
        return Decimal(0)
    return stages.get(stage, Decimal(0))


def jsonable(value: Any) -> Any:
    """A state value as the history's JSON column keeps it (money exact, as a string)."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, DealStatus):
        return value.value
    if isinstance(value, list):
        return [jsonable(v) for v in value]
    return value


def snapshot(state: Mapping[str, Any]) -> dict[str, Any]:
    return {name: jsonable(state.get(name)) for name in TRACKED}


def diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[tuple[str, Any, Any]]:
    """(field, old, new) for every tracked field whose value differs, as JSON values."""
    changes = []
    for name in TRACKED:
        before, after = jsonable(old.get(name)), jsonable(new.get(name))
        same_money = (
            name in MONEY_FIELDS
            and before is not None
            and after is not None
            and Decimal(before) == Decimal(after)
        )
        if before != after and not same_money:
            changes.append((name, before, after))
    return changes
