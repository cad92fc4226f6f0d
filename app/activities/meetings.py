"""Pure: what one calendar event means for the organization (semantics §5). No session, no clock.

`classify` decides whether an event is skipped, a call or a meeting; `event_activities` turns
every copy of ONE event (the same UID and original start in several users' calendars) into the
activities due for it and the external people to link. The decisions the spec leaves open are
written down in docs/semantics.md, "Meetings and calls". What the event's own text says (a
call title, a phone, a video link) is read by app/activities/eventtext.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from app.activities.eventtext import phone_field, title_is_call, video_links
from app.activities.inference import Directory
from app.contacts.identity import better_name
from connectors.base import Address, Attendee, RemoteEvent

EventKind = Literal["meeting", "call"]
DueType = Literal["meeting_scheduled", "meeting_held", "call"]

MAX_ATTENDEES = 50

# Kinds (CUTYPE) that are people. Rooms, resources and groups never count as people.
_PERSON_KINDS = frozenset({"individual", "unknown"})
# Calendars that are not people even when a provider lists them as individuals.
_NON_PERSON_DOMAINS = (
    "resource.calendar.google.com",
    "group.calendar.google.com",
    "group.v.calendar.google.com",
    "import.calendar.google.com",
)


@dataclass(frozen=True, slots=True)
class Classification:
    kind: EventKind | None  # None: skipped
    # skipped: "cancelled", "all_day", "oversized", "internal_only";
    # call: "phone" (a phone or tel: location or conference entry) or "title" (call pattern);
    # meeting: "video" (a video link) or "meeting"
    reason: str
    phones: tuple[str, ...] = ()  # E.164 numbers of the location and conference entries
    video_links: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class DueActivity:
    user_id: int
    type: DueType
    occurred_at: datetime
    subject: str


@dataclass(frozen=True, slots=True)
class EventOutcome:
    kind: EventKind | None  # None: skipped (or no copies)
    reason: str  # the classification's reason, or "no_copies"
    activities: tuple[DueActivity, ...] = ()
    contacts: tuple[Address, ...] = ()  # external people to link to `activities`
    phones: tuple[str, ...] = ()  # E.164 numbers of the event (for telephony matching)


# -- people -------------------------------------------------------------------------------------


def is_person_address(email: str) -> bool:
    domain = email.rsplit("@", 1)[-1].lower()
    return not any(domain == d or domain.endswith("." + d) for d in _NON_PERSON_DOMAINS)


def is_person(attendee: Attendee) -> bool:
    """Rooms, resources and groups (by CUTYPE, or by a provider's resource-calendar address)
    are not people."""
    return attendee.kind in _PERSON_KINDS and is_person_address(attendee.email)


def _attendee_count(event: RemoteEvent) -> int:
    return len({a.email.lower() for a in event.attendees})


def external_people(event: RemoteEvent, directory: Directory) -> tuple[Address, ...]:
    """The organizer and attendees who are people outside the organization, without repeats."""
    found: dict[str, str | None] = {}
    candidates: list[tuple[str, str | None]] = []
    if event.organizer is not None and is_person_address(event.organizer.email):
        candidates.append((event.organizer.email, event.organizer.name))
    candidates += [(a.email, a.name) for a in event.attendees if is_person(a)]
    for email, name in candidates:
        email = email.strip().lower()
        if email and directory.is_external(email):
            found[email] = better_name(found.get(email), name)
    return tuple(Address(email, name) for email, name in found.items())


# -- classification -----------------------------------------------------------------------------


def classify(
    event: RemoteEvent,
    directory: Directory,
    call_pattern: str | None,
    *,
    region: str | None = None,
) -> Classification:
    """Skip, call or meeting (semantics §5), for the event as a whole; whether one user
    declined is for `event_activities`."""
    if event.status.lower() == "cancelled":
        return Classification(None, "cancelled")
    if event.all_day:
        return Classification(None, "all_day")
    if not external_people(event, directory):
        return Classification(None, "internal_only")
    if _attendee_count(event) > MAX_ATTENDEES:
        return Classification(None, "oversized")
    links = video_links((event.location, event.description, *event.conference))
    phones: dict[str, None] = {}
    is_phone = False
    for field in (event.location, *event.conference):
        field_is_phone, numbers = phone_field(field, region)
        is_phone = is_phone or field_is_phone
        phones.update(dict.fromkeys(numbers))
    found = tuple(phones)
    if links:
        return Classification("meeting", "video", found, links)
    if is_phone:
        return Classification("call", "phone", found)
    if title_is_call(event.summary, call_pattern):
        return Classification("call", "title", found)
    return Classification("meeting", "meeting", found)


# -- one event, all its copies ------------------------------------------------------------------


def _organizer_user(event: RemoteEvent, directory: Directory) -> int | None:
    return directory.user_of(event.organizer.email) if event.organizer is not None else None


def _numeric_version(version: str) -> int:
    return int(version) if version.strip().isdigit() else -1


def choose_copy(
    copies: Sequence[tuple[int, RemoteEvent]], directory: Directory
) -> tuple[int, RemoteEvent]:
    """The copy that speaks for the event: the organizer's own copy; else, when the versions
    are all numbers (SEQUENCE), the highest; ties and opaque versions (ETags): the copy of
    the lowest user id, so the answer does not depend on the order of `copies`."""
    if not copies:
        raise ValueError("an event needs at least one copy")
    own = [c for c in copies if _organizer_user(c[1], directory) == c[0]]
    pool = own or list(copies)
    numeric = all(c[1].version.strip().isdigit() for c in pool)
    return min(pool, key=lambda c: (-_numeric_version(c[1].version) if numeric else 0, c[0]))


def _response_in(event: RemoteEvent, user_id: int, directory: Directory) -> str | None:
    """`user_id`'s answer as `event` records it: "organizer", a PARTSTAT, or None."""
    if _organizer_user(event, directory) == user_id:
        return "organizer"
    for attendee in event.attendees:
        if directory.user_of(attendee.email) == user_id:
            return attendee.response
    return None


def _takes_part(
    user_id: int,
    by_owner: dict[int, RemoteEvent],
    ordered: Sequence[RemoteEvent],
    directory: Directory,
) -> bool:
    own = by_owner.get(user_id)
    if own is not None and own.status.lower() == "cancelled":
        return False  # cancelled for them: they were removed from the event
    sources = ([own] if own is not None else []) + list(ordered)
    for event in sources:
        response = _response_in(event, user_id, directory)
        if response is not None:
            return response != "declined"
    return True  # on the calendar (a group or a delegate's invitation) and never declined


def event_activities(
    copies: Sequence[tuple[int, RemoteEvent]],
    directory: Directory,
    call_pattern: str | None,
    now: datetime,
    *,
    region: str | None = None,
) -> EventOutcome:
    """The activities ONE event is due (semantics §5) from every copy of it: (calendar owner's
    user id, that user's copy). `now` decides whether the event has ended."""
    if not copies:
        return EventOutcome(None, "no_copies")
    chosen_owner, chosen = choose_copy(copies, directory)
    classification = classify(chosen, directory, call_pattern, region=region)
    if classification.kind is None:
        return EventOutcome(None, classification.reason)

    by_owner: dict[int, RemoteEvent] = {}
    for owner, event in sorted(copies, key=lambda c: c[0]):
        if owner not in by_owner or (owner, event) == (chosen_owner, chosen):
            by_owner[owner] = event
    organizer = _organizer_user(chosen, directory)
    # Where a user's answer is looked up after their own copy: the organizer's, then the
    # chosen copy, then the others by owner.
    ordered: list[RemoteEvent] = []
    if organizer is not None and organizer in by_owner:
        ordered.append(by_owner[organizer])
    ordered += [chosen] + [e for _, e in sorted(by_owner.items()) if e is not chosen]

    participants: set[int] = set(by_owner)
    if organizer is not None:
        participants.add(organizer)
    for attendee in chosen.attendees:
        if (
            attendee.kind not in ("room", "resource")
            and (user := directory.user_of(attendee.email)) is not None
        ):
            participants.add(user)

    subject = chosen.summary
    due: list[DueActivity] = []
    if classification.kind == "meeting" and organizer is not None:
        created = _created(chosen if organizer == chosen_owner else None, copies)
        if created is not None:
            due.append(DueActivity(organizer, "meeting_scheduled", created, subject))
    if chosen.end <= now:
        kind: DueType = "call" if classification.kind == "call" else "meeting_held"
        for user in sorted(participants):
            if user == organizer or _takes_part(user, by_owner, ordered, directory):
                due.append(DueActivity(user, kind, chosen.start, subject))
    if not due:
        return EventOutcome(
            classification.kind, classification.reason, phones=classification.phones
        )
    return EventOutcome(
        classification.kind,
        classification.reason,
        tuple(due),
        _contacts(chosen, copies, directory),
        classification.phones,
    )


def _created(
    organizer_copy: RemoteEvent | None, copies: Sequence[tuple[int, RemoteEvent]]
) -> datetime | None:
    """When the meeting was scheduled: the organizer's copy's CREATED, else the earliest one."""
    if organizer_copy is not None and organizer_copy.created is not None:
        return organizer_copy.created
    known = [e.created for _, e in copies if e.created is not None]
    return min(known) if known else None


def _contacts(
    chosen: RemoteEvent, copies: Sequence[tuple[int, RemoteEvent]], directory: Directory
) -> tuple[Address, ...]:
    """The chosen copy's external people, each with the best name any copy gives them."""
    names = {a.email: a.name for a in external_people(chosen, directory)}
    for _, event in copies:
        for person in external_people(event, directory):
            if person.email in names:
                names[person.email] = better_name(names[person.email], person.name)
    return tuple(Address(email, names[email]) for email in sorted(names))
