"""Activities as the API reads them."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from app.models import ActivityType


class Source(BaseModel):
    provider: str
    connection_id: int | None


class ActivityRead(BaseModel):
    id: int
    type: ActivityType
    occurred_at: datetime
    user_id: int
    contact_ids: list[int]
    company_ids: list[int]
    source: Source
    subject: str | None = None
