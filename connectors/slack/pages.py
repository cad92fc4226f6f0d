"""What the Slack connector yields: pages of one channel's chat messages."""

from __future__ import annotations

from dataclasses import dataclass

from connectors.base import Page
from connectors.chat import ChatMessage


@dataclass(frozen=True, slots=True)
class ChatPage(Page):
    """A page of one channel's messages (app.chat.service.ingest takes one channel per call)
    and, as every Page, the cursor that resumes after it. A Page, so the runner stores it the
    same way; its mail and calendar fields stay empty."""

    source: str = "slack"
    channel_id: str = ""
    chat: tuple[ChatMessage, ...] = ()
    participants: tuple[str, ...] = ()  # e-mail addresses of the channel's members we know
