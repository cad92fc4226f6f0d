"""One iCalendar resource -> one CalendarObject: parse, expand recurrences, map each occurrence.

Pure functions, no I/O. `icalendar` parses; `recurring_ical_events` expands RRULE/RDATE/EXDATE
and RECURRENCE-ID overrides over the sync window (moved occurrences at their new time,
EXDATE'd ones absent, cancelled overrides kept with status "cancelled"), with the VTIMEZONEs
of the file, so DST is right. Every datetime leaves here aware and in UTC. Only VEVENTs are
read: VTODO, VJOURNAL and VFREEBUSY are ignored.

A broken resource raises `UnreadableCalendar`, the one error callers turn into a `Failure`.
When only some series (UIDs) of a resource are broken, `read_calendar_parts` keeps the good
ones and returns the reasons for the rest, so one bad VEVENT does not hide a whole file.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, cast

import icalendar
import recurring_ical_events

from connectors.base import Address, Attendee, AttendeeKind, CalendarObject, RemoteEvent, Response
from connectors.calendar.props import conference_entries, text_of

_RESPONSES: frozenset[str] = frozenset(
    {"accepted", "declined", "tentative", "needs-action", "delegated"}
)
_KINDS: frozenset[str] = frozenset({"individual", "group", "resource", "room", "unknown"})


class UnreadableCalendar(Exception):
    """The resource (or every series in it) cannot be parsed or expanded; str() is the reason."""


def to_utc(value: date | datetime) -> datetime:
    """DATE -> midnight UTC; floating (naive) time is taken as UTC; aware -> UTC."""
    if not isinstance(value, datetime):
        return datetime.combine(value, time(), UTC)
    if value.tzinfo is None or value.utcoffset() is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _value(component: icalendar.cal.Component, name: str) -> Any:
    prop = component.get(name)
    if isinstance(prop, list):  # a repeated property: the first one wins
        prop = prop[0] if prop else None
    return getattr(prop, "dt", prop)


def _address(raw: object) -> tuple[str, str | None]:
    email = str(raw).strip()
    if email.lower().startswith("mailto:"):
        email = email[7:]
    params = getattr(raw, "params", {})
    name = str(params.get("CN", "")).strip().strip('"').replace("\x00", "") or None
    return email.strip().lower().replace("\x00", ""), name


def _organizer(component: icalendar.cal.Component) -> Address | None:
    raw = component.get("ORGANIZER")
    if isinstance(raw, list):
        raw = raw[0] if raw else None
    if raw is None:
        return None
    email, name = _address(raw)
    return Address(email, name) if email else None


def _attendees(component: icalendar.cal.Component) -> tuple[Attendee, ...]:
    raw = component.get("ATTENDEE")
    values: Sequence[object] = raw if isinstance(raw, list) else ([] if raw is None else [raw])
    seen: dict[str, Attendee] = {}
    for item in values:
        email, name = _address(item)
        if not email or email in seen:
            continue
        params = getattr(item, "params", {})
        partstat = str(params.get("PARTSTAT", "needs-action")).lower()
        cutype = str(params.get("CUTYPE", "individual")).lower()
        response = cast(Response, partstat if partstat in _RESPONSES else "needs-action")
        kind = cast(AttendeeKind, cutype if cutype in _KINDS else "unknown")
        seen[email] = Attendee(email, name, response, kind)
    return tuple(seen.values())


def _span(occurrence: icalendar.cal.Component) -> tuple[datetime, datetime, bool]:
    start_raw = _value(occurrence, "DTSTART")
    if not isinstance(start_raw, date):
        raise ValueError("no usable DTSTART")
    all_day = not isinstance(start_raw, datetime)
    start = to_utc(start_raw)
    end_raw = _value(occurrence, "DTEND")
    duration = _value(occurrence, "DURATION")
    if isinstance(end_raw, date):
        end = to_utc(end_raw)
    elif isinstance(duration, timedelta):
        end = start + duration
    else:
        end = start + timedelta(days=1) if all_day else start
    return start, max(start, end), all_day


def _version(component: icalendar.cal.Component, version: str) -> str:
    sequence = _value(component, "SEQUENCE")
    modified = _value(component, "LAST-MODIFIED")
    stamp = to_utc(modified).isoformat() if isinstance(modified, date) else ""
    return f"{version}:{sequence if sequence is not None else ''}:{stamp}"


def _uid(component: icalendar.cal.Component) -> str:
    uid = text_of(component.get("UID"))
    if uid:
        return uid
    # no UID (broken exports): a hash of the content keeps re-reads of the same data stable
    return "nouid-" + hashlib.sha256(component.to_ical()).hexdigest()[:32]


def _event(
    occurrence: icalendar.cal.Component,
    *,
    resource: str,
    recurring: bool,
    version: str,
    cancel: bool,
) -> RemoteEvent:
    uid = _uid(occurrence)
    start, end, all_day = _span(occurrence)
    rid_raw = _value(occurrence, "RECURRENCE-ID")
    recurrence_id = to_utc(rid_raw) if recurring and isinstance(rid_raw, date) else None
    if recurring and recurrence_id is None:
        recurrence_id = start
    created_raw = _value(occurrence, "CREATED")
    if not isinstance(created_raw, date):
        created_raw = _value(occurrence, "DTSTAMP")
    status = text_of(occurrence.get("STATUS")).lower() or "confirmed"
    return RemoteEvent(
        source_id=f"{resource}#{uid}#{recurrence_id.isoformat() if recurrence_id else ''}",
        uid=uid,
        recurrence_id=recurrence_id,
        start=start,
        end=end,
        all_day=all_day,
        status="cancelled" if cancel else status,
        summary=text_of(occurrence.get("SUMMARY")),
        location=text_of(occurrence.get("LOCATION")),
        description=text_of(occurrence.get("DESCRIPTION")),
        conference=conference_entries(occurrence),
        organizer=_organizer(occurrence),
        attendees=_attendees(occurrence),
        created=to_utc(created_raw) if isinstance(created_raw, date) else None,
        version=_version(occurrence, version),
    )


def _parse(data: bytes) -> icalendar.Calendar:
    try:
        calendars = icalendar.Calendar.from_ical(data, multiple=True)
    except Exception as error:  # icalendar raises ValueError, KeyError, IndexError…
        raise UnreadableCalendar(f"not iCalendar: {_short(error)}") from error
    if not calendars:
        raise UnreadableCalendar("no VCALENDAR in the resource")
    first = calendars[0]
    for extra in calendars[1:]:  # several VCALENDARs in one file: read them as one
        for sub in extra.subcomponents:
            first.add_component(sub)
    return first


def _short(error: BaseException) -> str:
    text = f"{type(error).__name__}: {error}".replace("\x00", "")
    return text if len(text) <= 300 else text[:297] + "..."


def _series(calendar: icalendar.Calendar) -> dict[str, list[icalendar.cal.Component]]:
    groups: dict[str, list[icalendar.cal.Component]] = {}
    for component in calendar.walk("VEVENT"):
        groups.setdefault(_uid(component), []).append(component)
    return groups


def _expand(
    calendar: icalendar.Calendar, window: tuple[datetime, datetime]
) -> list[icalendar.cal.Component]:
    query = recurring_ical_events.of(calendar, components=["VEVENT"])
    return list(query.between(window[0], window[1]))


def _only(
    calendar: icalendar.Calendar, members: Iterable[icalendar.cal.Component]
) -> icalendar.Calendar:
    """A calendar holding one series and the file's time zones, to expand it on its own."""
    single = icalendar.Calendar()
    for name in ("VERSION", "PRODID", "X-WR-TIMEZONE"):  # X-WR-TIMEZONE: Google's floating times
        if calendar.get(name) is not None:
            single[name] = calendar[name]
    for tz in calendar.walk("VTIMEZONE"):
        single.add_component(tz)
    for member in members:
        single.add_component(member)
    return single


def read_calendar_parts(
    data: bytes, *, resource: str, window: tuple[datetime, datetime], version: str
) -> tuple[CalendarObject, tuple[str, ...]]:
    """The resource with every readable series, and one reason per series that was dropped.

    Raises UnreadableCalendar when the resource cannot be parsed at all, or when it holds
    events and none of them can be read.
    """
    with warnings.catch_warnings():  # icalendar warns about guessed TZIDs: not our business
        warnings.simplefilter("ignore")
        return _read(data, resource=resource, window=window, version=version)


def _read(
    data: bytes, *, resource: str, window: tuple[datetime, datetime], version: str
) -> tuple[CalendarObject, tuple[str, ...]]:
    calendar = _parse(data)
    method = text_of(calendar.get("METHOD")).upper()
    series = _series(calendar)
    reasons: list[str] = []
    # iTIP allows a VEVENT without DTSTART (a reply, a counter): nothing to place in time
    undated = {
        uid for uid, members in series.items() if any(m.get("DTSTART") is None for m in members)
    }
    if undated:
        reasons += [f"event {uid!r}: no DTSTART" for uid in sorted(undated)]
        calendar.subcomponents = [
            c for c in calendar.subcomponents if c.name != "VEVENT" or _uid(c) not in undated
        ]
    recurring = {
        uid
        for uid, members in series.items()
        if any(m.get(k) is not None for m in members for k in ("RRULE", "RDATE", "RECURRENCE-ID"))
    }
    window = (to_utc(window[0]), to_utc(window[1]))
    try:
        groups = [_expand(calendar, window)]
    except Exception:  # one bad series breaks the whole query: expand them one by one
        groups = []
        for uid, members in series.items():
            if uid in undated:
                continue
            try:
                groups.append(_expand(_only(calendar, members), window))
            except Exception as error:
                reasons.append(f"event {uid!r}: cannot expand: {_short(error)}")
    events: dict[str, RemoteEvent] = {}
    broken: set[str] = set()
    for occurrences in groups:
        for occurrence in occurrences:
            uid = _uid(occurrence)
            try:
                event = _event(
                    occurrence,
                    resource=resource,
                    recurring=uid in recurring,
                    version=version,
                    cancel=method == "CANCEL",
                )
            except Exception as error:
                if uid not in broken:
                    broken.add(uid)
                    reasons.append(f"event {uid!r}: {_short(error)}")
                continue
            events.setdefault(event.source_id, event)  # duplicate UIDs: the first one wins
    kept = tuple(e for e in events.values() if e.uid not in broken)
    if series and reasons and len(reasons) >= len(series):
        raise UnreadableCalendar("; ".join(reasons))
    ordered = tuple(sorted(kept, key=lambda e: (e.start, e.source_id)))
    return CalendarObject(resource=resource, events=ordered, window=window), tuple(reasons)


def read_calendar(
    data: bytes, *, resource: str, window: tuple[datetime, datetime], version: str
) -> CalendarObject:
    """The resource's event occurrences inside `window`; raises UnreadableCalendar if it is
    unreadable or any series in it is (use `read_calendar_parts` to keep the good series)."""
    calendar, reasons = read_calendar_parts(data, resource=resource, window=window, version=version)
    if reasons:
        raise UnreadableCalendar("; ".join(reasons))
    return calendar
