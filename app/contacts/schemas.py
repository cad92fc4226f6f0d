"""Contacts and companies as the API reads and writes them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, BaseModel, Field

from app.schemas import LINE_PATTERN, NAME_PATTERN

ContactName = Annotated[
    str, Field(min_length=1, max_length=255, pattern=NAME_PATTERN), AfterValidator(str.strip)
]
Title = Annotated[str, Field(max_length=255, pattern=LINE_PATTERN), AfterValidator(str.strip)]
Phone = Annotated[
    str, Field(min_length=1, max_length=64, pattern=NAME_PATTERN), AfterValidator(str.strip)
]


class ContactRead(BaseModel):
    id: int
    name: str | None
    emails: list[str]
    phones: list[str]
    title: str | None
    company_id: int | None
    first_seen_at: datetime | None
    last_interaction_at: datetime | None


class ContactUpdate(BaseModel):
    """Fields a person sets; inference never overwrites them afterwards."""

    name: ContactName | None = Field(None, description="null clears it")
    title: Title | None = Field(None, description="null clears it")
    phones: list[Phone] | None = Field(None, max_length=10, description="null clears them")


class CompanyRead(BaseModel):
    id: int
    name: str
    domains: list[str]
    contact_count: int
    last_interaction_at: datetime | None
