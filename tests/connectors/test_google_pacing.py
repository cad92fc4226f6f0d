"""The quota pacer: never more than the budget in any window, and close to it over time."""

from __future__ import annotations

import random

import pytest

from app.config import settings
from app.sync.google import gmail_quota
from connectors.google.pacing import Pacer, Quota


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_no_window_ever_holds_more_than_the_budget_and_the_budget_is_used() -> None:
    clock = Clock()
    quota = Quota(units_per_window=6000, window_seconds=60.0)
    pacer = Pacer(quota, clock=clock, sleep=clock.sleep)
    spends: list[tuple[float, int]] = []
    rng = random.Random(4)
    while clock.now < 1800:
        # a backfill: batches of 50 gets (20 units each), a list or history page now and then
        if rng.random() < 0.1:
            units = rng.choice([5, 2, 1])
            pacer.acquire(units)
        else:
            units = 20 * pacer.acquire_up_to(
                20, rng.choice([50, 50, 50, rng.randint(1, 50)]), minimum=10
            )
        spends.append((clock.now, units))
        clock.now += rng.random() * 0.05  # the work between calls
    for start, _ in spends:  # every window that starts at a spend (the worst ones)
        inside = sum(u for t, u in spends if start <= t < start + 60.0)
        assert inside <= 6000
    used = sum(u for _, u in spends) / (6000 * clock.now / 60.0)
    assert 0.9 <= used <= 1.0


def test_retry_after_blocks_and_refunds_give_back() -> None:
    clock = Clock()
    pacer = Pacer(Quota(units_per_window=100, window_seconds=10.0), clock=clock, sleep=clock.sleep)
    pacer.acquire(100)
    pacer.refund(100)  # rejected by the provider: not spent
    pacer.acquire(100)
    assert clock.now == 0.0
    pacer.block(7.0)
    pacer.refund(100)
    pacer.acquire(1)
    assert clock.now >= 7.0


def test_method_costs_are_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    assert gmail_quota().cost("messages.get") == 20  # Google's published cost
    monkeypatch.setattr(settings, "google_method_costs", {"messages.get": 5, "new.method": 3})
    quota = gmail_quota()
    assert (quota.cost("messages.get"), quota.cost("new.method")) == (5, 3)
    assert quota.cost("messages.list") == 5  # the rest keep Google's figures
