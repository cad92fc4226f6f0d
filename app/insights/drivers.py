"""Pure: rank a team on an outcome, take the top quarter, and say which figures set it apart.

Semantics §12. Every rule here is a decision the API documents (docs/insights.md):

- ranking: best outcome first (descending; ascending for a lower-is-better outcome such as
  sales_cycle_days), members without an outcome value last, ties by user id ascending;
- top performers: the first max(1, n // 4) of the n members (floor: never more than a quarter
  of the team), leaving out any without an outcome value (who cannot lead on it);
- a driver's means: the plain mean of the members' own values, each member once, members
  without a value left out (a win rate is each person's, not the group's pooled rate);
- ratio = top_mean / others_mean, None when either mean is missing or others_mean is 0;
- drivers sorted by |ratio - 1| descending, None last, ties by metric name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

from app.metrics.catalogue import Value

# What a person does, counted once: meetings_scheduled would count a meeting twice and
# emails_received is what others do.
ACTIVITY = ("emails_sent", "meetings_held", "calls", "chat_conversations")
PER_OPPORTUNITY = "activities_per_opportunity"
PER_DEAL_WON = "activities_per_deal_won"


@dataclass(frozen=True, slots=True)
class Member:
    user_id: int
    outcome: Value
    values: Mapping[str, Value]


@dataclass(frozen=True, slots=True)
class Driver:
    metric: str
    top_mean: Decimal | None
    others_mean: Decimal | None
    ratio: Decimal | None


@dataclass(frozen=True, slots=True)
class Ranking:
    members: list[Member]  # best first
    top_user_ids: list[int]
    drivers: list[Driver]


def top_count(n: int) -> int:
    """How many of n members are the top quarter: at least one, never more than a quarter."""
    return max(1, n // 4) if n else 0


def per(activity: Value, count: Value) -> Decimal | None:
    """Activity per opportunity or per deal won: None where nothing divides."""
    if activity is None or not count:
        return None
    return Decimal(activity) / Decimal(count)


def activity(values: Mapping[str, Value]) -> int:
    return sum(int(values.get(name) or 0) for name in ACTIVITY)


def rank(members: Sequence[Member], *, lower_is_better: bool = False) -> list[Member]:
    def key(member: Member) -> tuple[bool, Decimal, int]:
        if member.outcome is None:
            return (True, Decimal(0), member.user_id)
        value = Decimal(member.outcome)
        return (False, value if lower_is_better else -value, member.user_id)

    return sorted(members, key=key)


def mean(values: Sequence[Value]) -> Decimal | None:
    known = [Decimal(v) for v in values if v is not None]
    return sum(known, Decimal(0)) / len(known) if known else None


def ratio(top: Decimal | None, others: Decimal | None) -> Decimal | None:
    if top is None or others is None or others == 0:
        return None
    return top / others


def _distance(driver: Driver) -> tuple[bool, Decimal, str]:
    if driver.ratio is None:
        return (True, Decimal(0), driver.metric)
    return (False, -abs(driver.ratio - 1), driver.metric)


def drivers(
    members: Sequence[Member], *, lower_is_better: bool = False, metrics: Sequence[str]
) -> Ranking:
    """Rank `members` on their outcome and compare the top quarter with the others on each of
    `metrics` (names in the members' values; a name a member lacks counts as no value)."""
    ranked = rank(members, lower_is_better=lower_is_better)
    top = [m for m in ranked[: top_count(len(ranked))] if m.outcome is not None]
    top_ids = {m.user_id for m in top}
    others = [m for m in ranked if m.user_id not in top_ids]
    found = []
    for metric in metrics:
        top_mean = mean([m.values.get(metric) for m in top])
        others_mean = mean([m.values.get(metric) for m in others])
        found.append(Driver(metric, top_mean, others_mean, ratio(top_mean, others_mean)))
    return Ranking(ranked, [m.user_id for m in top], sorted(found, key=_distance))
