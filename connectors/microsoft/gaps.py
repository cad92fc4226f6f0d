"""The older stretch of a mail folder that a widened window adds (connectors.base.WidensHistory).

A folder's delta round cannot reach further back: message delta takes only
`receivedDateTime ge|gt` as its `$filter`, given in the round's first request and encoded in
its links (https://learn.microsoft.com/graph/api/message-delta, "Query parameters"), and a
new round would list the whole folder again. So the gap [from, before) is listed apart, once:

    GET /me/mailFolders/{folder}/messages
        ?$filter=receivedDateTime ge {from} and receivedDateTime lt {before}
        &$orderby=receivedDateTime desc&$select=<the delta's>&$top=<page size>
    Prefer: IdType="ImmutableId"

- the same `$select` as the delta pages, so each page is the data (internetMessageHeaders
  included with Mail.Read: "returned only on applying a $select query option",
  https://learn.microsoft.com/graph/api/resources/message), and the same immutable ids
  (https://learn.microsoft.com/graph/outlook-immutable-id), so a message the delta round also
  gave is the same observation, not a new one;
- `$top` up to 1000, 10 when not given; the pages are followed by their `@odata.nextLink`,
  whole and unaltered: it carries the query, and its `$skip` counts items the server went
  through, not the ones returned (https://learn.microsoft.com/graph/api/user-list-messages);
- `$orderby=receivedDateTime desc`, newest first, as a backfill reads; allowed because the
  ordered property comes first in the `$filter` (otherwise 400 InefficientFilter, same page,
  "Using filter and orderby in the same query").

The gap's nextLink is stored with each page, so an interrupted gap resumes after the last
page stored. Paging by `$skip` over a stretch that changes under it can shift by the
messages removed meanwhile: a message of the gap deleted or moved out of the folder during
the listing can make the next page start one item later and so skip one older message.
That is mail more than a window old changing during a backfill; it is accepted, not
guarded against.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, Protocol

from connectors.base import iso_moment
from connectors.microsoft.http import GraphClient, SyncStateGone, list_pages


class MailSource(Protocol):
    """What a gap listing reads of the mail connector (mail.py), named here so that mail.py
    imports this module and not the other way round."""

    client: GraphClient
    page_size: int

    @property
    def select(self) -> str: ...


MAX_TOP = 1000  # Graph's largest page of a message list


def utc(moment: datetime) -> datetime:
    """In UTC; a time without an offset is taken as UTC."""
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def stamp(moment: datetime) -> str:
    """A time as Graph's `$filter` compares it (and as the cursor keeps it), to the second."""
    return utc(moment).strftime("%Y-%m-%dT%H:%M:%SZ")


def fill(
    connector: MailSource, state: dict[str, Any], folder: str, floor: datetime
) -> Iterator[list[Any]]:
    """The entries of the folder's gap under way, page by page, then of the gap between
    `floor` (where the window starts now) and the start of what the folder covers, if
    earlier. Before each page is yielded, `state` ("covered", "gaps") says where the gap
    stands once it is stored."""
    covered: dict[str, str] = state["covered"]
    gaps: dict[str, dict[str, Any]] = state["gaps"]
    restarted = False
    while True:
        gap = gaps.get(folder)
        if gap is None:
            start = iso_moment(covered.get(folder))
            if start is None or utc(floor) >= start:
                return  # nothing read yet (its round starts from the floor), or no gap
            gap = gaps[folder] = {
                "from": stamp(floor),
                "before": stamp(start),
                "link": None,
            }
            covered[folder] = gap["from"]
        try:
            for items, link in _pages(connector, folder, gap):
                if link is None:
                    del gaps[folder]
                else:
                    gap["link"] = link
                yield items
        except SyncStateGone:
            # a message list keeps no sync state: should Graph answer 410 all the same,
            # the gap is listed from its start once more (what was read is recognised)
            if restarted:
                raise
            restarted, gap["link"] = True, None


def _pages(
    connector: MailSource, folder: str, gap: dict[str, Any]
) -> Iterator[tuple[list[Any], str | None]]:
    headers = {"Prefer": 'IdType="ImmutableId"'}
    if gap.get("link"):
        return list_pages(connector.client, str(gap["link"]), headers)
    params = {
        "$filter": f"receivedDateTime ge {gap['from']} and receivedDateTime lt {gap['before']}",
        "$orderby": "receivedDateTime desc",
        "$select": connector.select,
        "$top": str(max(1, min(connector.page_size, MAX_TOP))),
    }
    return list_pages(connector.client, (f"me/mailFolders/{folder}/messages", params), headers)
