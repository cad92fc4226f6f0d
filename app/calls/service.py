"""Telephony calls: numbers, the organization's webhook secrets, and recording one call."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, Literal

import phonenumbers
import structlog
from sqlalchemy import String, select
from sqlalchemy import cast as sql_cast
from sqlalchemy.orm import Session

from app.activities import store
from app.activities.dedupe import duplicate_call
from app.activities.models import Activity
from app.calls.schemas import GenericCall, WebhookResult
from app.calls.signatures import BadSignature, check_generic
from app.contacts.models import Contact
from app.errors import Unauthorized, Unprocessable
from app.models import ActivityType, Organization, User, UserAddress
from app.security import SecretUnreadable, decrypt_secret

log = structlog.get_logger(__name__)

SOURCES = ("generic", "twilio")
MAX_CONTACTS = 10  # contacts linked to one call when several share the other party's number


# --- numbers ----------------------------------------------------------------------------------


def normalize_phone(raw: str, region: str | None) -> str | None:
    """E.164 for a valid number (`region` reads numbers written without +), else None."""
    text = raw.strip()
    if not text or len(text) > 64 or "\x00" in text:
        return None
    try:
        number = phonenumbers.parse(text, region if text[0] != "+" else None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def default_region(org: Organization) -> str | None:
    region = (org.telephony or {}).get("default_region")
    return region if isinstance(region, str) else None


def holds_number(column: Any, number: str) -> Any:
    """`column` (a JSON list of E.164 numbers) holds `number`: a match on its JSON text, which
    works alike on SQLite and PostgreSQL (E.164 has no LIKE wildcard)."""
    return sql_cast(column, String).like(f'%"{number}"%')


# --- secrets ----------------------------------------------------------------------------------

NO_SECRET = "unknown organization, or it has no secret for this webhook"


def secrets_of(org: Organization) -> dict[str, Any]:
    """The organization's telephony secrets; {} when none is set or they cannot be read."""
    if org.telephony_secret is None:
        return {}
    try:
        return decrypt_secret(org.telephony_secret)
    except SecretUnreadable:
        log.warning("telephony_secret_unreadable", org_id=org.id)
        return {}


def signed_by(
    session: Session, org_id: int, timestamp: str | None, signature: str | None, body: bytes
) -> Organization:
    """The organization whose webhook secret signed `body` (the generic scheme of
    docs/telephony.md, shared by the chat ingest); Unauthorized otherwise, the same answer
    for an unknown organization and one without a secret."""
    organization = session.get(Organization, org_id)
    secret = secrets_of(organization).get("webhook_secret") if organization else None
    if organization is None or not isinstance(secret, str) or not secret:
        raise Unauthorized(NO_SECRET)
    try:
        check_generic(secret, timestamp, signature, body, time.time())
    except BadSignature as error:
        raise Unauthorized(str(error)) from None
    return organization


# --- payloads ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CallLog:
    """One call as either webhook reports it."""

    source: str
    call_id: str
    direction: Literal["outbound", "inbound", "either"]  # either: try both sides for the rep
    from_number: str
    to_number: str
    started_at: datetime
    duration_seconds: int
    status: str
    user_email: str | None = None


def from_generic(call: GenericCall) -> CallLog:
    return CallLog(
        source="generic",
        call_id=call.id,
        direction=call.direction,
        from_number=call.from_,
        to_number=call.to,
        started_at=call.started_at.astimezone(UTC),
        duration_seconds=call.duration_seconds,
        status=call.status,
        user_email=call.user_email.strip().lower() if call.user_email else None,
    )


def _twilio_time(value: str, field: str) -> datetime:
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        moment = None
    if moment is None:
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise Unprocessable(f"{field}: not an RFC 2822 or ISO 8601 time") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def from_twilio(params: dict[str, str], now: datetime) -> CallLog:
    """A Twilio voice status callback: CallSid, From, To, Direction (inbound, outbound-api,
    outbound-dial), CallStatus, CallDuration (seconds, on the final callback) and Timestamp
    (RFC 2822, when the callback fired, so the call started CallDuration earlier)."""
    missing = [f for f in ("CallSid", "From", "To", "CallStatus") if not params.get(f)]
    if missing:
        raise Unprocessable(f"missing Twilio parameters: {', '.join(missing)}")
    sid = params["CallSid"]
    if len(sid) > 256:
        raise Unprocessable("CallSid: too long")
    raw_duration = params.get("CallDuration", "0").strip() or "0"
    if not raw_duration.isascii() or not raw_duration.isdigit() or len(raw_duration) > 7:
        raise Unprocessable("CallDuration: not a number of seconds")
    duration = int(raw_duration)
    if params.get("StartTime"):
        started = _twilio_time(params["StartTime"], "StartTime")
    elif params.get("Timestamp"):
        started = _twilio_time(params["Timestamp"], "Timestamp") - timedelta(seconds=duration)
    else:
        started = now - timedelta(seconds=duration)
    twilio_direction = params.get("Direction", "")
    direction: Literal["outbound", "inbound", "either"]
    if twilio_direction == "inbound":
        direction = "inbound"
    elif twilio_direction == "outbound-api":
        direction = "outbound"
    else:  # outbound-dial, the child leg of <Dial>: the rep may be on either side
        direction = "either"
    return CallLog(
        source="twilio",
        call_id=sid,
        direction=direction,
        from_number=params["From"],
        to_number=params["To"],
        started_at=started,
        duration_seconds=duration,
        status=params["CallStatus"],
    )


# --- recording --------------------------------------------------------------------------------


def source_key(source: str, call_id: str) -> str:
    return hashlib.sha256(f"{source}:{call_id}".encode()).hexdigest()


def _user_by_email(session: Session, org_id: int, email: str) -> int | None:
    return session.scalar(
        select(UserAddress.user_id).where(UserAddress.org_id == org_id, UserAddress.email == email)
    )


def _users_by_number(session: Session, org_id: int, number: str | None) -> list[int]:
    if number is None:
        return []
    query = select(User.id).where(User.org_id == org_id, holds_number(User.phones, number))
    return list(session.scalars(query.order_by(User.id)))


def _find_user(
    session: Session, org_id: int, call: CallLog, numbers: tuple[str | None, str | None]
) -> tuple[int | None, str | None, str]:
    """(user id, the other party's number, why not) for the call."""
    from_number, to_number = numbers
    if call.user_email:
        user_id = _user_by_email(session, org_id, call.user_email)
        if user_id is not None:
            other = to_number if call.direction != "inbound" else from_number
            return user_id, other, ""
    sides: list[tuple[str | None, str | None]] = []
    if call.direction in ("outbound", "either"):
        sides.append((from_number, to_number))
    if call.direction in ("inbound", "either"):
        sides.append((to_number, from_number))
    for mine, theirs in sides:
        users = _users_by_number(session, org_id, mine)
        if len(users) == 1:
            if theirs is not None and _users_by_number(session, org_id, theirs):
                return None, None, "an internal call between two users"
            return users[0], theirs, ""
        if len(users) > 1:
            return None, None, "the rep's number belongs to several users"
    return None, None, "no user has this number or address"


def _contacts(session: Session, org_id: int, number: str | None) -> list[tuple[int, str | None]]:
    if number is None:
        return []
    rows = session.execute(
        select(Contact.id, Contact.name)
        .where(Contact.org_id == org_id, holds_number(Contact.phones, number))
        .order_by(Contact.id)
        .limit(MAX_CONTACTS)
    )
    return [(row[0], row[1]) for row in rows]


def _existing(session: Session, org_id: int, user_id: int, key: str) -> int | None:
    return session.scalar(
        select(Activity.id).where(
            Activity.org_id == org_id,
            Activity.source_key == key,
            Activity.user_id == user_id,
            Activity.type == ActivityType.call,
        )
    )


def record_call(session: Session, org: Organization, call: CallLog) -> WebhookResult:
    """Store the call as one `call` activity of its rep, linked to the contacts who have the
    other party's number; idempotent on (source, call id), and merged with a call of the same
    rep and contact from the other source within 5 minutes."""
    if call.status != "completed" or call.duration_seconds <= 0:
        return WebhookResult(status="ignored", reason="only completed calls that lasted count")
    region = default_region(org)
    numbers = (normalize_phone(call.from_number, region), normalize_phone(call.to_number, region))
    user_id, other, why = _find_user(session, org.id, call, numbers)
    if user_id is None:
        return WebhookResult(status="ignored", reason=why)
    key = source_key(call.source, call.call_id)
    again = _existing(session, org.id, user_id, key)
    if again is not None:
        return WebhookResult(status="duplicate", activity_id=again, reason="already recorded")
    contacts = _contacts(session, org.id, other)
    contact_ids = [c for c, _ in contacts]
    same = duplicate_call(
        session, org.id, user_id, contact_ids, call.started_at, exclude_source_key=key
    )
    if same is not None:
        return WebhookResult(
            status="duplicate", activity_id=same, reason="the same call is already recorded"
        )
    named = next((name for _, name in contacts if name), None)
    subject = f"Call with {named or other or 'an unknown number'}"
    row = {
        "user_id": user_id,
        "type": ActivityType.call.value,
        "occurred_at": call.started_at,
        "source_key": key,
        "message_pk": None,
        "subject": subject,
        "connection_id": None,
        "provider": call.source,
    }
    ident = (key, user_id, ActivityType.call.value)
    added = store.add(session, org.id, [row], {ident: contact_ids})
    if not added.inserted:  # the same call, recorded meanwhile by a concurrent delivery
        raced = added.ids.get(ident)
        return WebhookResult(status="duplicate", activity_id=raced, reason="already recorded")
    activity_id = added.inserted[0]
    log.info(
        "telephony_call_recorded",
        org_id=org.id,
        source=call.source,
        activity_id=activity_id,
        contacts=len(contact_ids),
    )
    return WebhookResult(status="recorded", activity_id=activity_id)
