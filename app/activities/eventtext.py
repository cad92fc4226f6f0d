"""Pure: what an event's own text says, read before anything about its people (semantics §5).
Whether its title names a call (the organization's pattern, refused when it could be slow or
match everything), whether a location or conference entry is a phone and which numbers it
holds, and its video-conference links.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from urllib.parse import unquote

import phonenumbers

# The words call, phone and dial, whole words only; matching ignores case.
DEFAULT_CALL_PATTERN = r"call|phone|dial"
MAX_CALL_PATTERN_LENGTH = 200
# Besides its phone numbers and tel: URIs, a location or conference entry that is a phone may
# hold this many letters of labels ("Dial-in", "PIN", "Passcode", "ext.", "Einwahl").
MAX_PHONE_LABEL_LETTERS = 20

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
