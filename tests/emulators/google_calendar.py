"""The Calendar API of the Google emulator (tests/emulators/google.py): events.list with
singleEvents, sync tokens (410 once forgotten), events.watch and channels.stop."""

from __future__ import annotations

import json
import secrets
import time
from typing import TYPE_CHECKING, Any

from tests.emulators.google_common import Grant, event_time, google_error, parse_time

if TYPE_CHECKING:
    from tests.emulators.google import GoogleEmulator


def calendar_api(
    emulator: GoogleEmulator,
    method: str,
    parts: list[str],
    one: dict[str, str],
    grant: Grant,
    body: bytes,
) -> Any:
    user = grant.email
    if parts == ["channels", "stop"] and method == "POST":
        emulator.charge("calendar", user, "channels.stop")
        request = json.loads(body or b"{}")
        with emulator.lock:
            box = emulator.account(user)
            for channel in box.channels:
                if channel["id"] == request.get("id"):
                    channel["stopped"] = True
        return None
    if len(parts) < 3 or parts[0] != "calendars" or parts[2] != "events":
        raise google_error(404, "Not Found", "notFound")
    calendar = parts[1]
    if calendar not in ("primary", user):
        raise google_error(404, "Not Found", "notFound")
    if not any("calendar" in s for s in grant.scopes):
        raise google_error(
            403,
            "Request had insufficient authentication scopes.",
            "insufficientPermissions",
            "PERMISSION_DENIED",
        )
    with emulator.lock:
        box = emulator.account(user)
    if parts[3:] == ["watch"] and method == "POST":
        emulator.charge("calendar", user, "events.watch")
        request = json.loads(body or b"{}")
        expiration = int((time.time() + 7 * 86400) * 1000)
        channel = {**request, "resourceId": secrets.token_hex(6), "expiration": str(expiration)}
        with emulator.lock:
            box.channels.append(channel)
        return {
            "kind": "api#channel",
            "id": request["id"],
            "resourceId": channel["resourceId"],
            "resourceUri": f"{emulator.url}calendar/v3/calendars/{calendar}/events",
            "token": request.get("token"),
            "expiration": str(expiration),
        }
    if parts[3:]:
        raise google_error(404, "Not Found", "notFound")
    emulator.charge("calendar", user, "events.list")
    if one.get("singleEvents") != "true":
        raise google_error(
            400, "the emulator only expands series (singleEvents=true)", "badRequest"
        )
    with emulator.lock:
        token = one.get("syncToken")
        if token:
            if any(k in one for k in ("timeMin", "timeMax", "q", "orderBy", "updatedMin")):
                raise google_error(
                    400, "Sync token cannot be combined with those parameters", "invalid"
                )
            seq = int(token.removeprefix("sync-"))
            if seq < box.sync_floor:
                raise google_error(
                    410,
                    "Sync token is no longer valid, a full sync is required.",
                    "fullSyncRequired",
                )
            chosen = [e for i, e in box.events.items() if box.event_seq[i] > seq]
        else:
            low, high = one.get("timeMin"), one.get("timeMax")
            deleted = one.get("showDeleted") == "true"
            chosen = []
            for event in box.events.values():
                if event["status"] == "cancelled":
                    if deleted:
                        chosen.append(event)
                    continue
                start, end = event_time(event["start"]), event_time(event["end"])
                if low and end <= parse_time(low):
                    continue
                if high and start >= parse_time(high):
                    continue
                chosen.append(event)
        chosen.sort(key=lambda e: (box.event_seq[e["id"]], e["id"]))
        size = min(int(one.get("maxResults", 250)), 2500)
        offset = int(one.get("pageToken") or 0)
        page = chosen[offset : offset + size]
        answer: dict[str, Any] = {
            "kind": "calendar#events",
            "summary": box.email,
            "items": page,
        }
        if offset + size < len(chosen):
            answer["nextPageToken"] = str(offset + size)
        else:
            answer["nextSyncToken"] = f"sync-{box.calendar_seq}"
        return answer
