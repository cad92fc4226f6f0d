"""The IMAP cursor: per folder UIDVALIDITY, last UID, backfill position and HIGHESTMODSEQ."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from connectors.base import CursorExpired


@dataclass(slots=True)
class FolderState:
    uidvalidity: int
    last_uid: int  # the incremental boundary: UIDs above it are new since the last pass
    backfill_below: int | None  # backfill reads UIDs below this; None once it is done
    modseq: int | None  # HIGHESTMODSEQ when the last incremental pass finished, if known


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
    )


def _number(entry: Any, key: str) -> int:
    value = entry[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"bad {key}: {value!r}")
    return value


def encode_cursor(states: Mapping[str, FolderState]) -> str:
    return json.dumps({name: asdict(state) for name, state in sorted(states.items())})


def first_sight(snapshot: Snapshot) -> FolderState:
    """A folder seen for the first time, or again after a UIDVALIDITY change."""
    last_uid = max(snapshot.uidnext - 1, 0)
    return FolderState(snapshot.uidvalidity, last_uid, backfill_below=last_uid + 1, modseq=None)


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
