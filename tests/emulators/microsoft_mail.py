"""The mail side of the Microsoft emulator: messages, their Internet headers, `GET
/me/messages/{id}` and JSON batching, as Exchange Online and Graph document them.

- `internetMessageHeaders` is "returned only on applying a `$select` query option"
  (https://learn.microsoft.com/graph/api/resources/message, property table), and message
  delta takes `$select` (https://learn.microsoft.com/graph/api/message-delta, "Delta query
  support `$select`, `$top`, and `$expand` for messages"); a delta `$select` naming it returns
  it (microsoftgraph/microsoft-graph-docs#7776, first delta call), a list too
  (microsoftgraph/microsoft-graph-docs-contrib#7834).
- Only a received message has them: a message in Sent Items has none
  (microsoftgraph/microsoft-graph-docs-contrib#7834, microsoftgraph/microsoft-graph-docs#18761,
  microsoftgraph/msgraph-sdk-dotnet#3025), nor has a draft, nor an item that never went
  through transport (`deliver(transport=False)`: one an app or an import put there).
- Mail.ReadBasic reads "email … except for body, bodyPreview, uniqueBody, attachments,
  extensions, and any extended properties"
  (https://learn.microsoft.com/graph/permissions-reference#mailreadbasic); with it Graph
  returns no Internet headers either (issue 12 of this project, as Exchange answers), so
  they are left out of every answer to a Mail.ReadBasic token.
- `POST /$batch` takes at most 20 requests (https://learn.microsoft.com/graph/json-batching,
  "JSON batch requests are currently limited to 20 individual requests"); each counts on
  its own against the mailbox's limits, and one over them answers 429 with its own
  `Retry-After` inside a 200 batch (same page, "Throttling and batching"). Graph runs up to 4
  of them at once against Outlook, whose limit is 4 concurrent requests per mailbox
  (https://learn.microsoft.com/graph/throttling-limits#outlook-service-limits): the ones over
  what the mailbox has left answer 429 MailboxConcurrency.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from tests.emulators.microsoft_common import (
    FOLDER_IDS,
    MAIL_READ,
    MAX_IN_FLIGHT,
    Answer,
    Item,
    User,
    copy,
    email_address,
    graph_error,
    iso,
    parse_iso,
    selected,
)

HEADERS = "internetMessageHeaders"
MAX_BATCH = 20
MAX_TOP = 1000
_COMPARE = {
    "ge": lambda a, b: a >= b,
    "gt": lambda a, b: a > b,
    "le": lambda a, b: a <= b,
    "lt": lambda a, b: a < b,
}


def transport_headers(
    sender: str, to: Iterable[str], subject: str, when: datetime, message_id: str
) -> list[dict[str, str]]:
    """The headers Exchange Online keeps of a message it received: routing, authentication
    and anti-spam stamps around the RFC 5322 ones (a few kilobytes, as real ones are)."""
    address = email_address(sender)["emailAddress"]["address"]
    domain = address.rsplit("@", 1)[-1]
    stamp = format_datetime(when.astimezone(UTC))
    relay = f"AM{secrets.randbelow(9)}PR0{secrets.randbelow(9)}MB{secrets.randbelow(9999):04d}"
    pairs = [
        (
            "Received",
            f"from {relay}.eurprd.prod.outlook.com (2603:10a6::{secrets.token_hex(2)}) "
            f"by {relay}.eurprd.prod.outlook.com with HTTPS; {stamp}",
        ),
        (
            "Received",
            f"from mail.{domain} (192.0.2.{secrets.randbelow(250)}) by "
            f"{relay}.mail.protection.outlook.com (10.167.16.{secrets.randbelow(250)}) with "
            f"Microsoft SMTP Server (version=TLS1_3, cipher=TLS_AES_256_GCM_SHA384) id 15.20.7; "
            f"{stamp}",
        ),
        (
            "Authentication-Results",
            f"spf=pass (sender IP is 192.0.2.1) smtp.mailfrom={domain}; "
            f"dkim=pass (signature was verified) header.d={domain};dmarc=pass action=none "
            f"header.from={domain};compauth=pass reason=100",
        ),
        (
            "DKIM-Signature",
            f"v=1; a=rsa-sha256; c=relaxed/relaxed; d={domain}; s=selector1; "
            f"h=From:Date:Subject:Message-ID:Content-Type:MIME-Version; "
            f"bh={secrets.token_urlsafe(32)}; b={secrets.token_urlsafe(256)}",
        ),
        ("From", sender),
        ("To", ", ".join(to)),
        ("Subject", subject),
        ("Date", stamp),
        ("Message-ID", f"<{message_id}>"),
        ("Content-Type", f'multipart/alternative; boundary="_000_{secrets.token_hex(12)}_"'),
        ("MIME-Version", "1.0"),
        ("X-MS-Exchange-Organization-SCL", "1"),
        ("X-MS-Exchange-Organization-AuthAs", "Anonymous"),
        ("X-MS-Exchange-Organization-Network-Message-Id", secrets.token_hex(16)),
        ("X-Microsoft-Antispam", "BCL:0;ARA:13230040|1800799024|376014|366016;"),
        (
            "X-Forefront-Antispam-Report",
            f"CIP:192.0.2.1;CTRY:BE;LANG:en;SCL:1;SRV:;"
            f"IPV:NLI;SFV:NSPM;H:mail.{domain};PTR:mail.{domain};CAT:NONE;SFS:(13230040);DIR:INB;",
        ),
    ]
    return [{"name": name, "value": value} for name, value in pairs]


class MailSide:
    lock: threading.RLock
    inner_requests: int
    served: Counter[str]

    def user(self, email: str) -> User:
        raise NotImplementedError

    def route(
        self,
        user: User,
        method: str,
        path: str,
        query: dict[str, str],
        headers: dict[str, str],
        body: bytes,
        scopes: frozenset[str],
    ) -> Answer:
        raise NotImplementedError

    # --- the test's side ------------------------------------------------------------------

    def deliver(
        self,
        email: str,
        folder: str = "inbox",
        *,
        sender: str,
        to: Iterable[str] = (),
        cc: Iterable[str] = (),
        bcc: Iterable[str] = (),
        subject: str = "Hello",
        when: datetime | None = None,
        message_id: str | None = None,
        draft: bool = False,
        odata_type: str | None = None,
        headers: Mapping[str, str] | None = None,
        transport: bool = True,
    ) -> str:
        """Put a message in a folder of the mailbox; returns its (immutable) id. A received
        message (not in Sent Items, not a draft, `transport`) gets Exchange's transport
        headers and `headers` (List-Id, Precedence…) among them."""
        when = when or datetime.now(UTC) - timedelta(days=1)
        to = list(to)
        with self.lock:
            user = self.user(email)
            item_id = "AAMkMsg" + secrets.token_hex(10)
            internet_id = f"{message_id or secrets.token_hex(12)}@mail.example"
            data: dict[str, Any] = {
                "id": item_id,
                "internetMessageId": f"<{internet_id}>",
                "conversationId": "AAQk" + secrets.token_hex(6),
                "subject": subject,
                "from": email_address(sender),
                "sender": email_address(sender),
                "toRecipients": [email_address(a) for a in to],
                "ccRecipients": [email_address(a) for a in cc],
                "bccRecipients": [email_address(a) for a in bcc],
                "receivedDateTime": iso(when),
                "sentDateTime": iso(when),
                "isDraft": draft,
                "bodyPreview": "Hi there.",
            }
            if odata_type:
                data["@odata.type"] = odata_type
            if transport and folder != "sentitems" and not draft:
                found = transport_headers(sender, to, subject, when, internet_id)
                found += [{"name": k, "value": v} for k, v in (headers or {}).items()]
                data[HEADERS] = found
            user.items[item_id] = Item(item_id, folder, data, user.bump())
            return item_id

    def deliver_many(self, email: str, folder: str, messages: list[dict[str, Any]]) -> list[str]:
        return [self.deliver(email, folder, **m) for m in messages]

    def move(self, email: str, item_id: str, folder: str) -> None:
        with self.lock:
            user = self.user(email)
            item = user.items[item_id]
            seq = user.bump()
            user.departures.append((seq, item.container, item_id))
            item.container, item.seq = folder, seq

    # --- the server's side ----------------------------------------------------------------

    def count_served(self, entries: Iterable[dict[str, Any]]) -> None:
        for entry in entries:
            if "@removed" not in entry and entry.get("subject"):
                self.served[str(entry["subject"])] += 1

    def list_messages(
        self,
        user: User,
        folder: str,
        url: str,
        query: dict[str, str],
        prefer: str,
        scopes: frozenset[str],
    ) -> Answer:
        """`GET /me/mailFolders/{folder}/messages`, as
        https://learn.microsoft.com/graph/api/user-list-messages documents it: 10 messages a
        page unless `$top` says (1 to 1000); the `@odata.nextLink` carries the request's query
        and a `$skip`; `$filter` and `$orderby` together answer 400 InefficientFilter unless
        the ordered properties lead the filter, in the same order ("Using filter and orderby
        in the same query"). Only what Tally sends is understood: `$filter` on
        receivedDateTime (ge, gt, le, lt, joined by `and`) and `$orderby` receivedDateTime.
        Without `$orderby` the order is not documented: here, newest first."""
        top = int(query["$top"]) if query.get("$top", "").isdigit() else 10
        if not 1 <= top <= MAX_TOP:
            return 400, {}, graph_error("ErrorInvalidParameter", f"Invalid $top: {top}.")
        clauses = _received_clauses(query.get("$filter", ""))
        if clauses is None:
            return 400, {}, graph_error("BadRequest", "The emulator reads no such $filter.")
        order = query.get("$orderby", "").strip()
        if order:
            name, _, direction = order.partition(" ")
            if name != "receivedDateTime" or direction.strip() not in ("", "asc", "desc"):
                return 400, {}, graph_error("BadRequest", "The emulator reads no such $orderby.")
            if not clauses:
                too_complex = "The restriction or sort order is too complex for this operation."
                return 400, {}, graph_error("InefficientFilter", too_complex)
        found = [
            item
            for item in user.items.values()
            if item.container == folder
            and all(
                _COMPARE[op](parse_iso(item.data["receivedDateTime"]), bound)
                for op, bound in clauses
            )
        ]
        found.sort(key=lambda i: i.data["receivedDateTime"], reverse=not order.endswith("asc"))
        skip = int(query["$skip"]) if query.get("$skip", "").isdigit() else 0
        immutable = 'IdType="ImmutableId"' in prefer
        wanted = selected(query)
        page = [self.render_message(i, wanted, immutable, scopes) for i in found[skip : skip + top]]
        self.count_served(page)
        answer: dict[str, Any] = {"value": page}
        if skip + top < len(found):
            answer["@odata.nextLink"] = f"{url}?{urlencode({**query, '$skip': skip + top})}"
        return 200, {}, answer

    def render_message(
        self, item: Item, wanted: list[str], immutable: bool, scopes: frozenset[str]
    ) -> dict[str, Any]:
        data = copy(item.data)
        data["parentFolderId"] = FOLDER_IDS[item.container]
        data["@odata.etag"] = f'W/"{item.seq}"'
        if wanted:
            keep = set(wanted) | {"id", "@odata.type", "@odata.etag"}
            data = {k: v for k, v in data.items() if k in keep}
        if HEADERS not in wanted or MAIL_READ not in scopes:
            data.pop(HEADERS, None)
        if not immutable:  # a mutable id changes when the item moves
            data["id"] = f"{item.container}-{item.id}"
        return data

    def get_message(
        self,
        user: User,
        message_id: str,
        query: dict[str, str],
        prefer: str,
        scopes: frozenset[str],
    ) -> Answer:
        item = user.items.get(message_id.split("-", 1)[-1])
        if item is None or item.container == "calendar":
            missing = "The specified object was not found in the store."
            return 404, {}, graph_error("ErrorItemNotFound", missing)
        wanted = [s.strip() for s in query.get("$select", "").split(",") if s.strip()]
        immutable = 'IdType="ImmutableId"' in prefer
        return 200, {}, self.render_message(item, wanted, immutable, scopes)

    def batch(self, user: User, body: bytes, room: int, scopes: frozenset[str]) -> Answer:
        """A JSON batch; `room`: how many of its requests may run at once (the mailbox's
        concurrency left when it arrived)."""
        try:
            requests = json.loads(body or b"{}").get("requests")
        except (ValueError, AttributeError):
            requests = None
        if not isinstance(requests, list) or not requests:
            return 400, {}, graph_error("BadRequest", "Invalid batch payload format.")
        if len(requests) > MAX_BATCH:
            return (
                400,
                {},
                graph_error("BadRequest", "Number of requests exceeds the limit of 20."),
            )
        parallel = min(MAX_IN_FLIGHT, len(requests))
        responses = []
        for index, inner in enumerate(requests):
            self.inner_requests += 1
            user.requests.append(time.monotonic())
            if index % parallel >= room:
                status, extra, answer = (
                    429,
                    {"Retry-After": "1"},
                    graph_error(
                        "ApplicationThrottled",
                        "Application is over its MailboxConcurrency limit.",
                    ),
                )
            else:
                url = urlsplit(str(inner.get("url", "")))
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                headers = {str(k).lower(): str(v) for k, v in (inner.get("headers") or {}).items()}
                method = str(inner.get("method", "GET")).upper()
                path = "/v1.0/" + url.path.lstrip("/")
                status, extra, answer = self.route(user, method, path, query, headers, b"", scopes)
            response: dict[str, Any] = {"id": inner.get("id"), "status": status, "headers": extra}
            if answer is not None:
                response["body"] = answer
            responses.append(response)
        return 200, {}, {"responses": responses}

    def mail_units(
        self,
        user: User,
        container: str,
        options: dict[str, Any],
        since: int,
        immutable: bool,
        scopes: frozenset[str],
    ) -> list[list[dict[str, Any]]]:
        """A folder's delta round, newest first: one unit per message, then the messages that
        left the folder (`@removed`)."""
        present = [i for i in user.items.values() if i.container == container and i.seq > since]
        floor = options.get("$filter", "")
        if floor.startswith("receivedDateTime ge "):
            limit = parse_iso(floor.removeprefix("receivedDateTime ge ").strip())
            present = [i for i in present if parse_iso(i.data["receivedDateTime"]) >= limit]
        present.sort(key=lambda i: i.data["receivedDateTime"], reverse=True)
        wanted = selected(options)
        units = [[self.render_message(i, wanted, immutable, scopes)] for i in present]
        gone: dict[str, None] = {}
        for seq, left, item_id in user.departures:
            if seq > since and left == container:
                current = user.items.get(item_id)
                if current is None or current.container != container:
                    gone[item_id] = None
        for item_id in gone:
            shown = item_id if immutable else f"{container}-{item_id}"
            reason = "changed" if item_id in user.items else "deleted"
            kind = "#microsoft.graph.message"
            units.append([{"@odata.type": kind, "id": shown, "@removed": {"reason": reason}}])
        return units


def _received_clauses(text: str) -> list[tuple[str, datetime]] | None:
    """`receivedDateTime <op> <time>` clauses joined by `and` (none for an empty filter);
    None for any other filter."""
    found: list[tuple[str, datetime]] = []
    for clause in filter(None, (c.strip() for c in text.split(" and "))):
        name, op, value = [*clause.split(" ", 2), "", ""][:3]
        if name != "receivedDateTime" or op not in _COMPARE:
            return None
        try:
            found.append((op, parse_iso(value.strip())))
        except ValueError:
            return None
    return found


def batch_size(body: bytes) -> int:
    """How many requests a JSON batch holds (1 when unreadable: it is refused anyway)."""
    try:
        requests = json.loads(body or b"{}").get("requests")
    except (ValueError, AttributeError):
        return 1
    return max(1, min(len(requests), MAX_BATCH)) if isinstance(requests, list) else 1
