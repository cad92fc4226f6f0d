"""The IMAP cursor: per folder UIDVALIDITY, last UID, backfill position and HIGHESTMODSEQ,
and the stretch of history the folder's backfills cover (how far back they reach)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

from connectors.base import CursorExpired


@dataclass(slots=True)
class FolderState:
    uidvalidity: int
    last_uid: int  # the incremental boundary: UIDs above it are new since the last pass
    backfill_below: int | None  # backfill reads UIDs below this; None once it is done
    modseq: int | None  # HIGHESTMODSEQ when the last incremental pass finished, if known
    # Absent (None) from cursors written before a window could be widened; _Pull fills them in.
    # UIDs up to here are the folder's history, read by INTERNALDATE day; above it, every UID
    # is read by the incremental pass whatever its date.
    history_top: int | None = None
    # The day history is read from, once the backfill under way (if any) has ended.
    covered_from: date | None = None
    # The backfill under way fills a gap that ends before this day (a widened window); None:
    # it has no upper bound (the folder's first backfill).
    backfill_before: date | None = None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What STATUS or SELECT reports about a folder."""

    uidvalidity: int
    uidnext: int
    modseq: int | None


def decode_cursor(cursor: str | None) -> dict[str, FolderState]:
    """The per-folder states in a cursor; CursorExpired when it is not one of ours."""
    if not cursor:
        return {}
    try:
        raw = json.loads(cursor)
        if not isinstance(raw, dict):
            raise ValueError("not an object")
        return {str(name): _folder_state(entry) for name, entry in raw.items()}
    except (ValueError, TypeError, KeyError) as error:
        raise CursorExpired(f"unreadable IMAP cursor ({error}); starting afresh") from error


def _folder_state(entry: Any) -> FolderState:
    return FolderState(
        uidvalidity=_number(entry, "uidvalidity"),
        last_uid=_number(entry, "last_uid"),
        backfill_below=None
        if entry["backfill_below"] is None
        else _number(entry, "backfill_below"),
        modseq=None if entry["modseq"] is None else _number(entry, "modseq"),
        history_top=None if entry.get("history_top") is None else _number(entry, "history_top"),
        covered_from=_day(entry, "covered_from"),
        backfill_before=_day(entry, "backfill_before"),
    )


def _day(entry: Any, key: str) -> date | None:
    value = entry.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"bad {key}: {value!r}")
    return date.fromisoformat(value)


def _number(entry: Any, key: str) -> int:
    value = entry[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"bad {key}: {value!r}")
    return value


def encode_cursor(states: Mapping[str, FolderState]) -> str:
    return json.dumps({name: _plain(state) for name, state in sorted(states.items())})


def _plain(state: FolderState) -> dict[str, Any]:
    return {k: v.isoformat() if isinstance(v, date) else v for k, v in asdict(state).items()}


def first_sight(snapshot: Snapshot, since: date) -> FolderState:
    """A folder seen for the first time, or again after a UIDVALIDITY change: everything up to
    UIDNEXT is history, to be read from the `since` day on."""
    last_uid = max(snapshot.uidnext - 1, 0)
    return FolderState(
        snapshot.uidvalidity,
        last_uid,
        backfill_below=last_uid + 1,
        modseq=None,
        history_top=last_uid,
        covered_from=since,
    )


def adopt(state: FolderState, since: date) -> None:
    """Fill in what a cursor from before widening did not record, erring toward reading more:
    its history reaches at most to the last UID it read, and its backfill (done or not) covers
    at least the instance's default window, which only moves forward: it started from a
    `since` no later than today's."""
    if state.history_top is None:
        state.history_top = state.last_uid
    if state.covered_from is None:
        state.covered_from = since


def widen(state: FolderState, since: date) -> bool:
    """Start the backfill of the gap between `since` and what the folder's history covers,
    unless a backfill is under way (it ends first) or nothing is missing. Whether one starts."""
    assert state.covered_from is not None and state.history_top is not None
    if state.backfill_below is not None or since >= state.covered_from:
        return False
    state.backfill_before, state.covered_from = state.covered_from, since
    state.backfill_below = state.history_top + 1
    return True


def batched(uids: Iterable[int], size: int) -> Iterator[tuple[list[int], bool]]:
    """Batches of `size` UIDs, each with whether it is the last; looks one batch ahead."""
    held: list[int] | None = None
    current: list[int] = []
    for uid in uids:
        current.append(uid)
        if len(current) == size:
            if held is not None:
                yield held, False
            held, current = current, []
    if held is not None:
        yield held, not current
    if current:
        yield current, True
