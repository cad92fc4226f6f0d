"""Plain factory functions with keyword defaults (no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.base import Address, Attendee, RemoteEvent, RemoteMessage

_counter = iter(range(1, 10**9))


def addr(text: str) -> Address:
    """'Ana <ana@x>' or 'ana@x' -> Address."""
    if "<" in text:
        name, email = text.split("<", 1)
        return Address(email.rstrip(">").strip().lower(), name.strip() or None)
    return Address(text.strip().lower())


def message(
    sender: str | None = "ana@acme.example",
    to: tuple[str, ...] = ("joe@northwind.example",),
    *,
    cc: tuple[str, ...] = (),
    bcc: tuple[str, ...] = (),
    folder_role: Any = "inbox",
    headers: dict[str, str] | None = None,
    subject: str = "Proposal",
    message_id: str | None = "auto",
    date: datetime | None = datetime(2026, 3, 2, 9, 30, tzinfo=UTC),
    provider_date: datetime | None = None,
    content_type: str = "text/plain",
    calendar_method: str | None = None,
    source_id: str | None = None,
    body: bytes | None = None,
) -> RemoteMessage:
    n = next(_counter)
    return RemoteMessage(
        source_id=source_id or f"src-{n}",
        folder_role=folder_role,
        message_id=f"m{n}@mail.example" if message_id == "auto" else message_id,
        date=date,
        date_header=date.strftime("%a, %d %b %Y %H:%M:%S +0000") if date else "",
        provider_date=provider_date,
        subject=subject,
        sender=addr(sender) if sender else None,
        to=tuple(addr(a) for a in to),
        cc=tuple(addr(a) for a in cc),
        bcc=tuple(addr(a) for a in bcc),
        headers=headers or {},
        content_type=content_type,
        calendar_method=calendar_method,
        body=body,
    )


def attendee(text: str, response: str = "accepted", kind: str = "individual") -> Attendee:
    person = addr(text)
    return Attendee(person.email, person.name, response, kind)  # type: ignore[arg-type]


def event(
    *,
    uid: str = "evt-1",
    start: datetime = datetime(2026, 3, 2, 9, 0, tzinfo=UTC),
    minutes: int = 60,
    organizer: str | None = "ana@acme.example",
    attendees: tuple[Attendee, ...] = (),
    summary: str = "Demo",
    location: str = "",
    description: str = "",
    conference: tuple[str, ...] = (),
    status: str = "confirmed",
    all_day: bool = False,
    recurrence_id: datetime | None = None,
    created: datetime | None = datetime(2026, 2, 20, 12, 0, tzinfo=UTC),
    version: str = "1",
    resource: str = "cal/evt-1.ics",
) -> RemoteEvent:
    original = recurrence_id.isoformat() if recurrence_id else ""
    return RemoteEvent(
        source_id=f"{resource}#{uid}#{original}",
        uid=uid,
        recurrence_id=recurrence_id,
        start=start,
        end=start + timedelta(minutes=minutes),
        all_day=all_day,
        status=status,
        summary=summary,
        location=location,
        description=description,
        conference=conference,
        organizer=addr(organizer) if organizer else None,
        attendees=attendees,
        created=created,
        version=version,
    )
