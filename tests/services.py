"""Skips for tests that need a server: a skip on a laptop, a failure in CI."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

REQUIRE_ENV = "TALLY_REQUIRE_SERVICES"


def require_service(name: str, reason: str) -> NoReturn:
    """Skip because `name` is missing, or fail when TALLY_REQUIRE_SERVICES=1 (set by .ci/run)."""
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{name} is required here ({REQUIRE_ENV}=1) but unavailable: {reason}")
    pytest.skip(f"{name} unavailable: {reason}")
