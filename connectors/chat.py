"""The contract between chat connectors (Slack, …) and app/chat: one chat message and a page
of one channel's messages, as plain data. Nothing here touches the database or imports app/
(semantics §11).

A connector maps its own user ids to e-mail addresses (through the source's profile data)
before it builds a `ChatMessage`; a sender it cannot map is `None` (or any string that is not
an address), which §11 counts as neither a user nor external. The text is never carried:
only its length, for the record.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from connectors.base import Page

# Limits shared by the ingest endpoint and the service (a connector truncating nothing
# should never meet them: Slack's ts is 17 characters, a channel id about 11).
MAX_ID_LENGTH = 200
MAX_ADDRESS_LENGTH = 320  # RFC 5321: 64 local part + @ + 255 domain


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One message of one channel. Its identity is (source, channel, id): delivering it
    again, with any other field changed, changes nothing."""

    id: str  # unique within its channel (Slack: the message's `ts`)
    sender: str | None  # the sender's e-mail address; None or a non-address: unmappable
    sent_at: datetime  # timezone-aware
    text_length: int | None = None  # characters of the text; the text itself is never kept


@dataclass(frozen=True, slots=True)
class ChatPage(Page):
    """A page of one channel's messages (app.chat.service.ingest takes one channel per call)
    and, as every Page, the cursor that resumes after it, so the runner stores it the same
    way; its mail and calendar fields stay empty. A page may carry no message: it still says
    the channel exists and how far it is read."""

    source: str = "slack"
    channel_id: str = ""
    chat: tuple[ChatMessage, ...] = ()
    participants: tuple[str, ...] = ()  # e-mail addresses of the channel's members we know
    channel_name: str | None = None  # as the source shows it (#deal-acme, a person's name)
    channel_kind: str | None = None  # the source's word: public_channel, im, …
    # everything the channel had up to this moment is stored (None: not known by this page,
    # e.g. mid-backfill or a page of thread replies)
    synced_to: datetime | None = None
