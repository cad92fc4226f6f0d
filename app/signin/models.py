"""Tables of this domain (registered on Base.metadata by app/tables.py)."""

from __future__ import annotations
