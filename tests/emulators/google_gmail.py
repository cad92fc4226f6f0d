"""The Gmail API of the Google emulator (tests/emulators/google.py): requests, MIME trees,
partial responses.

What it answers, and the documentation it follows:

- messages.get `format=full` returns the MIME tree as Gmail's MessagePart: partId, mimeType,
  filename, headers, body {size, data (base64url) | attachmentId}, parts
  (https://developers.google.com/workspace/gmail/api/reference/rest/v1/users.messages#MessagePart).
  `format=metadata` returns the message's headers only, restricted to `metadataHeaders`.
- `fields` on any Gmail method: a partial response in Google's field-selection syntax (`a,b`,
  `a/b`, `a(b,c)`, `*`): only the fields the mask names are sent, so a mask that leaves out
  `body` leaves out the body data
  (https://developers.google.com/workspace/gmail/api/guides/performance#partial-response).
- A token whose grant includes `gmail.metadata` is held to that scope's limits even when a
  broader Gmail scope is granted beside it: `q` is refused, and so are `format=full`/`raw`
  (https://developers.google.com/workspace/gmail/api/reference/rest/v1/Format; Google's issue
  115621456 via googleapis/google-api-python-client#582, bytechefhq/bytechef#5394).
- messages.list `q`: the emulator understands the date terms `after:<epoch seconds>` and
  `before:<epoch seconds>` only (anything else: 400), compared with internalDate; dates in
  seconds are exact, where `after:2014/01/01` would be midnight Pacific time
  (https://developers.google.com/workspace/gmail/api/guides/filtering). Whether Gmail's
  bounds include their second is not documented: here both exclude it, the stricter reading.
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import json
import time
from collections.abc import Mapping
from email.message import Message as MimeMessage
from typing import TYPE_CHECKING, Any

from tests.emulators.google_common import (
    GMAIL_METADATA,
    GMAIL_READONLY,
    GMAIL_SETTINGS,
    Grant,
    Mailbox,
    Message,
    google_error,
)

if TYPE_CHECKING:
    from tests.emulators.google import GoogleEmulator

# scopes that allow format=full when gmail.metadata is not in the grant
FULL_SCOPES = (
    GMAIL_READONLY,
    "https://www.googleapis.com/auth/gmail.modify",
    "https://mail.google.com/",
)

Mask = dict[str, "Mask | None"]  # field name -> sub-mask (None: the whole value)


# -- MIME trees ---------------------------------------------------------------------------------


def _headers(part: MimeMessage) -> list[dict[str, str]]:
    return [{"name": name, "value": str(value)} for name, value in part.items()]


def _tree(part: MimeMessage, part_id: str) -> dict[str, Any]:
    node: dict[str, Any] = {
        "partId": part_id,
        "mimeType": part.get_content_type(),
        "filename": part.get_filename() or "",
        "headers": _headers(part),
    }
    if part.is_multipart() and part.get_content_type() != "message/rfc822":
        node["body"] = {"size": 0}  # "may be empty for container MIME message parts"
        children = part.get_payload()
        assert isinstance(children, list)
        prefix = f"{part_id}." if part_id else ""
        node["parts"] = [_tree(child, f"{prefix}{n}") for n, child in enumerate(children)]
        return node
    data = part.get_payload(decode=True)
    if not isinstance(data, bytes):
        data = str(part.get_payload()).encode()
    if node["filename"] or part.get_content_type() == "message/rfc822":
        # attachments are fetched separately (messages.attachments.get)
        node["body"] = {"attachmentId": f"att-{part_id or 'root'}", "size": len(data)}
    else:
        node["body"] = {"size": len(data), "data": base64.urlsafe_b64encode(data).decode()}
    return node


def mime_payload(raw: bytes) -> tuple[list[tuple[str, str]], dict[str, Any]]:
    """(headers, MessagePart tree) of a whole RFC 5322 message."""
    parsed = email.parser.BytesParser(policy=email.policy.compat32).parsebytes(raw)
    return [(k, str(v)) for k, v in parsed.items()], _tree(parsed, "")


def header_payload(headers: list[tuple[str, str]]) -> dict[str, Any]:
    """The MessagePart of a message known by its headers only (an empty single part)."""
    kind = "text/plain"
    for name, value in headers:
        if name.lower() == "content-type":
            candidate = value.split(";", 1)[0].strip().lower()
            kind = candidate if candidate.count("/") == 1 else kind
    return {
        "partId": "",
        "mimeType": kind,
        "filename": "",
        "headers": [{"name": n, "value": v} for n, v in headers],
        "body": {"size": 0},
    }


def body_bytes(value: Any) -> int:
    """Bytes of body data (base64url text) anywhere in an answer."""
    if isinstance(value, list):
        return sum(body_bytes(v) for v in value)
    if not isinstance(value, dict):
        return 0
    body = value.get("body")
    own = len(body["data"]) if isinstance(body, dict) and "data" in body else 0
    return own + sum(body_bytes(v) for k, v in value.items() if k != "body")


# -- partial responses (fields) -----------------------------------------------------------------


def _union(into: Mask, other: Mask) -> None:
    for name, sub in other.items():
        if name in into and into[name] is None:
            continue
        if sub is None or name not in into:
            into[name] = sub if sub is None else dict(sub)
        else:
            current = into[name]
            assert current is not None
            _union(current, sub)


def _selection(text: str, i: int) -> tuple[Mask, int]:
    mask: Mask = {}
    while True:
        path: list[str] = []
        while True:
            j = i
            while j < len(text) and text[j] not in ",/()":
                j += 1
            name = text[i:j].strip()
            if not name:
                raise ValueError(f"Invalid field selection at {i}")
            path.append(name)
            i = j
            if i < len(text) and text[i] == "/":
                i += 1
                continue
            break
        sub: Mask | None = None
        if i < len(text) and text[i] == "(":
            sub, i = _selection(text, i + 1)
            if i >= len(text) or text[i] != ")":
                raise ValueError("Invalid field selection: unbalanced parentheses")
            i += 1
        leaf: Mask = {path[-1]: sub}
        for name in reversed(path[:-1]):
            leaf = {name: leaf}
        _union(mask, leaf)
        if i < len(text) and text[i] == ",":
            i += 1
            continue
        return mask, i


def parse_mask(text: str) -> Mask:
    mask, end = _selection(text, 0)
    if end != len(text):
        raise ValueError(f"Invalid field selection at {end}")
    return mask


def select(value: Any, mask: Mask | None) -> Any:
    """`value` as a partial response: a list applies the mask to each item."""
    if mask is None:
        return value
    if isinstance(value, list):
        return [select(item, mask) for item in value]
    if not isinstance(value, dict):
        return value
    out: dict[str, Any] = {}
    for name, sub in mask.items():
        if name == "*":
            for key, item in value.items():
                out[key] = select(item, sub)
        elif name in value:
            out[name] = select(value[name], sub)
    return out


# -- the API ------------------------------------------------------------------------------------


def metadata_only(grant: Grant) -> bool:
    return GMAIL_METADATA in grant.scopes or not any(s in grant.scopes for s in FULL_SCOPES)


def _message(message: Message, form: str, wanted: set[str]) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "id": message.id,
        "threadId": message.thread_id,
        "labelIds": sorted(message.labels),
        "snippet": "",
        "historyId": str(message.history_id),
        "internalDate": str(message.internal_date),
        "sizeEstimate": 1024,
    }
    if form == "minimal":
        return answer
    if form == "metadata":
        answer["payload"] = {
            "mimeType": message.payload["mimeType"],
            "headers": [
                {"name": n, "value": v}
                for n, v in message.headers
                if not wanted or n.lower() in wanted
            ],
        }
        return answer
    answer["payload"] = message.payload
    return answer


def gmail_api(
    emulator: GoogleEmulator,
    method: str,
    parts: list[str],
    one: Mapping[str, str],
    query: Mapping[str, list[str]],
    grant: Grant,
    body: bytes,
) -> Any:
    user = grant.email
    if parts and parts[0] not in ("me", user):
        raise google_error(403, "Delegation denied", "forbidden")
    mask: Mask | None = None
    if one.get("fields"):
        try:
            mask = parse_mask(one["fields"])
        except ValueError as error:
            raise google_error(400, str(error), "invalidParameter") from None
    answer = _gmail(emulator, method, parts[1:], one, query, grant, body)
    answer = select(answer, mask)
    if isinstance(answer, dict) and "payload" in answer:
        sent = body_bytes(answer["payload"])
        with emulator.lock:
            emulator.stats.body_bytes += sent
    return answer


def _gmail(
    emulator: GoogleEmulator,
    method: str,
    rest: list[str],
    one: Mapping[str, str],
    query: Mapping[str, list[str]],
    grant: Grant,
    body: bytes,
) -> Any:
    user = grant.email
    restricted = metadata_only(grant)

    def charge(name: str) -> None:
        emulator.charge("gmail", user, name)

    with emulator.lock:
        box = emulator.account(user)
    if rest == ["profile"]:
        charge("getProfile")
        with emulator.lock:
            return {
                "emailAddress": box.email,
                "messagesTotal": len(box.messages),
                "threadsTotal": len({m.thread_id for m in box.messages.values()}),
                "historyId": str(box.history_id),
            }
    if rest == ["messages"]:
        charge("messages.list")
        if "q" in one and restricted:
            raise google_error(403, "Metadata scope does not support 'q' parameter", "forbidden")
        low, high = _dates(one.get("q", ""))
        size = min(int(one.get("maxResults", 100)), 500)
        spam = one.get("includeSpamTrash", "false") == "true"
        after: tuple[int, str] | None = None
        if one.get("pageToken"):  # the position after the last listed: keyset paging
            stamp, _, last = one["pageToken"].partition(":")
            after = (int(stamp), last)
        with emulator.lock:
            listed = sorted(
                (
                    m
                    for m in box.messages.values()
                    if (spam or not m.labels & {"SPAM", "TRASH"})
                    and (after is None or (m.internal_date, m.id) < after)
                    and low < m.internal_date < high
                ),
                key=lambda m: (m.internal_date, m.id),
                reverse=True,
            )
        page = listed[:size]
        answer: dict[str, Any] = {"resultSizeEstimate": len(listed)}
        if page:
            answer["messages"] = [{"id": m.id, "threadId": m.thread_id} for m in page]
        if len(listed) > size:
            answer["nextPageToken"] = f"{page[-1].internal_date}:{page[-1].id}"
        return answer
    if len(rest) == 2 and rest[0] == "messages":
        charge("messages.get")
        with emulator.lock:
            message = box.messages.get(rest[1])
        if message is None:
            raise google_error(404, "Requested entity was not found.", "notFound")
        form = one.get("format", "full")
        if form in ("full", "raw") and restricted:
            raise google_error(
                403, f"Metadata scope doesn't allow format {form.upper()}", "forbidden"
            )
        if form == "raw":
            raise google_error(400, "the emulator does not serve format=raw", "badRequest")
        wanted = {h.lower() for h in query.get("metadataHeaders", [])}
        return _message(message, form, wanted)
    if rest == ["history"]:
        charge("history.list")
        return _history(emulator, box, one, query)
    if rest == ["settings", "sendAs"]:
        charge("settings.sendAs.list")
        if GMAIL_SETTINGS not in grant.scopes:
            raise google_error(
                403,
                "Request had insufficient authentication scopes.",
                "insufficientPermissions",
                "PERMISSION_DENIED",
            )
        return {
            "sendAs": [
                {"sendAsEmail": box.email, "isPrimary": True, "isDefault": True},
                *({"sendAsEmail": a, "verificationStatus": "accepted"} for a in box.aliases),
            ]
        }
    if rest == ["watch"] and method == "POST":
        charge("watch")
        request = json.loads(body or b"{}")
        if not str(request.get("topicName", "")).startswith("projects/"):
            raise google_error(400, "Invalid topicName", "invalidArgument")
        expiration = int((time.time() + 7 * 86400) * 1000)
        with emulator.lock:
            box.watches.append({**request, "expiration": expiration})
        return {"historyId": str(box.history_id), "expiration": str(expiration)}
    if rest == ["stop"] and method == "POST":
        charge("stop")
        return None
    raise google_error(404, "Not Found", "notFound")


def _dates(query: str) -> tuple[float, float]:
    """The internalDate bounds (ms, both excluded) of a `q` made of after:/before: terms."""
    low, high = float("-inf"), float("inf")
    for term in query.split():
        name, _, value = term.partition(":")
        if name not in ("after", "before") or not value.isdigit():
            raise google_error(400, f"the emulator does not understand q term {term!r}", "invalid")
        if name == "after":
            low = max(low, int(value) * 1000 + 999)  # later than any moment of that second
        else:
            high = min(high, int(value) * 1000)
    return low, high


def _history(
    emulator: GoogleEmulator, box: Mailbox, one: Mapping[str, str], query: Mapping[str, list[str]]
) -> dict[str, Any]:
    start = int(one.get("startHistoryId") or 0)
    with emulator.lock:
        if start < box.history_floor or start > box.history_id:
            raise google_error(404, "Requested entity was not found.", "notFound")
        types = set(query.get("historyTypes", []))
        keys = {
            "messageAdded": "messagesAdded",
            "messageDeleted": "messagesDeleted",
            "labelAdded": "labelsAdded",
            "labelRemoved": "labelsRemoved",
        }
        wanted_keys = {keys[t] for t in types} if types else set(keys.values())
        records = []
        for record in box.history:
            if int(record["id"]) <= start:
                continue
            kept = {k: v for k, v in record.items() if k in wanted_keys}
            if kept:
                records.append({"id": record["id"], "messages": record.get("messages", []), **kept})
        current = str(box.history_id)
    size = min(int(one.get("maxResults", 100)), 500)
    offset = int(one.get("pageToken") or 0)
    page = records[offset : offset + size]
    answer: dict[str, Any] = {"historyId": current}
    if page:
        answer["history"] = page
    if offset + size < len(records):
        answer["nextPageToken"] = str(offset + size)
    return answer
