"""Pure: what one calendar event means for the organization (semantics §5). No session, no clock.

`classify` decides whether an event is skipped, a call or a meeting; `event_activities` turns
every copy of ONE event (the same UID and original start in several users' calendars) into the
activities due for it and the external people to link. The decisions the spec leaves open are
written down in docs/semantics.md, "Meetings and calls".
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Literal
from urllib.parse import unquote

import phonenumbers

from app.activities.inference import Directory
from app.contacts.identity import better_name
from connectors.base import Address, Attendee, RemoteEvent

EventKind = Literal["meeting", "call"]
DueType = Literal["meeting_scheduled", "meeting_held", "call"]

# The words call, phone and dial, whole words only; matching ignores case.
DEFAULT_CALL_PATTERN = r"call|phone|dial"
MAX_CALL_PATTERN_LENGTH = 200
MAX_ATTENDEES = 50
# Besides its phone numbers and tel: URIs, a location or conference entry that is a phone may
# hold this many letters of labels ("Dial-in", "PIN", "Passcode", "ext.", "Einwahl").
MAX_PHONE_LABEL_LETTERS = 20

# Kinds (CUTYPE) that are people. Rooms, resources and groups never count as people.
_PERSON_KINDS = frozenset({"individual", "unknown"})
# Calendars that are not people even when a provider lists them as individuals.
_NON_PERSON_DOMAINS = (
    "resource.calendar.google.com",
    "group.calendar.google.com",
    "group.v.calendar.google.com",
    "import.calendar.google.com",
)

_VIDEO_HOSTS = (
    r"meet\.google\.com",
    r"hangouts\.google\.com",
    r"zoom\.us",
    r"zoom\.com",
    r"zoomgov\.com",
    r"teams\.microsoft\.com",
    r"teams\.microsoft\.us",
    r"teams\.live\.com",
    r"webex\.com",
    r"gotomeeting\.com",
    r"gotomeet\.me",
    r"meet\.goto\.com",
    r"whereby\.com",
    r"appear\.in",
    r"meet\.jit\.si",
    r"8x8\.vc",
    r"bluejeans\.com",
    r"chime\.aws",
    r"join\.skype\.com",
    r"meet\.lync\.com",
    r"meeting\.zoho\.(?:com|eu|in|com\.au)",
    r"meetings\.ringcentral\.com",
    r"v\.ringcentral\.com",
    r"meet\.dialpad\.com",
    r"lifesizecloud\.com",
    r"livestorm\.co",
)
# A host (any subdomain, optional scheme) and the rest of its URL; never part of an address.
_VIDEO_URL = re.compile(
    r"(?<![\w@.-])(?:https?://)?(?:[a-z0-9-]+\.)*(?:"
    + "|".join(_VIDEO_HOSTS)
    + r")(?![\w-]|\.\w)(?:[/?#:][^\s<>\"'()\[\]]*)?",
    re.IGNORECASE,
)
_TEL_URI = re.compile(r"\btel:([^\s<>\"']*)", re.IGNORECASE)
_TEL_NUMBER_END = re.compile(r"[;,]")  # parameters (;ext=, ;pin=) or pauses (,,123#)
_BRACE_QUANTIFIER = re.compile(r"\{(\d*)(,?)(\d*)\}")


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


# -- call pattern -------------------------------------------------------------------------------


def _quantifier_at(pattern: str, i: int) -> tuple[int, bool] | None:
    """The length of a quantifier at `i` and whether it can repeat (max > 1), or None."""
    if i >= len(pattern):
        return None
    if pattern[i] in "*+":
        return 1, True
    if pattern[i] == "?":
        return 1, False
    match = _BRACE_QUANTIFIER.match(pattern, i)
    if match is None or not (match.group(1) or match.group(3)):
        return None
    low, comma, high = match.groups()
    repeats = (comma and not high) or int(high or low) > 1
    return match.end() - i, bool(repeats)


def _has_nested_quantifier(pattern: str) -> bool:
    """Cheap check for the classic catastrophic shape: a repeated group that itself holds a
    repetition, such as `(a+)+`, `(\\w*\\s?)*` or `(x{2,})*`."""
    stack: list[bool] = []  # per open group: does it hold a repetition?
    i, n = 0, len(pattern)
    while i < n:
        char = pattern[i]
        inner_repeats = False
        if char == "\\":
            i += 2
        elif char == "[":  # a class: skip to its closing bracket
            i += 1
            if i < n and pattern[i] == "^":
                i += 1
            if i < n and pattern[i] == "]":
                i += 1
            while i < n and pattern[i] != "]":
                i += 2 if pattern[i] == "\\" else 1
            i += 1
        elif char == "(":
            stack.append(False)
            i += 1
            if i < n and pattern[i] == "?":  # (?:, (?i), (?P<name>…: not a quantifier
                i += 1
            continue
        elif char == ")":
            inner_repeats = stack.pop() if stack else False
            i += 1
        else:
            i += 1
        quantifier = _quantifier_at(pattern, i)
        if quantifier is None:
            if inner_repeats and stack:
                stack[-1] = True
            continue
        length, repeats = quantifier
        if repeats and inner_repeats:
            return True
        if stack and (repeats or inner_repeats):
            stack[-1] = True
        i += length
        if i < n and pattern[i] in "?+":  # lazy or possessive
            i += 1
    return False


def _wrap(pattern: str) -> str:
    # Word boundaries that also hold when the pattern starts or ends with a non-word character.
    return rf"(?<!\w)(?:{pattern})(?!\w)"


def call_pattern_error(pattern: str) -> str | None:
    """Why an organization's call pattern cannot be used, or None when it is fine."""
    if not pattern.strip():
        return "the pattern is empty"
    if len(pattern) > MAX_CALL_PATTERN_LENGTH:
        return f"the pattern is longer than {MAX_CALL_PATTERN_LENGTH} characters"
    try:
        compiled = re.compile(_wrap(pattern), re.IGNORECASE)
    except re.error as error:
        return f"not a valid regular expression: {error}"
    except (RecursionError, OverflowError):
        return "the pattern is too complex"
    if _has_nested_quantifier(pattern):
        return "nested repetition such as (a+)+ can take exponential time"
    if compiled.search("") is not None:
        return "the pattern matches an empty title"
    return None


@lru_cache(maxsize=64)
def compile_call_pattern(pattern: str | None) -> re.Pattern[str]:
    """The organization's pattern, whole words, ignoring case; the default when it is None
    or unusable (a stored pattern is validated on write: syncing never fails on it)."""
    if pattern is None or call_pattern_error(pattern) is not None:
        pattern = DEFAULT_CALL_PATTERN
    return re.compile(_wrap(pattern), re.IGNORECASE)


def title_is_call(title: str, call_pattern: str | None = None) -> bool:
    return compile_call_pattern(call_pattern).search(title) is not None


# -- video links and phones ---------------------------------------------------------------------


def video_links(texts: Iterable[str]) -> tuple[str, ...]:
    """Every video-conference URL in `texts` (percent-decoded first, so links wrapped by
    Outlook Safe Links or Google redirects are found too), in order, without repeats."""
    found: dict[str, None] = {}
    for text in texts:
        for match in _VIDEO_URL.finditer(unquote(text)):
            found.setdefault(match.group(0), None)
    return tuple(found)


def _e164(number: phonenumbers.PhoneNumber) -> str:
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _tel_number(value: str, region: str | None) -> str | None:
    raw = _TEL_NUMBER_END.split(value, 1)[0]
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    return _e164(number) if phonenumbers.is_possible_number(number) else None


def phone_field(text: str, region: str | None = None) -> tuple[bool, tuple[str, ...]]:
    """Whether a location or conference entry IS a phone (a tel: URI, or valid phone numbers
    with at most a few letters of labels around them: "Dial-in: +1 415-555-0100,,123456#"),
    and the E.164 numbers in it. National formats need `region` (ISO 3166 alpha-2)."""
    numbers: dict[str, None] = {}
    has_tel = False
    rest = text
    for match in _TEL_URI.finditer(text):
        has_tel = True
        if (e164 := _tel_number(match.group(1), region)) is not None:
            numbers.setdefault(e164, None)
    rest = _TEL_URI.sub(" ", rest)
    spans: list[tuple[int, int]] = []
    matcher = phonenumbers.PhoneNumberMatcher(
        rest, region or "ZZ", leniency=phonenumbers.Leniency.VALID
    )
    for found in matcher:
        numbers.setdefault(_e164(found.number), None)
        spans.append((found.start, found.end))
    for start, end in reversed(spans):
        rest = rest[:start] + " " + rest[end:]
    letters = sum(1 for char in rest if char.isalpha())
    is_phone = (has_tel or bool(spans)) and letters <= MAX_PHONE_LABEL_LETTERS
    return is_phone, tuple(numbers) if is_phone else ()


def phone_numbers(text: str, region: str | None = None) -> tuple[str, ...]:
    """The E.164 numbers of a field that is a phone (see `phone_field`); () otherwise."""
    return phone_field(text, region)[1]


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
