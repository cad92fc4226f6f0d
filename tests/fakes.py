"""A scripted connector: yields the pages it was given, then raises what it was told to."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any, ClassVar

import pytest

from connectors.base import Page


class FakeConnector:
    name: ClassVar[str] = "fake"

    def __init__(self, pages: Sequence[Page], error: Exception | None = None) -> None:
        self.pages = list(pages)
        self.error = error
        self.cursors_given: list[str | None] = []

    def check(self) -> None:
        return None

    def pull(self, cursor: str | None, *, since: datetime) -> Iterator[Page]:
        self.cursors_given.append(cursor)
        start = int(cursor) if cursor else 0
        yield from self.pages[start:]
        if self.error is not None:
            raise self.error


def interrupt_syncs(
    monkeypatch: pytest.MonkeyPatch,
    *,
    after_pages: int,
    then: Callable[[], None],
    connector: str | None = None,
) -> Callable[[], None]:
    """Make the sync runner's real connectors (only the one named `connector`, when given)
    call `then` (stop a server, raise) once a pull has yielded `after_pages` pages; a widened
    window is passed on. Returns what puts the real connectors back."""
    from app.sync import registry, runner

    real = registry.build_connectors

    class Interrupted:
        def __init__(self, inner: Any) -> None:
            self.inner, self.name = inner, inner.name
            # a widening connector stays one: the runner gives it the connection's window
            self.widens_history = getattr(inner, "widens_history", False)

        def pull(
            self, cursor: str | None, *, since: datetime, history_from: datetime | None = None
        ) -> Iterator[Page]:
            pages = (
                self.inner.pull(cursor, since=since, history_from=history_from)
                if history_from is not None
                else self.inner.pull(cursor, since=since)
            )
            for number, page in enumerate(pages, 1):
                yield page
                if number == after_pages and connector in (None, self.name):
                    then()

    monkeypatch.setattr(
        runner, "build_connectors", lambda c, s: [Interrupted(x) for x in real(c, s)]
    )
    return lambda: monkeypatch.setattr(runner, "build_connectors", real)


def raising(error: Exception) -> Callable[[], None]:
    def fail() -> None:
        raise error

    return fail
