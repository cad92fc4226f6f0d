"""Every condition of semantics §10 at its thresholds, one row each: just above, just below."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal as D

import pytest

from app.alerts.rules import (
    ActivityFacts,
    ConnectionFacts,
    CoverageFacts,
    DealFacts,
    OpportunityFacts,
    PaceFacts,
    Thresholds,
    activity_drop,
    behind_pace,
    connection_broken,
    deal_going_cold,
    few_new_opportunities,
    low_coverage,
)

T = Thresholds()
NOW = datetime(2026, 3, 15, 12, tzinfo=UTC)


def pace_of(actual: int, target: int, elapsed: str) -> PaceFacts:
    share = D(elapsed)
    pace = D(actual) / (D(target) * share) if share else None
    return PaceFacts("Ana Silva", "meetings_held", "quarter", D(target), actual, share, pace)


@pytest.mark.parametrize(
    ("case", "facts", "opens"),
    [
        ("pace 0.57 with 58% gone", pace_of(4, 12, "0.58"), True),
        ("pace just below 0.7", pace_of(699, 1000, "1"), True),
        ("pace exactly 0.7 is on the line, not below", pace_of(700, 1000, "1"), False),
        ("pace above", pace_of(8, 12, "0.58"), False),
        ("far behind but under 25% of the period gone", pace_of(0, 12, "0.2499"), False),
        ("far behind at exactly 25% gone", pace_of(0, 12, "0.25"), True),
        ("nothing to judge (no pace)", pace_of(0, 12, "0"), False),
    ],
)
def test_behind_pace(case: str, facts: PaceFacts, opens: bool) -> None:
    assert (behind_pace(facts, T) is not None) is opens, case


def test_behind_pace_says_the_numbers_behind_it() -> None:
    opening = behind_pace(pace_of(4, 12, "0.58"), T)
    assert opening is not None
    assert opening.message == (
        "Ana Silva: 4 of 12 meetings held with 58% of the quarter gone; pace 0.57"
    )
    assert opening.evidence["pace"] == pytest.approx(4 / (12 * 0.58), abs=1e-4)
    assert opening.evidence["actual"] == 4 and opening.evidence["target"] == 12


def test_behind_pace_follows_the_organizations_thresholds() -> None:
    stricter = Thresholds(pace_below=D("0.9"), pace_min_elapsed=D("0.5"))
    assert behind_pace(pace_of(8, 10, "1"), stricter) is not None  # 0.8 < 0.9
    assert behind_pace(pace_of(0, 10, "0.4"), stricter) is None  # only 40% gone


def coverage_of(target: int, actual: int, pipeline: str) -> CoverageFacts:
    return CoverageFacts("Ana Silva", "month", D(target), D(actual), D(pipeline))


@pytest.mark.parametrize(
    ("case", "facts", "opens"),
    [
        ("coverage 2 with everything missing", coverage_of(1000, 0, "2000"), True),
        ("coverage just below 3", coverage_of(1000, 0, "2999.99"), True),
        ("coverage exactly 3", coverage_of(1000, 0, "3000"), False),
        ("coverage above 3", coverage_of(1000, 0, "5000"), False),
        ("no pipeline, 25% missing exactly", coverage_of(1000, 750, "0"), True),
        ("no pipeline, just under 25% missing", coverage_of(1000, 751, "0"), False),
        ("target reached: nothing missing", coverage_of(1000, 1000, "0"), False),
        ("target passed", coverage_of(1000, 1500, "0"), False),
    ],
)
def test_low_coverage(case: str, facts: CoverageFacts, opens: bool) -> None:
    assert (low_coverage(facts, T) is not None) is opens, case


def test_low_coverage_message() -> None:
    opening = low_coverage(coverage_of(6000, 1500, "2900"), T)
    assert opening is not None
    assert opening.evidence["coverage"] == pytest.approx(2900 / 4500, abs=1e-4)
    assert opening.evidence["missing"] == 4500
    assert "open pipeline 2900" in opening.message and "coverage 0.64" in opening.message


def deal_of(
    rotten: int, quiet: timedelta, *, created_ago: timedelta | None = None, last: bool = True
) -> DealFacts:
    created = NOW - (created_ago if created_ago is not None else quiet)
    return DealFacts(
        "Acme renewal", "Ana Silva", "Proposal", rotten, created, NOW - quiet if last else None, NOW
    )


@pytest.mark.parametrize(
    ("case", "facts", "opens"),
    [
        ("quiet 15 days, cold after 14", deal_of(14, timedelta(days=15)), True),
        ("quiet a second longer than 14 days", deal_of(14, timedelta(days=14, seconds=1)), True),
        ("quiet exactly 14 days", deal_of(14, timedelta(days=14)), False),
        ("quiet 13 days", deal_of(14, timedelta(days=13)), False),
        ("the stage's own rotten days", deal_of(30, timedelta(days=20)), False),
        (
            "no activity ever, created 15 days ago",
            deal_of(14, timedelta(days=15), last=False),
            True,
        ),
        (
            "no activity ever, created 10 days ago",
            deal_of(14, timedelta(days=10), last=False),
            False,
        ),
        (
            "last activity old, but the deal was created after it, 3 days ago",
            deal_of(14, timedelta(days=40), created_ago=timedelta(days=3)),
            False,
        ),
    ],
)
def test_deal_going_cold(case: str, facts: DealFacts, opens: bool) -> None:
    assert (deal_going_cold(facts) is not None) is opens, case


def test_deal_going_cold_message() -> None:
    opening = deal_going_cold(deal_of(14, timedelta(days=20)))
    assert opening is not None
    assert opening.message.startswith("Acme renewal (Ana Silva, Proposal): no activity")
    assert opening.evidence["quiet_days"] == 20 and opening.evidence["rotten_days"] == 14


@pytest.mark.parametrize(
    ("case", "recent", "baseline", "opens"),
    [
        # baseline 90 days = 3 windows of 30: average = baseline / 3; opens below half of it
        ("average 4, 1 recent", 1, 12, True),
        ("average 4, exactly half (2)", 2, 12, False),
        ("average 4, none recent", 0, 12, True),
        ("average exactly 2, none recent", 0, 6, True),
        ("average just under 2 (5/3), none recent", 0, 5, False),
        ("average 10, 4 recent", 4, 30, True),
        ("average 10, 5 recent", 5, 30, False),
    ],
)
def test_few_new_opportunities(case: str, recent: int, baseline: int, opens: bool) -> None:
    facts = OpportunityFacts("Ana Silva", recent, baseline)
    assert (few_new_opportunities(facts, T) is not None) is opens, case


@pytest.mark.parametrize(
    ("case", "recent", "baseline", "opens"),
    [
        # baseline of 8 weeks: weekly mean = baseline / 8; opens below half of it
        ("mean 10, 4 this week", 4, 80, True),
        ("mean 10, exactly half", 5, 80, False),
        ("mean exactly 5, 2 this week", 2, 40, True),
        ("mean exactly 5, 2.5 would be half: 3 is not below", 3, 40, False),
        ("mean just under 5 (39/8), nothing this week", 0, 39, False),
        ("no history at all", 0, 0, False),
    ],
)
def test_activity_drop(case: str, recent: int, baseline: int, opens: bool) -> None:
    facts = ActivityFacts("Ana Silva", recent, baseline)
    assert (activity_drop(facts, T) is not None) is opens, case


def test_activity_drop_message() -> None:
    opening = activity_drop(ActivityFacts("Ana Silva", 4, 80), T)
    assert opening is not None
    assert opening.message == (
        "Ana Silva: 4 emails sent, meetings held and calls in the last 7 days against 10 a week "
        "over the 8 weeks before"
    )


def conn(status: str, failing_for: timedelta | None) -> ConnectionFacts:
    since = None if failing_for is None else NOW - failing_for
    return ConnectionFacts("Ana Silva", "gmail", status, since, "invalid_grant", NOW)


@pytest.mark.parametrize(
    ("case", "facts", "opens"),
    [
        ("needs reconnect, at once", conn("needs_reconnect", None), True),
        ("error for 25 hours", conn("error", timedelta(hours=25)), True),
        ("error for 24 hours and a second", conn("error", timedelta(hours=24, seconds=1)), True),
        ("error for exactly 24 hours", conn("error", timedelta(hours=24)), False),
        ("error for an hour", conn("error", timedelta(hours=1)), False),
        ("idle", conn("idle", None), False),
    ],
)
def test_connection_broken(case: str, facts: ConnectionFacts, opens: bool) -> None:
    assert (connection_broken(facts, T) is not None) is opens, case
