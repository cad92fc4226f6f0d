"""Pure: a calendar copy as stored (`event_copies.data`), the event's key, and the addresses
that find it again when the directory changes (`event_addresses`)."""

from __future__ import annotations

import hashlib
from dataclasses import asdict
from datetime import datetime
from typing import Any

from connectors.base import Address, Attendee, RemoteEvent


def event_key(event: RemoteEvent) -> str:
    """One event however many calendars hold it: its UID and, for an occurrence of a series,
    its original start. A single event keeps its key when it moves."""
    original = event.recurrence_id.isoformat() if event.recurrence_id else ""
    return hashlib.sha256(f"{event.uid}\n{original}".encode()).hexdigest()


def to_json(event: RemoteEvent) -> dict[str, Any]:
    data = asdict(event)
    for name in ("recurrence_id", "start", "end", "created"):
        value = data[name]
        data[name] = value.isoformat() if value is not None else None
    return data


def from_json(data: dict[str, Any]) -> RemoteEvent:
    def moment(name: str) -> datetime | None:
        value = data.get(name)
        return datetime.fromisoformat(value) if value else None

    organizer = data.get("organizer")
    start, end = moment("start"), moment("end")
    assert start is not None and end is not None
    return RemoteEvent(
        source_id=data["source_id"],
        uid=data["uid"],
        recurrence_id=moment("recurrence_id"),
        start=start,
        end=end,
        all_day=data["all_day"],
        status=data["status"],
        summary=data["summary"],
        location=data["location"],
        description=data["description"],
        conference=tuple(data["conference"]),
        organizer=Address(**organizer) if organizer else None,
        attendees=tuple(Attendee(**a) for a in data["attendees"]),
        created=moment("created"),
        version=data["version"],
    )


def people(event: RemoteEvent) -> set[str]:
    """Every address the event names: its organizer and attendees (rooms too: a room's
    address may become a user's, which changes nothing, at the cost of one recomputation)."""
    found = {a.email for a in event.attendees if a.email}
    if event.organizer is not None and event.organizer.email:
        found.add(event.organizer.email)
    return found
