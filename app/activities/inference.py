"""Pure: what one message means for the organization (semantics §1–3). No session, no clock."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from connectors.base import Address, RemoteMessage

Kind = Literal["email", "automated", "calendar", "internal", "unrelated"]

_NO_REPLY_LOCALS = frozenset(
    {"noreply", "donotreply", "mailerdaemon", "postmaster", "bounce", "bounces"}
)
_BULK_PRECEDENCE = frozenset({"bulk", "list", "junk"})
# Subject prefixes of auto-replies; only trusted together with X-Auto-Response-Suppress,
# which Outlook also puts on ordinary mail.
_AUTO_REPLY_SUBJECT = re.compile(
    r"^\s*(automatic reply|auto[- ]?reply|out of (the )?office|autoreply|"
    r"abwesenheitsnotiz|réponse automatique|respuesta automática|risposta automatica)\s*:",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class Directory:
    """The organization as inference needs it: internal domains and every user's addresses."""

    internal_domains: frozenset[str]
    user_by_address: Mapping[str, int]  # lower-cased address -> user id
    version: int = 0  # the organization's directory_version it was read at

    def user_of(self, email: str) -> int | None:
        return self.user_by_address.get(email.lower())

    def is_internal(self, email: str) -> bool:
        domain = email.rsplit("@", 1)[-1].lower()
        return any(domain == d or domain.endswith("." + d) for d in self.internal_domains)

    def is_external(self, email: str) -> bool:
        return not self.is_internal(email) and self.user_of(email) is None


@dataclass(frozen=True, slots=True)
class EmailInference:
    kind: Kind
    reason: str  # why: "sent", "received", or why nothing counts
    sent_by: int | None = None  # the user an email_sent belongs to
    received_by: tuple[int, ...] = ()  # the users an email_received belongs to
    contacts: tuple[Address, ...] = ()  # external people linked to those activities


def message_key(message: RemoteMessage) -> str:
    """The message's identity: its Message-ID, else a hash of sender, date, subject, recipients."""
    if message.message_id:
        return "mid:" + message.message_id
    recipients = sorted(a.email for a in (*message.to, *message.cc))
    sender = message.sender.email if message.sender else ""
    basis = "\x1f".join([sender, message.date_header, message.subject, *recipients])
    return "hash:" + hashlib.sha256(basis.encode("utf-8", "replace")).hexdigest()


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "replace")).hexdigest()


def _is_no_reply(email: str) -> bool:
    local = email.split("@", 1)[0].lower().split("+", 1)[0]
    return re.sub(r"[._-]", "", local) in _NO_REPLY_LOCALS


def automated_reason(message: RemoteMessage) -> str | None:
    """Why a message is automated (semantics §2), or None when a person wrote it."""
    headers = message.headers
    auto_submitted = headers.get("auto-submitted")
    if auto_submitted is not None and auto_submitted.split(";")[0].strip().lower() != "no":
        return "auto-submitted"
    if headers.get("precedence", "").strip().lower() in _BULK_PRECEDENCE:
        return "bulk-precedence"
    if "list-id" in headers or "list-unsubscribe" in headers:
        return "mailing-list"
    if message.sender is not None and _is_no_reply(message.sender.email):
        return "no-reply-sender"
    if message.content_type == "multipart/report":
        return "delivery-report"
    if "x-autoreply" in headers or "x-autorespond" in headers:
        return "auto-reply"
    if "x-auto-response-suppress" in headers and _AUTO_REPLY_SUBJECT.match(message.subject):
        return "auto-reply"
    return None


def infer_email(message: RemoteMessage, directory: Directory, *, owner_id: int) -> EmailInference:
    """The activities one copy of a message implies, seen from the mailbox of user `owner_id`."""
    reason = automated_reason(message)
    if reason is not None:
        return EmailInference("automated", reason)
    if message.calendar_method is not None:
        return EmailInference("calendar", f"calendar-{message.calendar_method.lower()}")
    if message.sender is None:
        return EmailInference("unrelated", "no-sender")
    recipients = (*message.to, *message.cc, *message.bcc)
    sender_user = directory.user_of(message.sender.email)
    if sender_user is not None:
        external = tuple(a for a in recipients if directory.is_external(a.email))
        if not external:
            return EmailInference("internal", "internal-only")
        return EmailInference("email", "sent", sent_by=sender_user, contacts=external)
    if directory.is_internal(message.sender.email):
        return EmailInference("internal", "internal-sender")
    users = {u for a in recipients if (u := directory.user_of(a.email)) is not None}
    if message.folder_role != "sent":  # a copy in a user's own mailbox was delivered to them
        users.add(owner_id)
    if not users:
        return EmailInference("unrelated", "no-user-recipient")
    return EmailInference(
        "email", "received", received_by=tuple(sorted(users)), contacts=(message.sender,)
    )
