"""The outbox: an announcement is written in the transaction of the change it announces.

`announce` adds one delivery row per webhook of the organization subscribed to the event, in
the caller's session. The change and its announcement commit together or not at all; the
delivery job (app/webhooks/delivery.py) sends what is committed, so a process that dies after
the commit loses nothing, and one that dies before it announced nothing that did not happen.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import pydantic_core
from sqlalchemy import exists, select, update
from sqlalchemy.orm import Session

from app.models import utcnow
from app.webhooks.models import DeliveryStatus, Webhook, WebhookDelivery, WebhookStatus

EVENTS = (
    "alert.opened",
    "alert.resolved",
    "deal.won",
    "deal.lost",
    "quota.attained",
    "connection.needs_reconnect",
)
# what one event's body may weigh: the callers send a handful of fields; a receiver's
# request limits are often 1 MB, and Svix caps payloads at 1 MB too
MAX_BODY_BYTES = 64 * 1024


def new_event_id() -> str:
    """A `webhook-id` as the Standard Webhooks examples write them (msg_…)."""
    return "msg_" + uuid.uuid4().hex


def body_of(event: str, data: dict[str, Any], at: datetime) -> str:
    """The JSON sent: `{"type", "timestamp", "data"}` as the specification suggests. Dates and
    times as ISO 8601, decimals as strings (pydantic's JSON encoding)."""
    body = pydantic_core.to_json({"type": event, "timestamp": at, "data": data}).decode()
    if len(body.encode()) > MAX_BODY_BYTES:
        raise ValueError(f"webhook body of {event} is larger than {MAX_BODY_BYTES} bytes")
    return body


def wanted(session: Session, org_id: int) -> set[str]:
    """The events some active webhook of the organization takes: a caller about to announce
    thousands of events (a first alert evaluation) asks first, and skips what nobody takes."""
    lists = session.scalars(
        select(Webhook.events).where(
            Webhook.org_id == org_id, Webhook.status == WebhookStatus.active
        )
    )
    return {event for events in lists for event in events}


def announce(session: Session, org_id: int, event: str, data: dict[str, Any]) -> None:
    """Queue `event` with `data` for every active webhook of the organization subscribed to
    it, in the caller's transaction (nothing is committed here).

    Each subscribed webhook's row stays locked until the caller's transaction ends (its
    delivery numbers follow the order of the commits): announce late in short transactions.
    """
    if event not in EVENTS:
        raise ValueError(f"unknown webhook event {event!r}")
    hooks = session.execute(
        select(Webhook.id, Webhook.events).where(
            Webhook.org_id == org_id, Webhook.status == WebhookStatus.active
        )
    ).all()
    subscribed = sorted(hook_id for hook_id, events in hooks if event in events)
    if not subscribed:
        return
    now = utcnow()
    body = body_of(event, data, now)
    event_id = new_event_id()
    for hook_id in subscribed:  # in id order: concurrent announcers lock in the same order
        seq = session.execute(
            update(Webhook)
            .where(Webhook.id == hook_id, Webhook.status == WebhookStatus.active)
            .values(last_seq=Webhook.last_seq + 1)
            .returning(Webhook.last_seq)
            .execution_options(synchronize_session=False)
        ).scalar()
        if seq is None:  # deleted or disabled since it was read
            continue
        waiting = session.scalar(
            select(
                exists().where(
                    WebhookDelivery.webhook_id == hook_id,
                    WebhookDelivery.status == DeliveryStatus.pending,
                )
            )
        )
        session.add(
            WebhookDelivery(
                org_id=org_id,
                webhook_id=hook_id,
                seq=seq,
                event_id=event_id,
                event=event,
                body=body,
                status=DeliveryStatus.pending,
                attempts=0,
                # only the head of a webhook's queue is due; the ones behind wait for it
                next_attempt_at=None if waiting else now,
                created_at=now,
            )
        )
    session.flush()


def announce_needs_reconnect(
    session: Session, *, org_id: int, connection_id: int, user_id: int, provider: str, reason: str
) -> None:
    """connection.needs_reconnect, when a connection's status becomes needs_reconnect."""
    data = {
        "connection": {"id": connection_id, "user_id": user_id, "provider": provider},
        "reason": reason,
    }
    announce(session, org_id, "connection.needs_reconnect", data)
