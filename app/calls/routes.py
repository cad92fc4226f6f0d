"""Call-log webhooks from phone systems: signed per organization, idempotent per call."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from fastapi import APIRouter, Depends, Header, Query, Request

from app import ratelimit
from app.calls import schemas, service
from app.calls.signatures import BadSignature, check_twilio
from app.deps import SessionDep
from app.errors import BadRequest, Unauthorized
from app.models import Organization
from app.schemas import MAX_ID

router = APIRouter(tags=["telephony"])

# Failures only (a bad signature, an unknown organization): phone systems call every
# organization's webhooks from shared addresses, so one organization's stale secret must not
# slow the others' signed calls.
OpenLimit = Depends(ratelimit.open_endpoint(401))
OrgParam = Annotated[int, Query(ge=1, le=MAX_ID, description="the organization's id (GET /org)")]


async def _raw_body(request: Request) -> bytes:
    """The body exactly as sent: what the signature covers."""
    return await request.body()


RawBody = Annotated[bytes, Depends(_raw_body)]


def _organization(session: SessionDep, org_id: int) -> Organization:
    org = session.get(Organization, org_id)
    if org is None:
        raise Unauthorized(service.NO_SECRET)
    return org


def _signed_generic(
    session: SessionDep,
    org: OrgParam,
    body: RawBody,
    x_tally_timestamp: Annotated[str | None, Header(description="unix seconds")] = None,
    x_tally_signature: Annotated[
        str | None, Header(description="sha256=<hex HMAC-SHA256 of '{timestamp}.{body}'>")
    ] = None,
) -> Organization:
    """The organization, once the request is proven to come from it (before the body is read
    as a call: an unsigned request learns nothing about the payload's shape)."""
    return service.signed_by(session, org, x_tally_timestamp, x_tally_signature, body)


@router.post(
    "/calls/webhook/generic",
    summary="Record a finished call from any phone system (signed JSON; see docs/telephony.md)",
    dependencies=[OpenLimit],
)
def generic_webhook(
    call: schemas.GenericCall,
    session: SessionDep,
    organization: Annotated[Organization, Depends(_signed_generic)],
) -> schemas.WebhookResult:
    return service.record_call(session, organization, service.from_generic(call))


def _candidate_urls(request: Request) -> list[str]:
    """The URL as received and, behind a proxy, as the caller addressed it."""
    url = str(request.url)
    urls = [url]
    proto = request.headers.get("x-forwarded-proto", "").split(",")[0].strip()
    host = request.headers.get("x-forwarded-host", "").split(",")[0].strip()
    if proto in ("http", "https") or host:
        parts = urlsplit(url)
        rebuilt = urlunsplit(
            parts._replace(scheme=proto or parts.scheme, netloc=host or parts.netloc)
        )
        if rebuilt != url:
            urls.append(rebuilt)
    return urls


@router.post(
    "/calls/webhook/twilio",
    summary="Record a finished call from a Twilio voice status callback (form-encoded, signed)",
    description="The body is Twilio's application/x-www-form-urlencoded status callback; the "
    "X-Twilio-Signature header is checked with the organization's Twilio auth token.",
    dependencies=[OpenLimit],
)
def twilio_webhook(
    request: Request,
    session: SessionDep,
    org: OrgParam,
    body: RawBody,
    x_twilio_signature: Annotated[str | None, Header()] = None,
) -> schemas.WebhookResult:
    organization = _organization(session, org)
    token = service.secrets_of(organization).get("twilio_auth_token")
    if not isinstance(token, str) or not token:
        raise Unauthorized(service.NO_SECRET)
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, max_num_fields=500)
    except (UnicodeDecodeError, ValueError):
        raise BadRequest("the body is not a form-encoded Twilio status callback") from None
    try:
        check_twilio(token, _candidate_urls(request), pairs, x_twilio_signature)
    except BadSignature as error:
        raise Unauthorized(str(error)) from None
    params = dict(pairs)
    account = (organization.telephony or {}).get("twilio_account_sid")
    if account and params.get("AccountSid") and params["AccountSid"] != account:
        raise Unauthorized("the callback is for another Twilio account")
    call = service.from_twilio(params, datetime.now(UTC))
    return service.record_call(session, organization, call)
