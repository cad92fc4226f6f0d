"""Webhooks and their deliveries as the API reads and writes them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field

from app.webhooks.outbox import EVENTS

# long enough for any receiver's path and query (browsers and CDNs cap near 2,000); the
# column holds exactly this much
MAX_URL = 2048
# every event once: more would only repeat one
MAX_EVENTS = len(EVENTS)

Event = Literal[
    "alert.opened",
    "alert.resolved",
    "deal.won",
    "deal.lost",
    "quota.attained",
    "connection.needs_reconnect",
]
assert set(Event.__args__) == set(EVENTS)  # type: ignore[attr-defined]

URL_PATTERN = r"^https?://[^\s\x00-\x1f\x7f]+$"


def _canonical(events: list[str]) -> list[str]:
    # the order of EVENTS, each once: a repeated name adds nothing
    return [e for e in EVENTS if e in events]


class WebhookCreate(BaseModel):
    url: Annotated[
        str,
        Field(
            min_length=10,
            max_length=MAX_URL,
            pattern=URL_PATTERN,
            description="where events are POSTed: https (http only to a host the operator "
            "allowed with TALLY_ALLOWED_PRIVATE_HOSTS); no user or password in it. A host that "
            "is, or resolves to, a loopback, private or link-local address is refused (403) "
            "unless allowed there too",
        ),
    ]
    events: Annotated[
        list[Event],
        Field(min_length=1, max_length=MAX_EVENTS, description="the events to send, each once"),
        AfterValidator(_canonical),
    ]


class WebhookRead(BaseModel):
    id: int
    url: str
    events: list[str]
    status: Literal["active", "disabled"] = Field(
        description="disabled: the receiver answered 410 Gone; nothing more is sent to it"
    )
    disabled_reason: str | None
    created_at: datetime


class WebhookCreated(WebhookRead):
    secret: str = Field(
        description="the signing secret (Standard Webhooks, whsec_ + base64): shown this once; "
        "verify each delivery's webhook-signature with it"
    )


class DeliveryRead(BaseModel):
    id: int
    event: str
    event_id: str = Field(description="the webhook-id header: the same on every attempt")
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    last_status_code: int | None = Field(description="the receiver's last HTTP status")
    last_error: str | None = Field(description="why the last attempt failed, if it did")
    last_attempt_at: datetime | None
    next_attempt_at: datetime | None = Field(
        description="when the next attempt is made; null once delivered or failed, and while "
        "an earlier delivery of the webhook is still pending (they go in order)"
    )
    delivered_at: datetime | None
    created_at: datetime
