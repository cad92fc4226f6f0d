"""Routes for outgoing webhooks (admins only) and their deliveries log."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response, status

from app.config import settings
from app.deps import CurrentUser, SessionDep
from app.pagination import Page, PageParams, decode_cursor, encode_cursor, page_params, read_id
from app.schemas import ErrorBody
from app.webhooks import schemas, service
from app.webhooks.models import DeliveryStatus, Webhook, WebhookDelivery

router = APIRouter(tags=["webhooks"])

_CREATE_ERRORS: dict[int | str, dict[str, Any]] = {
    403: {
        "model": ErrorBody,
        "description": "Not an admin; or the URL's host is, or resolves to, a loopback, private "
        "or link-local address this instance does not connect to (TALLY_ALLOWED_PRIVATE_HOSTS)",
    },
    409: {"model": ErrorBody, "description": "The organization has 20 webhooks already"},
    422: {
        "model": ErrorBody,
        "description": "Invalid body: an unknown event, a URL that is not https (http only to "
        "an allowed private host), holds a user or password or a #fragment",
    },
}


def _read(hook: Webhook) -> schemas.WebhookRead:
    return schemas.WebhookRead.model_validate(hook, from_attributes=True)


@router.post(
    "/webhooks",
    status_code=status.HTTP_201_CREATED,
    summary="Subscribe a URL to events (admin); the signing secret is shown this once",
    responses=_CREATE_ERRORS,
)
def create_webhook(
    data: schemas.WebhookCreate, session: SessionDep, caller: CurrentUser
) -> schemas.WebhookCreated:
    hook, secret = service.create(session, caller, data.url, list(data.events))
    return schemas.WebhookCreated(**_read(hook).model_dump(), secret=secret)


@router.get("/webhooks", summary="The organization's webhooks, oldest first (admin)")
def list_webhooks(
    session: SessionDep,
    caller: CurrentUser,
    paging: Annotated[PageParams, Depends(page_params)],
) -> Page[schemas.WebhookRead]:
    after = decode_cursor(paging.cursor, read_id)
    rows = service.page(session, caller, after, paging.limit + 1)
    shown = rows[: paging.limit]
    more = len(rows) > paging.limit
    return Page(
        items=[_read(h) for h in shown],
        next_cursor=encode_cursor([shown[-1].id]) if more else None,
    )


@router.get("/webhooks/{webhook_id}", summary="One webhook (admin); never its secret")
def read_webhook(webhook_id: int, session: SessionDep, caller: CurrentUser) -> schemas.WebhookRead:
    return _read(service.visible(session, caller, webhook_id))


@router.delete(
    "/webhooks/{webhook_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a webhook with its deliveries log; what is pending is not sent (admin)",
    response_class=Response,
)
def delete_webhook(webhook_id: int, session: SessionDep, caller: CurrentUser) -> Response:
    service.remove(session, caller, webhook_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _delivery(row: WebhookDelivery) -> schemas.DeliveryRead:
    return schemas.DeliveryRead.model_validate(row, from_attributes=True)


@router.get(
    "/webhooks/{webhook_id}/deliveries",
    summary="A webhook's deliveries, newest first (admin)",
    description="The log of what was sent to the webhook. A delivery that was delivered or "
    f"failed for good is kept {settings.webhook_retention_days} days after it settled (this "
    "instance's TALLY_WEBHOOK_RETENTION_DAYS), then deleted, within an hour or so; a pending "
    "one is kept, whatever its age, until it settles.",
)
def list_deliveries(
    webhook_id: int,
    session: SessionDep,
    caller: CurrentUser,
    paging: Annotated[PageParams, Depends(page_params)],
    status: Annotated[DeliveryStatus | None, Query(description="only these")] = None,
) -> Page[schemas.DeliveryRead]:
    before = decode_cursor(paging.cursor, read_id)
    rows = service.deliveries(
        session, caller, webhook_id, status=status, before=before, limit=paging.limit + 1
    )
    shown = rows[: paging.limit]
    more = len(rows) > paging.limit
    return Page(
        items=[_delivery(r) for r in shown],
        next_cursor=encode_cursor([shown[-1].seq]) if more else None,
    )
