"""Property helpers shared by the calendar readers: plain text and conference entry points."""

from __future__ import annotations

from typing import Any

# Where providers put join links and dial-in numbers besides RFC 7986 CONFERENCE.
_CONFERENCE_PROPERTIES = (
    "CONFERENCE",
    "X-GOOGLE-CONFERENCE",
    "X-MICROSOFT-SKYPETEAMSMEETINGURL",
    "X-MICROSOFT-ONLINEMEETINGCONFLINK",
    "X-MICROSOFT-ONLINEMEETINGEXTERNALLINK",
    "X-MS-OLK-CONFERENCINGURL",
)
# Other X- properties whose name says "meeting link" (Zoom, Webex, Teams plug-ins differ).
_CONFERENCE_HINTS = ("CONFERENCE", "MEETINGURL", "ONLINEMEETING", "JOINURL", "ZOOM", "WEBEX")
_ENTRY_SCHEMES = ("http://", "https://", "tel:", "sip:", "sips:", "conf:")


def text_of(value: Any) -> str:
    """A property as plain text, NUL characters removed ("" when missing)."""
    if isinstance(value, list):  # a repeated property: the first one wins
        value = value[0] if value else None
    if value is None:
        return ""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return str(value).replace("\x00", "")


def _is_entry(value: str) -> bool:
    lowered = value.lower()
    return lowered.startswith(_ENTRY_SCHEMES) or (
        lowered.startswith("+") and sum(c.isdigit() for c in value) >= 6
    )


def conference_entries(component: Any) -> tuple[str, ...]:
    """Join URLs and phone entry points from the conference properties, in order, deduplicated.

    Only collected here; whether the event was a call or a meeting is decided elsewhere.
    """
    names = list(_CONFERENCE_PROPERTIES)
    names += [
        str(key).upper()
        for key in component
        if str(key).upper().startswith("X-")
        and any(hint in str(key).upper() for hint in _CONFERENCE_HINTS)
        and str(key).upper() not in names
    ]
    found: list[str] = []
    for name in names:
        raw = component.get(name)
        for item in raw if isinstance(raw, list) else ([] if raw is None else [raw]):
            for part in text_of(item).split():  # X- values sometimes hold several links
                entry = part.strip().strip("<>\"',;")
                if entry and _is_entry(entry) and entry not in found:
                    found.append(entry)
    return tuple(found)
