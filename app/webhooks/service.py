"""Webhooks of an organization, for its admins: where a webhook may point, the signing
secret, and the deliveries log."""

from __future__ import annotations

import base64
import ipaddress
import secrets
from urllib.parse import urlsplit

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from app.access import require_role
from app.config import settings
from app.errors import Conflict, Forbidden, NotFound, Unprocessable
from app.models import Role, User
from app.security import decrypt_secret, encrypt_secret
from app.webhooks.models import DeliveryStatus, Webhook, WebhookDelivery, WebhookStatus
from connectors.netguard import Allowed, BlockedAddress, check_host

# Svix (the specification's reference) allows any number; a few receivers per organization
# is what an integration needs, and each one multiplies every announcement's rows
MAX_WEBHOOKS = 20
# 32 random bytes: the specification asks for 24 to 64
SECRET_BYTES = 32


def new_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def signing_secret(hook: Webhook) -> str:
    return str(decrypt_secret(hook.secret)["secret"])


def allowed_private(host: str) -> bool:
    """Whether the operator allowed this host (by name, or an address in an allowed network)."""
    rules = Allowed.parse(settings.allowed_private_hosts)
    if rules.host(host):
        return True
    try:
        return rules.address(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return False


def check_url(url: str) -> str:
    """The URL as stored, or a 422 (its shape) or 403 (where it points: the instance's policy,
    refused as a firewall would, as connections' hosts are)."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname or "", parts.port
    except ValueError:
        raise Unprocessable("url: not a valid URL (a port from 0 to 65535?)") from None
    if not host:
        raise Unprocessable("url: no host")
    if parts.username is not None or parts.password is not None:
        raise Unprocessable("url: no user or password in it (it is shown to every admin)")
    if parts.fragment:
        raise Unprocessable("url: no #fragment (it is never sent)")
    if parts.scheme == "http" and not allowed_private(host):
        raise Unprocessable(
            "url: https only; http only to a host allowed with TALLY_ALLOWED_PRIVATE_HOSTS"
        )
    if parts.scheme not in ("http", "https"):
        raise Unprocessable("url: https only")
    try:
        check_host(
            host, port or (443 if parts.scheme == "https" else 80), settings.allowed_private_hosts
        )
    except BlockedAddress as error:
        raise Forbidden(f"url: {error}") from None
    except (OSError, UnicodeError):
        pass  # not resolvable now: checked again before every delivery
    return url


def create(session: Session, caller: User, url: str, events: list[str]) -> tuple[Webhook, str]:
    require_role(caller, Role.admin)
    url = check_url(url)
    count = session.scalar(select(func.count()).where(Webhook.org_id == caller.org_id))
    if (count or 0) >= MAX_WEBHOOKS:
        raise Conflict(f"the organization has {MAX_WEBHOOKS} webhooks already (the limit)")
    secret = new_secret()
    hook = Webhook(
        org_id=caller.org_id,
        url=url,
        events=events,
        secret=encrypt_secret({"secret": secret}),
        status=WebhookStatus.active,
        last_seq=0,
    )
    session.add(hook)
    session.flush()
    return hook, secret


def visible(session: Session, caller: User, webhook_id: int) -> Webhook:
    """The organization's webhook, for an admin; 404 for another organization's, whoever asks
    (as every id route answers), 403 for a manager or a rep."""
    hook = session.get(Webhook, webhook_id)
    if hook is None or hook.org_id != caller.org_id:
        raise NotFound(f"webhook {webhook_id} not found")
    require_role(caller, Role.admin)
    return hook


def page(session: Session, caller: User, after: int | None, limit: int) -> list[Webhook]:
    require_role(caller, Role.admin)
    query = select(Webhook).where(Webhook.org_id == caller.org_id)
    if after is not None:
        query = query.where(Webhook.id > after)
    return list(session.scalars(query.order_by(Webhook.id).limit(limit)))


def remove(session: Session, caller: User, webhook_id: int) -> None:
    """Delete the webhook, its queue and its log (what is pending is never sent)."""
    hook = visible(session, caller, webhook_id)
    session.execute(delete(WebhookDelivery).where(WebhookDelivery.webhook_id == hook.id))
    session.delete(hook)


def deliveries(
    session: Session,
    caller: User,
    webhook_id: int,
    *,
    status: DeliveryStatus | None,
    before: int | None,
    limit: int,
) -> list[WebhookDelivery]:
    """Newest first (a log is read from its end); `before`: the `seq` of the previous page's
    last row. A webhook's rows are numbered in the order of their ids, and (webhook_id, seq)
    is indexed, with and without the status."""
    hook = visible(session, caller, webhook_id)
    query = select(WebhookDelivery).where(WebhookDelivery.webhook_id == hook.id)
    if status is not None:
        query = query.where(WebhookDelivery.status == status)
    if before is not None:
        query = query.where(WebhookDelivery.seq < before)
    return list(session.scalars(query.order_by(WebhookDelivery.seq.desc()).limit(limit)))
