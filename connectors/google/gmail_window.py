"""How far back a Gmail cursor reaches, and the listing that widens it (WidensHistory).

The cursor keeps `covered_from` (epoch ms): the earliest internalDate its listings reach.
A cursor written before it kept one covers at least the default window (`since`), which
only moves forward. Given an earlier start:

- the first backfill still under way just lists further down (its floor moves);
- gmail.readonly: a "gap" listing `messages.list(q="after:<s> before:<s>")` between the new
  start and `covered_from`. Epoch seconds, because dates in `q` are read as midnight Pacific
  time (https://developers.google.com/workspace/gmail/api/guides/filtering). Whether the
  bounds include their second is not documented, so the query is one second wider at each
  end and what a get returns outside [start, covered_from) is dropped: at most the messages
  of those two seconds are read twice;
- gmail.metadata refuses `q` (403 "Metadata scope does not support 'q' parameter",
  googleapis/google-api-python-client#582), so the first backfill's listing goes on where it
  stopped: its last list page token and the first id it read below its floor are kept as
  `rest` when it ends. A cursor without `rest` (written before, or by a gmail.readonly
  consent) lists again from the newest message: what the window held is read once more
  (ingest recognises it; nothing is counted twice).
"""

from __future__ import annotations

from typing import Any

State = dict[str, Any]


def covered_from(state: State, since_ms: int) -> int:
    """The earliest internalDate the cursor reaches; recorded in the state from now on."""
    covered = int(state.get("covered_from") or since_ms)
    state["covered_from"] = covered
    return covered


def gap_query(start_ms: int, end_ms: int) -> str:
    return f"after:{start_ms // 1000 - 1} before:{-(-end_ms // 1000) + 1}"


def widen(state: State, since_ms: int, start_ms: int | None, *, metadata_only: bool) -> bool:
    """Arrange the listing of what lies between `start_ms` and what the cursor covers.
    Returns False when nothing is missing, or a gap listing is under way (it ends first)."""
    covered = covered_from(state, since_ms)
    if start_ms is None or start_ms >= covered or state.get("gap"):
        return False
    backfill = state.get("backfill")
    if backfill:  # the first listing is still going down: let it go further
        backfill["floor"] = min(int(backfill["floor"]), start_ms)
    elif not metadata_only:
        state["gap"] = {
            "page": None,
            "floor": start_ms,
            "below": covered,
            "q": gap_query(start_ms, covered),
        }
    else:
        rest = state.get("rest") or {}
        if not rest.get("end"):  # else the mailbox held nothing older: nothing to list
            state["backfill"] = {
                "page": rest.get("page"),
                "from_id": rest.get("from_id"),
                "floor": start_ms,
            }
    state["covered_from"] = start_ms
    return True


def resume_at(ids: list[str], from_id: str | None) -> list[str]:
    """The listed ids from `from_id` on (all of them when it is gone: read more, never less)."""
    if from_id is None or from_id not in ids:
        return ids
    return ids[ids.index(from_id) :]
