"""Brakes on guessing: failures counted per client address and per key prefix, in the database.

Fixed windows of `rate_limit_window_seconds`, one row per (subject, window) in
`rate_limit_hits`, counted with one upsert in a transaction of its own: the count survives the
request's rollback, and every API process (uvicorn --workers, several hosts) shares it. A
subject with more failures than its limit in the current window is answered 429
`rate_limited` with Retry-After (the seconds left in the window). Rows of past windows are
deleted whenever a subject opens a new window.

Only failures are counted, and by default only failing requests are refused: a valid API key,
a verified webhook or a known OAuth state always passes, so nobody is slowed by someone
else's failures (a shared office address, a provider's shared senders). The operator's own
secrets (the instance admin token, the Gmail push token), which may be short, are checked
`ahead`: once an address is over its limit it is refused before the secret is compared.
docs/operations.md "Rate limits".
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import cast

from fastapi import HTTPException, Request
from sqlalchemy import Table, delete, func, select
from sqlalchemy.dialects import postgresql, sqlite

from app.config import settings
from app.db import get_database
from app.errors import AppError
from app.models import RateLimitHit, utcnow

KEY_PREFIX_CHARS = 8  # as ApiKey.prefix: "tly_" and 4 random characters
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_TABLE = cast(Table, RateLimitHit.__table__)


@dataclass(frozen=True)
class Subject:
    """What is counted: `<scope>:<address or prefix>`, and how many failures it may have."""

    name: str
    limit: int


def client_address(request: Request) -> str:
    """The peer address as the ASGI server reports it (uvicorn rewrites it from
    X-Forwarded-For only for proxies listed in FORWARDED_ALLOW_IPS)."""
    return request.client.host if request.client else "unknown"


def key_prefix(token: str) -> str:
    head = token[:KEY_PREFIX_CHARS]
    if head.isascii() and head.isprintable():
        return head
    return "hex:" + head.encode("utf-8", "surrogatepass").hex()


def auth_subjects(request: Request, token: str | None) -> list[Subject]:
    """A failed authentication: its client address and, when a token came, its prefix."""
    subjects = [
        Subject(f"auth-address:{client_address(request)}", settings.rate_limit_failures_per_address)
    ]
    if token:
        subjects.append(
            Subject(f"auth-key:{key_prefix(token)}", settings.rate_limit_failures_per_key)
        )
    return subjects


def open_subjects(request: Request) -> list[Subject]:
    """A failed call of an endpoint that needs no key (webhooks, the OAuth callback)."""
    return [
        Subject(f"open-address:{client_address(request)}", settings.rate_limit_failures_per_address)
    ]


def _window(now: datetime) -> tuple[datetime, int]:
    """The current window's start and the whole seconds left in it (at least 1)."""
    size = settings.rate_limit_window_seconds
    elapsed = (now - _EPOCH).total_seconds()
    start = _EPOCH + timedelta(seconds=elapsed - elapsed % size)
    left = (start + timedelta(seconds=size) - now).total_seconds()
    return start, max(1, math.ceil(left))


def record_failure(subjects: Sequence[Subject], *, now: datetime | None = None) -> int | None:
    """Count one failure for each subject; the seconds to wait when any is now over its
    limit, else None. Its own transaction: the request's rollback does not undo it."""
    start, left = _window(now or utcnow())
    engine = get_database().engine
    insert = postgresql.insert if engine.dialect.name == "postgresql" else sqlite.insert
    over = False
    with engine.begin() as connection:
        for subject in sorted(subjects, key=lambda s: s.name):  # one lock order everywhere
            statement = (
                insert(_TABLE)
                .values(subject=subject.name[:200], window_start=start, count=1)
                .on_conflict_do_update(
                    index_elements=["subject", "window_start"],
                    set_={"count": _TABLE.c.count + 1},
                )
                .returning(_TABLE.c.count)
            )
            count = connection.execute(statement).scalar_one()
            over = over or count > subject.limit
            if count == 1:  # a new window for this subject: the old ones are spent
                connection.execute(delete(_TABLE).where(_TABLE.c.window_start < start))
    return left if over else None


def wait_before(subjects: Sequence[Subject], *, now: datetime | None = None) -> int | None:
    """Without counting: the seconds to wait when a subject has used up its limit (the next
    failure would be over it)."""
    start, left = _window(now or utcnow())
    by_name = {s.name[:200]: s.limit for s in subjects}
    with get_database().engine.connect() as connection:
        rows = connection.execute(
            select(_TABLE.c.subject, func.max(_TABLE.c.count))
            .where(_TABLE.c.subject.in_(by_name), _TABLE.c.window_start == start)
            .group_by(_TABLE.c.subject)
        ).all()
    return left if any(count >= by_name[name] for name, count in rows) else None


def rate_limited(retry_after: int, what: str) -> HTTPException:
    """The 429 answer; main.py's handler gives it the error body with code rate_limited."""
    return HTTPException(
        status_code=429,
        detail=f"too many failed {what} from this address or with this key; wait {retry_after} s",
        headers={"Retry-After": str(retry_after)},
    )


def refuse_if_over(subjects: Sequence[Subject], what: str) -> None:
    wait = wait_before(subjects)
    if wait is not None:
        raise rate_limited(wait, what)


def failed(subjects: Sequence[Subject], what: str) -> None:
    """Count a failure; raise the 429 when it went over a limit (else the caller's own
    error stands)."""
    wait = record_failure(subjects)
    if wait is not None:
        raise rate_limited(wait, what)


def open_endpoint(*failures: int, ahead: bool = False) -> Callable[[Request], Iterator[None]]:
    """A dependency for an endpoint that needs no key: an AppError with one of `failures`'
    statuses counts against the client's address (429 once over the limit); `ahead` also
    refuses an address over its limit before the endpoint runs."""
    counted = frozenset(failures or (401, 403))

    def guard(request: Request) -> Iterator[None]:
        subjects = open_subjects(request)
        if ahead:
            refuse_if_over(subjects, "requests")
        try:
            yield
        except AppError as error:
            if error.status_code in counted:
                failed(subjects, "requests")
            raise

    return guard
