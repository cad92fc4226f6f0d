"""Just enough WebDAV/CalDAV over `requests`: PROPFIND, REPORT, multistatus parsing, errors.

Written by hand rather than with the `caldav` package so that every HTTP status is translated
into our four error types at one place (a 403/409 valid-sync-token precondition must become
CursorExpired, a 401 AuthExpired) and no password can reach a message.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import quote, unquote, urljoin, urlsplit

import requests

from connectors.base import AuthExpired, ConnectorError, CursorExpired, RateLimited
from connectors.calendar.transport import GuardedAdapter
from connectors.netguard import BlockedAddress

DAV = "{DAV:}"
CAL = "{urn:ietf:params:xml:ns:caldav}"
CS = "{http://calendarserver.org/ns/}"
_NS = 'xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:caldav" xmlns:cs="http://calendarserver.org/ns/"'


@dataclass(slots=True)
class DavResponse:
    """One <response> of a multistatus: its href, status and the props found with 200."""

    href: str
    status: int = 200
    props: dict[str, ET.Element] = field(default_factory=dict)

    def text(self, name: str) -> str:
        element = self.props.get(name)
        return "" if element is None else "".join(element.itertext()).strip()


def _retry_after(value: str | None) -> float:
    if not value:
        return 60.0
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return 60.0
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - datetime.now(UTC)).total_seconds())


def _status(line: str) -> int:
    parts = line.split()
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 200


class DavClient:
    """One authenticated session against one server; paths are resolved against `base`."""

    def __init__(
        self,
        base: str,
        username: str,
        password: str,
        timeout: float,
        *,
        connect_timeout: float = 10.0,
        allowed_hosts: Sequence[str] | None = None,
    ) -> None:
        """`timeout` bounds each read, `connect_timeout` each connect; `allowed_hosts` None
        connects anywhere, a list refuses non-public addresses but those listed."""
        self.base = base if base.endswith("/") else base + "/"
        self.session = requests.Session()
        self.session.auth = (username, password)
        self.session.trust_env = False  # no .netrc or proxy from the environment
        if allowed_hosts is not None:
            adapter = GuardedAdapter(allowed_hosts)
            self.session.mount("http://", adapter)
            self.session.mount("https://", adapter)
        self.timeout = (connect_timeout, timeout)

    def close(self) -> None:
        self.session.close()

    def url(self, href: str) -> str:
        return urljoin(self.base, href)

    def path(self, href: str) -> str:
        """The path part of an href, percent-decoded: the stable key of a collection/resource."""
        return unquote(urlsplit(self.url(href)).path)

    def request(self, method: str, href: str, body: str | None = None, depth: str = "0") -> bytes:
        headers = {"Depth": depth, "Content-Type": 'application/xml; charset="utf-8"'}
        where = f"{method} {self.path(href)}"
        try:
            response = self.session.request(
                method,
                self.url(href),
                data=body.encode() if body is not None else None,
                headers=headers,
                timeout=self.timeout,
            )
        except requests.RequestException as error:
            host = urlsplit(self.base).netloc.rsplit("@", 1)[-1]
            raise ConnectorError(f"{where}: cannot reach {host}: {type(error).__name__}") from error
        except BlockedAddress as error:  # never contacted: nothing to tell about the port
            raise ConnectorError(f"{where}: not connecting: {error}") from None
        code = response.status_code
        if code == 401:
            raise AuthExpired(f"{where}: credentials refused (HTTP 401)")
        if code in (429, 503):
            raise RateLimited(_retry_after(response.headers.get("Retry-After")), f"{where}: {code}")
        if code in (403, 409) and b"valid-sync-token" in response.content:
            raise CursorExpired(f"{where}: the server no longer knows our sync token")
        if code >= 400:
            raise ConnectorError(f"{where}: HTTP {code} {response.reason or ''}".strip())
        return response.content

    def multistatus(
        self, method: str, href: str, body: str, depth: str = "0"
    ) -> tuple[list[DavResponse], ET.Element]:
        raw = self.request(method, href, f'<?xml version="1.0" encoding="utf-8"?>\n{body}', depth)
        try:
            root = ET.fromstring(raw)
        except ET.ParseError as error:
            raise ConnectorError(f"{method} {self.path(href)}: unreadable XML: {error}") from error
        responses: list[DavResponse] = []
        for node in root.findall(f"{DAV}response"):
            href_node = node.find(f"{DAV}href")
            if href_node is None or not (href_node.text or "").strip():
                continue
            item = DavResponse(self.path((href_node.text or "").strip()))
            status = node.find(f"{DAV}status")
            if status is not None:
                item.status = _status(status.text or "")
            for propstat in node.findall(f"{DAV}propstat"):
                code_node = propstat.find(f"{DAV}status")
                if code_node is not None and _status(code_node.text or "") != 200:
                    continue
                for prop in propstat.findall(f"{DAV}prop/*"):
                    item.props[prop.tag] = prop
            responses.append(item)
        return responses, root

    def propfind(self, href: str, props: str, depth: str = "0") -> list[DavResponse]:
        body = f"<d:propfind {_NS}><d:prop>{props}</d:prop></d:propfind>"
        return self.multistatus("PROPFIND", href, body, depth)[0]

    def sync_collection(self, href: str, token: str) -> tuple[list[DavResponse], str, bool]:
        """RFC 6578: members changed (status 200) or gone (404) since `token`, the new token,
        and whether the server truncated the answer (507 on the collection itself)."""
        body = (
            f"<d:sync-collection {_NS}><d:sync-token>{_escape(token)}</d:sync-token>"
            "<d:sync-level>1</d:sync-level><d:prop><d:getetag/></d:prop></d:sync-collection>"
        )
        responses, root = self.multistatus("REPORT", href, body)
        collection = self.path(href)
        truncated = any(r.href == collection and r.status == 507 for r in responses)
        members = [r for r in responses if r.href.rstrip("/") != collection.rstrip("/")]
        new_token = (root.findtext(f"{DAV}sync-token") or "").strip()
        return members, new_token, truncated

    def multiget(self, href: str, hrefs: list[str]) -> list[DavResponse]:
        refs = "".join(f"<d:href>{_escape(quote(h))}</d:href>" for h in hrefs)
        body = (
            f"<c:calendar-multiget {_NS}><d:prop><d:getetag/><c:calendar-data/></d:prop>"
            f"{refs}</c:calendar-multiget>"
        )
        return self.multistatus("REPORT", href, body, depth="1")[0]


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
