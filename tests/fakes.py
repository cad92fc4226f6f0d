"""A scripted connector: yields the pages it was given, then raises what it was told to."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import ClassVar

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
