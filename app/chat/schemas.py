"""What `POST /activities/ingest/chat` takes and answers, and the organization's chat settings."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from app.chat.models import DEFAULT_GAP_MINUTES
from app.schemas import JSON_INTEGER, LINE_PATTERN, NAME_PATTERN, Moment
from connectors.chat import MAX_ADDRESS_LENGTH, MAX_ID_LENGTH

SOURCE_PATTERN = r"^[a-z][a-z0-9_-]{0,31}$"
MAX_MESSAGES = 1000  # per request: ~250 KB of JSON, one transaction of a few hundred ms
MAX_PARTICIPANTS = 1000
MAX_TEXT_LENGTH = 10_000_000

Address = Annotated[str, Field(min_length=1, max_length=MAX_ADDRESS_LENGTH, pattern=LINE_PATTERN)]


class ChatMessageIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    id: str = Field(
        min_length=1,
        max_length=MAX_ID_LENGTH,
        pattern=NAME_PATTERN,
        description="unique within the channel; a message delivered again changes nothing",
    )
    sender: Address | None = Field(
        description="the sender's e-mail address; null (or anything that is not an address, "
        "such as a tool's own user id) counts as nobody"
    )
    sent_at: Moment = Field(description="ISO 8601 with offset")
    text_length: Annotated[int, Field(ge=0, le=MAX_TEXT_LENGTH), JSON_INTEGER] | None = Field(
        None, description="characters of the text; the text itself is never sent or kept"
    )


class ChatIngest(BaseModel):
    """Messages of one channel of one chat tool (docs/chat.md)."""

    model_config = ConfigDict(extra="ignore")

    source: str = Field(
        pattern=SOURCE_PATTERN,
        description="the tool, a short lower-case token: whatsapp, intercom, crisp, teams…",
        examples=["whatsapp"],
    )
    channel_id: str = Field(
        min_length=1,
        max_length=MAX_ID_LENGTH,
        pattern=NAME_PATTERN,
        description="the conversation place, unique within the source",
    )
    channel_name: str | None = Field(
        None,
        min_length=1,
        max_length=200,
        pattern=LINE_PATTERN,
        description="how people know the channel (the customer's name, a chat's subject), "
        "shown by GET /chat/channels; left out: the name stored is kept",
    )
    messages: list[ChatMessageIn] = Field(min_length=1, max_length=MAX_MESSAGES)
    participants: list[Address] = Field(
        default_factory=list,
        max_length=MAX_PARTICIPANTS,
        description="members' addresses (senders count as members even when left out)",
    )


class ChatIngestResult(BaseModel):
    stored: int = Field(description="messages new to the channel")
    duplicates: int = Field(description="messages already stored, or repeated in the request")
    activities_added: int
    activities_removed: int = Field(
        description="conversations that a late message joined to an earlier one, or started "
        "earlier, leave their activities to the conversation they became part of"
    )
    activities_changed: int = Field(description="kept, with new linked contacts")


class ChatSettingsBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    gap_minutes: Annotated[int, Field(ge=1, le=7 * 24 * 60), JSON_INTEGER] = Field(
        DEFAULT_GAP_MINUTES,
        description="a message later than this after the previous one starts a new "
        "conversation (exactly this long splits)",
    )


class ChannelRead(BaseModel):
    """A conversation place and what Tally holds of it (never the text)."""

    id: int
    source: str = Field(description="e.g. slack, whatsapp")
    channel_id: str = Field(description="the source's own id of the channel")
    name: str | None = Field(
        description="as the source shows it (a Slack channel's name; a direct message: the "
        "other person's address; a tool's `channel_name`); null until the source says"
    )
    kind: str | None = Field(description="Slack: public_channel, private_channel, im or mpim")
    connection_id: int | None = Field(
        description="the connection that reads it (Slack); null for a tool posting to "
        "POST /activities/ingest/chat"
    )
    messages: int = Field(description="messages captured from it")
    last_message_at: datetime | None
    synced_to: datetime | None = Field(
        description="every message the channel had up to this moment is captured; null while "
        "its first backfill runs, and for tools that post (they say nothing of it)"
    )
    created_at: datetime = Field(description="when Tally first heard of it")
