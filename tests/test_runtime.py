"""The long-running commands settle the heap: start-up objects frozen, cycles still collected."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from app.runtime import settle_heap


@pytest.fixture
def restored_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_start_up_objects_are_frozen_and_new_cycles_are_still_collected(
    restored_gc: None,
) -> None:
    settle_heap()
    assert gc.get_freeze_count() > 10_000  # modules, metadata, the public suffix list
    assert gc.get_threshold()[0] > 700  # young objects walked less often than by default

    class Node:
        partner: object = None

    first, second = Node(), Node()
    first.partner, second.partner = second, first  # a cycle refcounting cannot free
    alive = weakref.ref(first)
    del first, second
    gc.collect()
    assert alive() is None
