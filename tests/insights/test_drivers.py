"""The judgement of §12 as tables: who is in the top quarter, in what order, and how the
drivers' means, ratios and order come out (ties, missing values, zero means, a team of one,
a lower-is-better outcome)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from app.insights.drivers import (
    Member,
    activity,
    drivers,
    mean,
    per,
    rank,
    ratio,
    top_count,
)
from app.metrics.catalogue import Value

D = Decimal


@pytest.mark.parametrize(
    ("n", "top"),
    [(0, 0), (1, 1), (2, 1), (3, 1), (4, 1), (5, 1), (6, 1), (7, 1), (8, 2), (9, 2), (12, 3)],
)
def test_the_top_quarter_is_floored_and_at_least_one(n: int, top: int) -> None:
    assert top_count(n) == top
    team = [Member(i, 100 - i, {}) for i in range(1, n + 1)]  # user 1 leads
    assert drivers(team, metrics=[]).top_user_ids == list(range(1, top + 1))


@pytest.mark.parametrize(
    ("outcomes", "lower_is_better", "order"),
    [
        ({1: 5, 2: 9, 3: 7}, False, [2, 3, 1]),
        ({1: 5, 2: 9, 3: 7}, True, [1, 3, 2]),  # sales_cycle_days: fewest days first
        ({3: 7, 1: 7, 2: 7}, False, [1, 2, 3]),  # ties: user id ascending
        ({3: 7, 1: 7, 2: 9}, True, [1, 3, 2]),
        ({1: None, 2: D("0.5"), 3: D(0)}, False, [2, 3, 1]),  # no value: last, either way
        ({1: None, 2: D("0.5"), 3: D(0)}, True, [3, 2, 1]),
        ({2: None, 1: None}, False, [1, 2]),
        ({1: D("1000.50"), 2: 1000, 3: D("999.99")}, False, [1, 2, 3]),  # ints beside decimals
    ],
)
def test_ranking(outcomes: dict[int, Value], lower_is_better: bool, order: list[int]) -> None:
    team = [Member(user, value, {}) for user, value in outcomes.items()]
    assert [m.user_id for m in rank(team, lower_is_better=lower_is_better)] == order


@pytest.mark.parametrize(
    ("outcomes", "top"),
    [
        ({1: None, 2: None, 3: None, 4: None}, []),  # nobody has an outcome: nobody leads
        ({i: None for i in range(1, 8)} | {8: D(3)}, [8]),  # 8 members: 2 slots, one filled
        ({i: 0 for i in range(1, 5)}, [1]),  # all tied at 0: the lowest id, deterministically
    ],
)
def test_a_member_without_an_outcome_is_never_top(
    outcomes: dict[int, Value], top: list[int]
) -> None:
    team = [Member(user, value, {}) for user, value in outcomes.items()]
    assert drivers(team, metrics=[]).top_user_ids == top


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([], None),
        ([None, None], None),
        ([1, None, 2], D("1.5")),
        ([0, 0], D(0)),
        ([D("0.5"), 1], D("0.75")),
    ],
)
def test_mean_leaves_out_missing_values(values: list[Value], expected: Decimal | None) -> None:
    assert mean(values) == expected


@pytest.mark.parametrize(
    ("top", "others", "expected"),
    [
        (D(6), D(2), D(3)),
        (D(1), D(4), D("0.25")),
        (D(0), D(4), D(0)),
        (D(5), D(0), None),  # others never do it: no finite ratio
        (D(0), D(0), None),
        (None, D(2), None),
        (D(2), None, None),
    ],
)
def test_ratio(top: Decimal | None, others: Decimal | None, expected: Decimal | None) -> None:
    assert ratio(top, others) == expected


def test_drivers_sorted_by_distance_from_one_nulls_last_ties_by_name() -> None:
    # 4 members: user 1 is the top (quarter = 1); the others are 2, 3, 4
    team = [
        Member(1, 900, {"a": 6, "b": 1, "c": 3, "d": 5, "e": 0, "f": None, "g": 2}),
        Member(2, 300, {"a": 2, "b": 4, "c": 1, "d": 0, "e": 0, "f": 1, "g": 2}),
        Member(3, 200, {"a": 2, "b": 4, "c": 1, "d": 0, "e": 0, "f": 1, "g": 2}),
        Member(4, 100, {"a": 2, "b": 4, "c": 1, "d": 0, "e": 0, "f": 1}),  # no g
    ]
    result = drivers(team, metrics=["g", "f", "e", "d", "c", "b", "a"])
    assert result.top_user_ids == [1]
    rows = [(d.metric, d.top_mean, d.others_mean, d.ratio) for d in result.drivers]
    assert rows == [
        ("a", D(6), D(2), D(3)),  # |3 - 1| = 2, tied with c: by name
        ("c", D(3), D(1), D(3)),
        ("b", D(1), D(4), D("0.25")),  # 0.75
        ("g", D(2), D(2), D(1)),  # 0: no difference, still listed
        ("d", D(5), D(0), None),  # nulls last, by name
        ("e", D(0), D(0), None),
        ("f", None, D(1), None),  # no top performer has a value
    ]


def test_a_team_of_one_has_no_others() -> None:
    result = drivers([Member(7, 10, {"a": 3})], metrics=["a"])
    assert result.top_user_ids == [7]
    assert [(d.top_mean, d.others_mean, d.ratio) for d in result.drivers] == [(D(3), None, None)]


def test_an_empty_team() -> None:
    result = drivers([], metrics=["a"])
    assert (result.members, result.top_user_ids) == ([], [])
    assert [(d.top_mean, d.others_mean, d.ratio) for d in result.drivers] == [(None, None, None)]


def test_two_top_performers_are_averaged() -> None:
    # 8 members, top 2 (users 1 and 2 by outcome), lower-is-better outcome
    team = [Member(i, i, {"a": 10 if i <= 2 else 1}) for i in range(8, 0, -1)]
    team[0] = Member(8, 8, {"a": 4})  # the worst: others' mean (1 * 5 + 4) / 6 = 1.5
    result = drivers(team, lower_is_better=True, metrics=["a"])
    assert result.top_user_ids == [1, 2]
    assert [m.user_id for m in result.members] == [1, 2, 3, 4, 5, 6, 7, 8]
    (a,) = result.drivers
    assert (a.top_mean, a.others_mean) == (D(10), D("1.5"))
    assert a.ratio == D(10) / D("1.5")


@pytest.mark.parametrize(
    ("values", "done"),
    [
        ({}, 0),
        ({"emails_sent": 3, "meetings_held": 2, "calls": 1}, 6),
        ({"emails_sent": 3, "meetings_scheduled": 9, "emails_received": 9}, 3),  # not actions
        ({"calls": 1, "chat_conversations": 4}, 5),
        ({"calls": None, "emails_sent": 2}, 2),
    ],
)
def test_activity_is_what_a_person_does(values: dict[str, Value], done: int) -> None:
    assert activity(values) == done


@pytest.mark.parametrize(
    ("done", "count", "expected"),
    [(12, 3, D(4)), (0, 3, D(0)), (5, 0, None), (5, None, None), (None, 2, None), (1, 3, D(1) / 3)],
)
def test_activity_per(done: Value, count: Value, expected: Decimal | None) -> None:
    assert per(done, count) == expected
