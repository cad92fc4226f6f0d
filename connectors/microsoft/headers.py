"""The Internet headers that say a received message is automated (semantics §2), from Graph.

Graph gives a message's headers as `internetMessageHeaders` (name/value pairs, "returned
only on applying a `$select` query option",
https://learn.microsoft.com/graph/api/resources/message), with Mail.Read: Mail.ReadBasic
reads no header and no extended property such as the raw transport headers
(PidTagTransportMessageHeaders, 0x007D). Message delta takes `$select`
(https://learn.microsoft.com/graph/api/message-delta), so in the default mode the delta
pages carry the headers themselves: no request per message. Only received mail has them
(a Sent Items copy has none: microsoftgraph/microsoft-graph-docs-contrib#7834).

A received message whose delta entry came without them (an entry made before the connection
asked for them, or one Graph sent without) has them read here, 20 to a JSON batch
(`POST /$batch` of `GET /me/messages/{id}?$select=internetMessageHeaders`: Graph's limit,
https://learn.microsoft.com/graph/json-batching): at most 50 requests per 1,000 such
messages. Each inner request counts against the mailbox's 10,000 requests per 10 minutes; one
answered 429 is asked again after its `Retry-After`.
"""

from __future__ import annotations

import email.utils
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import quote

from connectors.base import AuthExpired, ConnectorError, RateLimited
from connectors.microsoft.http import GraphClient

FIELD = "internetMessageHeaders"
BATCH = 20  # Graph's limit of requests in one JSON batch
# the headers app/activities/inference.py reads, and Content-Type (multipart/report)
CLASSIFYING = frozenset(
    {
        "auto-submitted",
        "precedence",
        "list-id",
        "list-unsubscribe",
        "x-autoreply",
        "x-autorespond",
        "x-auto-response-suppress",
        "content-type",
    }
)
_RETRY = {429, 500, 502, 503, 504}


def classifying(raw: object) -> tuple[dict[str, str], str | None]:
    """Graph's `internetMessageHeaders` -> (the classifying headers, lower-case names, first
    value of each; the top-level MIME type, or None when the headers do not say)."""
    found: dict[str, str] = {}
    if isinstance(raw, list):
        for entry in raw:
            if not isinstance(entry, dict):
                continue
            name = str(entry.get("name") or "").strip().lower()
            if name in CLASSIFYING and name not in found:
                found[name] = str(entry.get("value") or "").replace("\x00", "")
    kind = found.pop("content-type", "")
    mime = kind.split(";", 1)[0].strip().lower() or None
    return found, mime


def domain_of(address: str) -> str:
    return address.rsplit("@", 1)[-1].lower() if "@" in address else ""


def sender_domain(item: Mapping[str, Any]) -> str:
    sender = item.get("from")
    inner = sender.get("emailAddress") if isinstance(sender, dict) else None
    address = inner.get("address") if isinstance(inner, dict) else None
    return domain_of(email.utils.parseaddr(str(address or ""))[1])


def wanting(
    items: Iterable[Any], own_domains: frozenset[str], meeting_types: Iterable[str]
) -> list[str]:
    """The ids of the received messages of a page whose headers Graph did not send: not a
    removal, a draft or a meeting message; with a sender (an entry that only tells a change of
    flags has none), from outside the mailbox's own domain (internal mail makes no activity
    whatever its headers say)."""
    meetings = set(meeting_types)
    found: list[str] = []
    for item in items:
        if not isinstance(item, dict) or FIELD in item or "@removed" in item:
            continue
        if item.get("isDraft") is True or str(item.get("@odata.type", "")) in meetings:
            continue
        domain = sender_domain(item)
        if not domain or any(domain == d or domain.endswith("." + d) for d in own_domains):
            continue
        if isinstance(item.get("id"), str) and item["id"]:
            found.append(item["id"])
    return found


def read_headers(client: GraphClient, ids: Sequence[str]) -> dict[str, list[Any]]:
    """The `internetMessageHeaders` of these messages, by id ([] for one that has none or is
    gone), in JSON batches of 20."""
    found: dict[str, list[Any]] = {}
    for start in range(0, len(ids), BATCH):
        found.update(_batch(client, list(ids[start : start + BATCH])))
    return found


def _batch(client: GraphClient, ids: list[str]) -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = {}
    pending = {str(n): message_id for n, message_id in enumerate(ids)}
    for attempt in range(client.attempts):
        requests = [
            {
                "id": key,
                "method": "GET",
                "url": f"/me/messages/{quote(message_id, safe='')}?$select={FIELD}",
                "headers": {"Prefer": 'IdType="ImmutableId"'},
            }
            for key, message_id in pending.items()
        ]
        body = client.request("POST", "$batch", json={"requests": requests}, slots=len(requests))
        waits: list[float] = []
        for answer in (body or {}).get("responses") or []:
            key = str(answer.get("id"))
            if key not in pending:
                continue
            status = int(answer.get("status") or 0)
            inner = answer.get("body") if isinstance(answer.get("body"), dict) else {}
            if status == 200 or status == 404:  # 404: deleted since the delta page
                headers = inner.get(FIELD) if status == 200 else None
                found[pending.pop(key)] = headers if isinstance(headers, list) else []
            elif status in _RETRY:
                waits.append(_retry_after(answer.get("headers")))
            elif status in (401, 403):
                raise AuthExpired(
                    f"Microsoft refused to read a message's headers ({status}): "
                    "the connection needs the Mail.Read permission"
                )
            else:
                raise ConnectorError(f"Microsoft Graph refused a header read ({status})")
        if not pending:
            return found
        wait = max(waits, default=0.0) or client.backoff(attempt)
        if wait > client.max_wait or attempt == client.attempts - 1:
            raise RateLimited(
                max(wait, 1.0),
                f"Microsoft Graph is throttling this mailbox's header reads; retrying in "
                f"{max(wait, 1.0):.0f}s",
            )
        client.pause(wait)
    raise ConnectorError("Microsoft Graph: out of attempts")  # pragma: no cover


def _retry_after(headers: object) -> float:
    if isinstance(headers, dict):
        for name, value in headers.items():
            if str(name).lower() == "retry-after":
                try:
                    return max(0.0, float(value))
                except (TypeError, ValueError):
                    return 0.0
    return 0.0
