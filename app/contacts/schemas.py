"""Contacts and companies as the API reads and writes them."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


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

    name: str | None = Field(None, min_length=1, max_length=255)
    title: str | None = Field(None, max_length=255)
    phones: list[str] | None = Field(None, max_length=10)


class CompanyRead(BaseModel):
    id: int
    name: str
    domains: list[str]
    contact_count: int
    last_interaction_at: datetime | None
