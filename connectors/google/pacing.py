"""Per-user quota pacing for the Google APIs: spend the quota as fast as it allows, no faster.

Google prices each method in quota units and allows a number of units per user per minute
(connectors.md §1.2: 6,000 units/min/user for projects created since May 2026, 15,000 for
older ones; `messages.get` costs 20 units, `messages.list` 5, `history.list` 2…). A batch of
n calls costs n calls' units. The figures are configuration (`Quota`), with Google's current
defaults.

`Pacer` admits a spend when the units spent in the last window, plus this one, stay within
the budget. It keeps the log of its spends, so it is exact for a per-minute window, which a
token bucket that starts full is not (a full bucket plus a minute of refill is two minutes of
quota in the first minute). The window it checks is a little longer than the provider's
(`guard`), so a request that reaches Google a few milliseconds later than it left is still
counted in the right minute; at the default 5 % guard a long backfill uses about 95 % of the
quota. It also caps the requests in flight.

Pacers are kept per account in the process (`pacer_for`), so two runs of the same mailbox a
few seconds apart share their budget. A second process syncing the same account is excluded
by the connection's lease; a Retry-After from Google covers whatever is left.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field

# Gmail API method costs (quota units), projects created on or after 1 May 2026.
GMAIL_COSTS: Mapping[str, int] = {
    "getProfile": 1,
    "messages.list": 5,
    "messages.get": 20,
    "threads.get": 40,
    "history.list": 2,
    "settings.sendAs.list": 1,
    "labels.list": 1,
    "watch": 100,
    "stop": 50,
}
# Calendar counts requests: 600 a minute per user (every method costs 1).
CALENDAR_COSTS: Mapping[str, int] = {
    "events.list": 1,
    "events.watch": 1,
    "channels.stop": 1,
}


@dataclass(frozen=True, slots=True)
class Quota:
    units_per_window: int = 6_000  # Gmail: 6,000 per user per minute (15,000 on legacy projects)
    window_seconds: float = 60.0
    costs: Mapping[str, int] = field(default_factory=lambda: dict(GMAIL_COSTS))
    max_in_flight: int = 4  # concurrent HTTP requests (a batch counts once), twentyhq/twenty#12336
    max_wait_seconds: float = 60.0  # longest Retry-After waited out inside a run
    guard: float = 0.05  # the window checked is this much longer than the provider's

    def cost(self, method: str) -> int:
        return int(self.costs.get(method, 1))


CALENDAR_QUOTA = Quota(units_per_window=600, costs=CALENDAR_COSTS)


class Pacer:
    """Admits spends so that no window of `quota.window_seconds` sees more than the budget."""

    def __init__(
        self,
        quota: Quota,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.quota = quota
        self._clock, self._sleep = clock, sleep
        self._log: deque[tuple[float, int]] = deque()  # (when, units), oldest first
        self._in_window = 0
        self._lock = threading.Lock()
        self._flight = threading.BoundedSemaphore(max(1, quota.max_in_flight))
        self._blocked_until = 0.0
        self.spent = 0  # units admitted, for figures
        self.waited = 0.0  # seconds spent waiting for quota

    @property
    def _span(self) -> float:
        return self.quota.window_seconds * (1.0 + self.quota.guard)

    def _forget(self, now: float) -> None:
        horizon = now - self._span
        while self._log and self._log[0][0] <= horizon:
            self._in_window -= self._log.popleft()[1]

    def _delay(self, units: int, now: float) -> float:
        """Seconds until `units` fit (0: now)."""
        if now < self._blocked_until:
            return self._blocked_until - now
        self._forget(now)
        budget = self.quota.units_per_window
        units = min(units, budget)  # a spend larger than the budget waits for an empty window
        excess = self._in_window + units - budget
        if excess <= 0:
            return 0.0
        freed = 0
        for when, spent in self._log:
            freed += spent
            if freed >= excess:
                return max(when + self._span - now, 0.0) + 1e-3
        return self._span

    def acquire(self, units: int) -> None:
        """Block until `units` fit in the window, then book them."""
        while True:
            with self._lock:
                now = self._clock()
                delay = self._delay(units, now)
                if delay <= 0:
                    self._log.append((now, units))
                    self._in_window += units
                    self.spent += units
                    return
            self.waited += delay
            self._sleep(delay)

    def acquire_up_to(self, unit: int, count: int, *, minimum: int = 1) -> int:
        """Book as many of `count` calls of `unit` units as fit now, at least `minimum`
        (waiting until that many fit); how many were booked. A batch that does not fit whole
        goes out smaller instead of waiting, so small calls (a list, a history page) in the
        window do not each hold back a whole batch."""
        minimum = max(1, min(minimum, count))
        patience = self.quota.window_seconds * 0.1  # a short wait for a whole batch is worth it
        while True:
            with self._lock:
                now = self._clock()
                whole = self._delay(unit * count, now)
                delay = 0.0 if whole <= 0 else self._delay(unit * minimum, now)
                if 0 < whole <= patience:
                    delay = whole
                if delay <= 0:
                    room = self.quota.units_per_window - self._in_window
                    booked = max(minimum, min(count, room // max(unit, 1)))
                    self._log.append((now, unit * booked))
                    self._in_window += unit * booked
                    self.spent += unit * booked
                    return booked
            self.waited += delay
            self._sleep(delay)

    def spend(self, method: str, count: int = 1) -> None:
        self.acquire(self.quota.cost(method) * count)

    def refund(self, units: int) -> None:
        """Give back units booked for calls that were never made (or rejected by quota)."""
        with self._lock:
            self.spent -= units
            for index in range(len(self._log) - 1, -1, -1):
                when, booked = self._log[index]
                back = min(booked, units)
                self._log[index] = (when, booked - back)
                self._in_window -= back
                units -= back
                if units <= 0:
                    return

    def block(self, seconds: float) -> None:
        """The provider said to wait (Retry-After): nothing is admitted before then."""
        with self._lock:
            self._blocked_until = max(self._blocked_until, self._clock() + seconds)

    def refused(self, seconds: float) -> None:
        """The provider refused for quota and named when to come back: `block`, and as its
        window was full when it refused, fuller than ours (another client of the user, or
        requests that reached it later than they were booked), ours is taken as full as of
        now. After the wait, requests go as the units booked before it leave the window, not
        all at once into a window the provider still counts (bench/gmail.py on a loaded
        machine: 1,228 429s without this, 477 with it; docs/google.md)."""
        with self._lock:
            now = self._clock()
            self._blocked_until = max(self._blocked_until, now + seconds)
            self._forget(now)
            gap = self.quota.units_per_window - self._in_window
            if gap > 0:
                self._log.append((now, gap))
                self._in_window += gap

    @contextmanager
    def in_flight(self) -> Iterator[None]:
        with self._flight:
            yield


_pacers: dict[tuple[str, str], Pacer] = {}
_pacers_lock = threading.Lock()


def pacer_for(api: str, account: str, quota: Quota) -> Pacer:
    """The process's pacer of one account's quota for one API ("gmail", "calendar")."""
    key = (api, account.lower())
    with _pacers_lock:
        pacer = _pacers.get(key)
        if pacer is None or pacer.quota != quota:
            pacer = _pacers[key] = Pacer(quota)
        return pacer
