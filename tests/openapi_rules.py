"""The rules the OpenAPI can only state in words, applied to a schema-valid request.

JSON Schema says what each field accepts on its own; it cannot say that a range does not end
before it starts, that a cursor is one the API made, or that a deal's stage is one of the
organization's pipeline *now*. The API states those rules in the descriptions and answers a
request that breaks one with a 400/422 (the request contradicts itself) or a 409 (it
contradicts the stored data). Schemathesis expects every schema-valid request to be accepted
(or refused for want of a key, a role, a row, or for a conflict), so before a positive
request is sent, `Rules.apply` keeps it within these rules, reading the current state
through the API where a rule depends on it. A negative request is left as generated.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi.testclient import TestClient

# A number valid in its country's numbering plan: the pattern states the shape only.
VALID_PHONE = "+32 470 12 34 56"
# Mail and calendar connections (their routes, OAuth and push): the tests check them apart,
# so that what fails there is reported apart from the rest of the API.
CONNECTIONS = ("/api/v1/connections", "/api/v1/push/")


def is_connection(path: str) -> bool:
    return path.startswith(CONNECTIONS)


class Rules:
    def __init__(self, client: TestClient, headers: dict[str, str]) -> None:
        self.client = client
        self.headers = headers
        self.caller = client.get("/api/v1/users/me", headers=headers).json()["id"]

    def apply(self, case: Any) -> None:
        judge_as_sent(case)
        if case.meta is None or not case.meta.generation.mode.is_positive:
            return
        if case.query:
            query_rules(case.query)
        route = (case.method.upper(), case.operation.path)
        self.keep_the_caller(case, route)
        if isinstance(case.body, dict):
            body_rules(case.body)
            if route[1].startswith("/api/v1/deals"):
                self.deal_rules(case, route)
            if route == ("POST", "/api/v1/webhooks"):
                webhook_rules(case.body)

    def keep_the_caller(self, case: Any, route: tuple[str, str]) -> None:
        """The caller's own key keeps working, or every later request would be a 401: a
        request that would deactivate or demote the caller is sent for a user that does not
        exist (the last admin's refusals are tested in tests/users)."""
        if route[1] != "/api/v1/users/{user_id}" or route[0] not in ("DELETE", "PATCH"):
            return
        if case.path_parameters.get("user_id") != self.caller:
            return
        body = case.body if isinstance(case.body, dict) else {}
        if route[0] == "DELETE" or body.get("role") not in (None, "admin"):
            case.path_parameters = {**case.path_parameters, "user_id": 2**31 - 1}

    def _get(self, path: str) -> Any:
        response = self.client.get(path, headers=self.headers)
        return response.json() if response.status_code == 200 else None

    def deal_rules(self, case: Any, route: tuple[str, str]) -> None:
        """A deal's stage is one of the pipeline's, its currency has a rate in force, an open
        deal has a stage and no closed_at, a closed one does not close before it was created
        (semantics §8): read over the deal as it is stored, for a PATCH."""
        body = case.body
        current: dict[str, Any] | None = None
        if route == ("PATCH", "/api/v1/deals/{deal_id}"):
            current = self._get(f"/api/v1/deals/{case.path_parameters['deal_id']}")
            if current is None:
                return  # a 404 whatever the body says
        elif route != ("POST", "/api/v1/deals"):
            return
        pipeline, org = self._get("/api/v1/pipeline/stages"), self._get("/api/v1/org")
        stages = [s["name"] for s in pipeline["stages"]]
        if "currency" in body:
            body["currency"] = org["currency"]  # the one currency that always has a rate
        state = {**(current or {"status": "open", "stage": None}), **body}
        if body.get("stage") is not None and body["stage"].strip() not in stages:
            body["stage"] = state["stage"] = stages[0]
        if state["status"] == "open":
            body.pop("closed_at", None)
            if (state.get("stage") or "").strip() not in stages:
                body["stage"] = stages[0]
            return
        if "closed_at" in body and body["closed_at"] is None:
            del body["closed_at"]  # a won or lost deal keeps a closed_at
        # it closes (at the closed_at given, the one it has, or now) not before it was created
        created = _moment(state.get("created_at"))
        closed = _moment(body.get("closed_at"))
        if closed is None and current is not None and current["status"] != "open":
            closed = _moment(current.get("closed_at"))
        if created is None:  # created now: closed now too, unless later
            if closed is not None and closed < datetime.now(UTC):
                body.pop("closed_at", None)
        elif created > (closed or datetime.now(UTC)):
            body["closed_at"] = state["created_at"]


def judge_as_sent(case: Any) -> None:
    """Have schemathesis judge each part of the request again, as it goes on the wire: a
    negative generator sometimes draws a value that is sent as a valid one (the string
    "true" for a boolean query parameter, or ["true"], sent as `?active=true` too), and a
    case negative only through a header the test then sets is positive. (Schemathesis
    re-validates a part once it is assigned.)"""
    if isinstance(case.query, dict):
        arrays = {p.name for p in case.operation.query if p.raw_schema.get("type") == "array"}
        case.query = {
            k: v[0] if isinstance(v, list) and len(v) == 1 and k not in arrays else v
            for k, v in case.query.items()
        }
    for name in ("path_parameters", "body"):
        value = getattr(case, name)
        if isinstance(value, dict):
            setattr(case, name, value)


def _moment(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


def query_rules(query: dict[str, Any]) -> None:
    """A cursor is one the API made (any other is a 400); user_id and team_id are not given
    together, members=true only with team_id; a range does not end before it starts and
    spans at most 1,000 periods."""
    query.pop("cursor", None)
    if query.get("user_id") is not None and query.get("team_id") is not None:
        query.pop("team_id")
    if query.get("members") not in (None, False, "false") and query.get("team_id") is None:
        query.pop("members")
    start, end = query.get("start"), query.get("end")
    if isinstance(start, str) and isinstance(end, str):
        start, end = sorted((start, end))
        # within one year even daily periods stay under 1,000
        query["start"], query["end"] = start, min(end, start[:4] + "-12-31")


def webhook_rules(body: dict[str, Any]) -> None:
    """A webhook's URL parses as a URL with a host, holds no user, password or #fragment, and
    is https (http only to a host the operator allowed, which a generated name is not)."""
    if "url" in body:
        body["url"] = "https://hooks.example.com/tally"


def body_rules(body: dict[str, Any]) -> None:
    """Rules within one request body: a quota does not end before it starts, stage names are
    unique and a move goes to a stage of the new list, one rate per currency and day, and a
    phone number is valid in its country's numbering plan."""
    start, end = body.get("effective_from"), body.get("effective_to")
    if isinstance(start, str) and isinstance(end, str):
        body["effective_from"], body["effective_to"] = sorted((start, end))
    stages = body.get("stages")
    if isinstance(stages, list):
        first: dict[str, Any] = {}  # stage names are compared stripped, as the server does
        for stage in stages:
            if isinstance(stage, dict) and isinstance(stage.get("name"), str):
                first.setdefault(stage["name"].strip(), stage)
        body["stages"], names = list(first.values()), list(first)
        move = body.get("move")
        if isinstance(move, dict) and names:
            body["move"] = {k: v if v.strip() in names else names[0] for k, v in move.items()}
    rates = body.get("rates")
    if isinstance(rates, list):
        kept = {(r.get("currency"), r.get("effective_from")): r for r in rates}
        body["rates"] = list(kept.values())
    if isinstance(body.get("phones"), list) and body["phones"]:
        body["phones"] = [VALID_PHONE]
