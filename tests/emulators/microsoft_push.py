"""Graph change-notification subscriptions in the Microsoft emulator: created, renewed
(PATCH) and deleted; an Outlook resource's subscription lives at most 10,080 minutes
(https://learn.microsoft.com/graph/api/resources/subscription#subscription-lifetime), its
notification URL must be https."""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.emulators.microsoft_common import Answer, User, graph_error, parse_iso


class SubscriptionSide:
    subscriptions: dict[str, dict[str, Any]]

    def subscription(self, user: User, method: str, path: str, body: bytes) -> Answer:
        parts = path.split("/")
        if method == "POST" and len(parts) == 3:
            request = json.loads(body or b"{}")
            missing = {
                "changeType",
                "notificationUrl",
                "resource",
                "expirationDateTime",
            } - set(request)
            if missing:
                return 400, {}, graph_error("InvalidRequest", f"missing {sorted(missing)}")
            if not request["notificationUrl"].startswith("https://"):
                return 400, {}, graph_error("InvalidRequest", "notificationUrl must be https")
            expiry = parse_iso(request["expirationDateTime"])
            if expiry > datetime.now(UTC) + timedelta(minutes=10080):
                return 400, {}, graph_error("InvalidRequest", "expirationDateTime too far")
            sub_id = secrets.token_hex(8)
            self.subscriptions[sub_id] = {**request, "id": sub_id, "owner": user.email}
            return 201, {}, dict(self.subscriptions[sub_id])
        if len(parts) == 4:
            sub_id = parts[3]
            found = self.subscriptions.get(sub_id)
            if found is None or found["owner"] != user.email:
                return 404, {}, graph_error("ResourceNotFound", "subscription not found")
            if method == "PATCH":
                found["expirationDateTime"] = json.loads(body)["expirationDateTime"]
                found["renewals"] = found.get("renewals", 0) + 1
                return 200, {}, dict(found)
            if method == "DELETE":
                del self.subscriptions[sub_id]
                return 204, {}, None
        return 405, {}, graph_error("MethodNotAllowed", method)
