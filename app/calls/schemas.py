"""The generic call-log payload and what the webhooks answer."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from app.schemas import JSON_INTEGER, LINE_PATTERN, NAME_PATTERN, Moment

CallStatus = Literal["completed", "no-answer", "busy", "failed", "canceled"]


class GenericCall(BaseModel):
    """One finished call, as a phone system reports it to `POST /calls/webhook/generic`."""

    model_config = ConfigDict(populate_by_name=True, extra="ignore")

    id: str = Field(
        min_length=1,
        max_length=256,
        pattern=NAME_PATTERN,
        description="the phone system's call id",
    )
    direction: Literal["outbound", "inbound"]
    from_: str = Field(
        alias="from", min_length=1, max_length=64, pattern=NAME_PATTERN, examples=["+32470123456"]
    )
    to: str = Field(min_length=1, max_length=64, pattern=NAME_PATTERN, examples=["+3225551234"])
    started_at: Moment = Field(description="ISO 8601 with offset")
    duration_seconds: Annotated[int, Field(ge=0, le=7 * 86400), JSON_INTEGER]
    status: CallStatus
    user_email: str | None = Field(
        None,
        max_length=320,
        pattern=LINE_PATTERN,
        description="the rep's address, when the number is not theirs",
    )


class WebhookResult(BaseModel):
    status: Literal["recorded", "duplicate", "ignored"] = Field(
        description="recorded: a new call; duplicate: the call was already recorded (the same "
        "call again, or the same call from the other source within 5 minutes); ignored: "
        "nothing stored (see reason)"
    )
    activity_id: int | None = None
    reason: str | None = None
