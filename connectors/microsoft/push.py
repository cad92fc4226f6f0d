"""Graph change-notification subscriptions: a trigger for the delta sync, never a data source.

A connector keeps its subscriptions' state in its own cursor JSON: for each resource
{"id", "expires", "renewed", "terms"} (or {"error", "retry"} after a failed attempt). During a
pull it creates the missing ones and renews the others (PATCH, which also finds the ones Graph
removed: 404 -> created again) once an hour or when they would expire within a day. A PATCH
keeps a subscription's notification URL and clientState, so one made on other terms (a new
public URL, a rotated push secret: `push_terms`) is deleted and made again instead. A
subscription that cannot be made (or renewed) never fails the sync: the error is kept in the
cursor and tried again an hour later, and polling stays the floor.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.base import ConnectorError, RateLimited, push_terms
from connectors.microsoft.http import GraphClient, NotFound

State = dict[str, Any]


@dataclass(frozen=True, slots=True)
class PushTarget:
    notification_url: str  # https://tally.example/api/v1/push/microsoft
    client_state: str  # echoed in every notification; the app verifies it
    lifetime: timedelta = timedelta(days=3)  # Outlook resources allow < 7 days
    renew_every: timedelta = timedelta(hours=1)
    retry_after_error: timedelta = timedelta(hours=1)
    renew_requested: datetime | None = None  # a lifecycle notification asked for a renewal


def _when(value: object) -> datetime | None:
    try:
        return datetime.fromisoformat(str(value))
    except ValueError:
        return None


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.0000000Z")


def ensure(
    client: GraphClient,
    target: PushTarget | None,
    resource: str,
    state: State | None,
    *,
    now: datetime,
) -> State | None:
    """The subscription state for `resource` after creating or renewing it if due."""
    if target is None:
        return None  # push off: a leftover subscription simply expires
    state = dict(state or {})
    if "error" in state:
        retry = _when(state.get("retry"))
        if retry is not None and retry > now:
            return state
        state = {}
    expires, renewed = _when(state.get("expires")), _when(state.get("renewed"))
    terms = push_terms(target.notification_url, target.client_state)
    if state.get("id") and state.get("terms", terms) != terms:  # made on other terms
        with contextlib.suppress(ConnectorError):  # else it expires by itself
            client.request("DELETE", f"subscriptions/{state['id']}")
        state = {}
    if (
        state.get("id")
        and state.get("resource") == resource
        and expires is not None
        and renewed is not None
        and now - renewed < target.renew_every
        and (target.renew_requested is None or renewed >= target.renew_requested)
        and expires - now > timedelta(days=1)
    ):
        return state
    expiry = now + target.lifetime
    try:
        if state.get("id") and state.get("resource") == resource:
            try:
                client.request(
                    "PATCH",
                    f"subscriptions/{state['id']}",
                    json={"expirationDateTime": _stamp(expiry)},
                )
                renewal = {"expires": expiry.isoformat(), "renewed": now.isoformat()}
                return {**state, **renewal, "terms": terms}
            except NotFound:
                pass  # removed by Graph (subscriptionRemoved): make a new one
        made = client.request(
            "POST",
            "subscriptions",
            json={
                "changeType": "created,updated,deleted",
                "notificationUrl": target.notification_url,
                "lifecycleNotificationUrl": target.notification_url,
                "resource": resource,
                "expirationDateTime": _stamp(expiry),
                "clientState": target.client_state,
            },
        )
    except RateLimited:
        raise
    except ConnectorError as error:
        return {"error": str(error)[:300], "retry": (now + target.retry_after_error).isoformat()}
    return {
        "id": str((made or {}).get("id", "")),
        "resource": resource,
        "expires": expiry.isoformat(),
        "renewed": now.isoformat(),
        "terms": terms,
    }
