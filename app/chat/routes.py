"""Chat messages from any tool, signed like the telephony webhook or sent with an admin key;
and the organization's chat settings."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request

from app import ratelimit
from app.access import require_role
from app.calls.service import signed_by
from app.chat import channels, schemas, service
from app.deps import Credentials, CurrentUser, SessionDep, current_user
from app.errors import Forbidden, Unauthorized
from app.models import Role
from app.pagination import Page, PageParams, decode_cursor, page_by_id, page_params, read_id
from app.schemas import MAX_ID
from connectors.chat import ChatMessage

router = APIRouter(tags=["chat"])

# Failures only, as the telephony webhooks: chat tools post from shared addresses, so one
# organization's stale secret must not slow the others' signed deliveries.
OpenLimit = Depends(ratelimit.open_endpoint(401))


async def _raw_body(request: Request) -> bytes:
    """The body exactly as sent: what the signature covers."""
    return await request.body()


def _sender_org(
    request: Request,
    session: SessionDep,
    credentials: Credentials,
    body: Annotated[bytes, Depends(_raw_body)],
    org: Annotated[
        int | None,
        Query(ge=1, le=MAX_ID, description="the organization's id, for a signed request"),
    ] = None,
    x_tally_timestamp: Annotated[str | None, Header(description="unix seconds")] = None,
    x_tally_signature: Annotated[
        str | None, Header(description="sha256=<hex HMAC-SHA256 of '{timestamp}.{body}'>")
    ] = None,
) -> int:
    """The organization, once the request is proven to come from it: an admin's API key, or
    the signature of the organization's webhook secret (POST /org/telephony/webhook-secret).
    Checked before the body is read as messages: an unsigned request learns nothing of the
    payload's shape."""
    if credentials is not None:
        caller = current_user(request, session, credentials)
        require_role(caller, Role.admin)
        if org is not None and org != caller.org_id:
            raise Forbidden("the API key is of another organization than ?org=")
        return caller.org_id
    if org is None:
        raise Unauthorized("send an admin API key, or sign the request and name ?org=")
    return signed_by(session, org, x_tally_timestamp, x_tally_signature, body).id


@router.post(
    "/activities/ingest/chat",
    summary="Record chat messages of one channel from any chat tool (signed, or an admin key)",
    description="Messages are identified by (source, channel_id, id): posting them again, "
    "with any content, changes nothing. Conversations and their chat_conversation "
    f"activities follow semantics §11. At most {schemas.MAX_MESSAGES} messages and "
    f"{schemas.MAX_PARTICIPANTS} participants per request. Signing: docs/chat.md.",
    dependencies=[OpenLimit],
)
def ingest_chat(
    data: schemas.ChatIngest,
    session: SessionDep,
    org_id: Annotated[int, Depends(_sender_org)],
) -> schemas.ChatIngestResult:
    result = service.ingest(
        session,
        org_id,
        source=data.source,
        channel_id=data.channel_id,
        messages=[ChatMessage(m.id, m.sender, m.sent_at, m.text_length) for m in data.messages],
        participants=data.participants,
        name=data.channel_name,
    )
    return schemas.ChatIngestResult(
        stored=result.stored,
        duplicates=result.duplicates,
        activities_added=result.activities_added,
        activities_removed=result.activities_removed,
        activities_changed=result.activities_moved,
    )


@router.get(
    "/chat/channels",
    summary="The organization's chat channels, newest first, with what was captured (admin)",
    description="Every conversation place Tally holds messages of, whatever brought it: a "
    "Slack connection, or a tool posting to POST /activities/ingest/chat. Message text is "
    "never kept, so none is shown.",
)
def list_chat_channels(
    session: SessionDep,
    caller: CurrentUser,
    paging: Annotated[PageParams, Depends(page_params)],
    source: Annotated[
        str | None, Query(pattern=schemas.SOURCE_PATTERN, description="one source only")
    ] = None,
) -> Page[schemas.ChannelRead]:
    require_role(caller, Role.admin)
    before = decode_cursor(paging.cursor, read_id)
    rows = channels.page(
        session, caller.org_id, source=source, before=before, limit=paging.limit + 1
    )
    return page_by_id(rows, paging.limit)


@router.get("/org/chat-settings", summary="The organization's chat settings (any member)")
def read_chat_settings(session: SessionDep, caller: CurrentUser) -> schemas.ChatSettingsBody:
    return service.settings_of(session, caller.org_id)


@router.put(
    "/org/chat-settings",
    summary="Replace the chat settings; a field left out takes its default (admin)",
    description="A new gap derives every chat conversation again, in the same request.",
)
def replace_chat_settings(
    data: schemas.ChatSettingsBody, session: SessionDep, caller: CurrentUser
) -> schemas.ChatSettingsBody:
    return service.replace_settings(session, caller, data)
