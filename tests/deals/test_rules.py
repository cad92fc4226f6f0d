"""The pure rules of a deal's lifecycle (semantics §8), table-driven."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from app.deals.currency import RateBook
from app.deals.rates import base_amounts
from app.deals.rules import DealRuleError, diff, probability, settle
from app.errors import Unprocessable
from app.models import DealStatus

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
JAN = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
FEB = datetime(2026, 2, 5, 9, 0, tzinfo=UTC)
STAGES = {"Qualification": Decimal("0.1"), "Proposal": Decimal("0.5")}
OPEN = {
    "name": "D",
    "owner_id": 1,
    "company_id": None,
    "contact_ids": [],
    "value": Decimal("10.00"),
    "cost": None,
    "currency": "EUR",
    "stage": "Proposal",
    "status": DealStatus.open,
    "expected_close_date": None,
    "created_at": JAN,
    "closed_at": None,
    "external_id": None,
}
WON = {**OPEN, "status": DealStatus.won, "closed_at": FEB}


def ok(current: dict[str, Any] | None, given: dict[str, Any]) -> dict[str, Any]:
    return settle(current, given, now=NOW, stages=STAGES)


@pytest.mark.parametrize(
    ("current", "given", "expected"),
    [
        # creation: open by default, created now, no closed_at
        (None, {"stage": "Proposal"}, {"status": "open", "created_at": NOW, "closed_at": None}),
        (None, {"status": "won"}, {"status": "won", "stage": None, "closed_at": NOW}),
        (None, {"status": "lost", "closed_at": FEB, "created_at": JAN}, {"closed_at": FEB}),
        (None, {"stage": "Proposal", "contact_ids": [3, 1, 3]}, {"contact_ids": [1, 3]}),
        # winning closes now, unless told when; the stage stays as it was
        (OPEN, {"status": "won"}, {"closed_at": NOW, "stage": "Proposal"}),
        (OPEN, {"status": "lost", "closed_at": FEB}, {"closed_at": FEB}),
        # a closed deal keeps its closed_at through other changes, or takes a new one
        (WON, {"value": Decimal(5)}, {"closed_at": FEB}),
        (WON, {"status": "lost"}, {"status": "lost", "closed_at": FEB}),
        (WON, {"closed_at": JAN}, {"closed_at": JAN}),
        # reopening clears closed_at
        (WON, {"status": "open"}, {"status": "open", "closed_at": None, "stage": "Proposal"}),
        (WON, {"status": "open", "stage": "Qualification"}, {"stage": "Qualification"}),
        # a closed deal may keep a stage the pipeline no longer has
        ({**WON, "stage": "Gone"}, {"name": "E"}, {"stage": "Gone"}),
        # offsets are kept as instants in UTC
        (
            None,
            {"stage": "Proposal", "created_at": datetime.fromisoformat("2026-01-05T10:00+01:00")},
            {"created_at": JAN},
        ),
    ],
)
def test_settle(
    current: dict[str, Any] | None, given: dict[str, Any], expected: dict[str, Any]
) -> None:
    state = ok(current, given)
    for name, value in expected.items():
        assert state[name] == value, name
        if isinstance(value, datetime):
            assert state[name].utcoffset() == UTC.utcoffset(None)


@pytest.mark.parametrize(
    ("current", "given", "message"),
    [
        (None, {}, "needs a stage"),
        (None, {"stage": "Nope"}, "not a stage of the pipeline"),
        (None, {"stage": "Proposal", "closed_at": FEB}, "only for won or lost"),
        (None, {"status": "won", "created_at": FEB, "closed_at": JAN}, "before created_at"),
        (
            None,
            {"status": "won", "created_at": datetime(2027, 1, 1, tzinfo=UTC)},
            "before created_at",
        ),
        (OPEN, {"stage": None}, "needs a stage"),
        (WON, {"status": "open", "stage": "Nope"}, "not a stage of the pipeline"),
        ({**WON, "stage": "Gone"}, {"status": "open"}, "no longer in the pipeline"),
        (WON, {"closed_at": None}, "has a closed_at"),
        (WON, {"stage": "Nope"}, "not a stage of the pipeline"),
        (WON, {"created_at": NOW}, "before created_at"),
    ],
)
def test_settle_refuses(
    current: dict[str, Any] | None, given: dict[str, Any], message: str
) -> None:
    with pytest.raises(DealRuleError, match=message):
        ok(current, given)


@pytest.mark.parametrize(
    ("status", "stage", "expected"),
    [
        ("open", "Proposal", Decimal("0.5")),
        ("open", "Qualification", Decimal("0.1")),
        ("open", "Gone", Decimal(0)),
        ("won", "Qualification", Decimal(1)),
        ("won", None, Decimal(1)),
        ("lost", "Proposal", Decimal(0)),
    ],
)
def test_probability(status: str, stage: str | None, expected: Decimal) -> None:
    assert probability(status, stage, STAGES) == expected


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (OPEN, dict(OPEN), []),
        (OPEN, {**OPEN, "value": Decimal("10")}, []),  # the same amount, written otherwise
        (OPEN, {**OPEN, "value": Decimal("10.01")}, [("value", "10.00", "10.01")]),
        (OPEN, {**OPEN, "cost": Decimal(2)}, [("cost", None, "2")]),
        (OPEN, {**OPEN, "contact_ids": [4]}, [("contact_ids", [], [4])]),
        (
            OPEN,
            {**WON},
            [("status", "open", "won"), ("closed_at", None, "2026-02-05T09:00:00+00:00")],
        ),
        (OPEN, {**OPEN, "created_at": datetime.fromisoformat("2026-01-05T10:00+01:00")}, []),
        (
            OPEN,
            {**OPEN, "expected_close_date": date(2026, 4, 1)},
            [("expected_close_date", None, "2026-04-01")],
        ),
    ],
)
def test_diff(
    old: dict[str, Any], new: dict[str, Any], expected: list[tuple[str, Any, Any]]
) -> None:
    assert diff(old, new) == expected


BOOK = RateBook.of(
    "EUR",
    [("USD", date(2026, 1, 1), Decimal("0.5")), ("USD", date(2026, 3, 1), Decimal("0.9"))],
)
BRUSSELS = ZoneInfo("Europe/Brussels")


@pytest.mark.parametrize(
    ("status", "currency", "closed_at", "expected"),
    [
        ("open", "USD", None, (None, None)),
        ("won", "EUR", FEB, (Decimal("10.00"), Decimal("3.00"))),
        ("won", "USD", FEB, (Decimal("5.00"), Decimal("1.50"))),
        ("lost", "USD", datetime(2026, 3, 10, tzinfo=UTC), (Decimal("9.00"), Decimal("2.70"))),
        # 23:30 UTC on 28 Feb is 1 March in Brussels: the March rate
        (
            "won",
            "USD",
            datetime(2026, 2, 28, 23, 30, tzinfo=UTC),
            (Decimal("9.00"), Decimal("2.70")),
        ),
    ],
)
def test_base_amounts(
    status: str,
    currency: str,
    closed_at: datetime | None,
    expected: tuple[Decimal | None, Decimal | None],
) -> None:
    found = base_amounts(
        BOOK,
        BRUSSELS,
        status=status,
        value=Decimal("10.00"),
        cost=Decimal("3.00"),
        currency=currency,
        closed_at=closed_at,
        today=date(2026, 3, 10),
    )
    assert found == expected


@pytest.mark.parametrize(
    ("status", "currency", "closed_at", "today"),
    [
        ("won", "USD", datetime(2025, 12, 31, 12, tzinfo=UTC), date(2026, 3, 10)),
        ("open", "USD", None, date(2025, 12, 31)),
        ("open", "GBP", None, date(2026, 3, 10)),
    ],
)
def test_base_amounts_without_a_rate_name_the_currency(
    status: str, currency: str, closed_at: datetime | None, today: date
) -> None:
    with pytest.raises(Unprocessable, match=currency):
        base_amounts(
            BOOK,
            BRUSSELS,
            status=status,
            value=Decimal(1),
            cost=None,
            currency=currency,
            closed_at=closed_at,
            today=today,
        )
