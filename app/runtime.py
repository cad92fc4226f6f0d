"""Process settings for the long-running commands (serve, worker, import)."""

from __future__ import annotations

import gc


def settle_heap() -> None:
    """Take what start-up built out of the cyclic garbage collector's way.

    A sync allocates millions of short-lived objects; every so often Python's collector walks
    all live container objects, and most of them are start-up's (modules, SQLAlchemy's
    metadata, the public suffix list). Frozen, they are never walked again; with a larger
    first-generation threshold the young objects are walked ten times less often. Measured by
    bench/ingest.py (bench/README.md). Cycles are still collected, only in larger batches.
    """
    from app.contacts import identity

    identity.registrable_domain("example.co.uk")  # loads the public suffix list now
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)
