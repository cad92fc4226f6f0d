"""Organizations, teams, users and API keys as the API reads and writes them."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import phonenumbers
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr

from app.deals.schemas import Currency
from app.models import Role

Weekday = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}$")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}$")


def _domain(value: str) -> str:
    value = value.strip().lower().rstrip(".")
    if not _DOMAIN.match(value):
        raise ValueError(f"{value!r} is not a domain name")
    return value


def _email(value: str) -> str:
    value = value.strip().lower()
    if not _EMAIL.match(value) or not _DOMAIN.match(value.rsplit("@", 1)[1]):
        raise ValueError(f"{value!r} is not an email address")
    return value


_HOST_DEPENDENT_ZONES = frozenset({"localtime", "factory", "posixrules"})


def _timezone(value: str) -> str:
    lowered = value.lower()
    if (
        len(value) > 64
        or lowered in _HOST_DEPENDENT_ZONES
        or lowered.startswith(("posix/", "right/"))
    ):
        raise ValueError(f"{value[:64]!r} is not an IANA time zone")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError) as error:
        raise ValueError(f"{value[:64]!r} is not an IANA time zone") from error
    return value


def _region(value: str) -> str:
    value = value.strip().upper()
    if value not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(f"{value!r} is not an ISO 3166 country code with a numbering plan")
    return value


Domain = Annotated[str, AfterValidator(_domain)]
Email = Annotated[str, AfterValidator(_email)]
TimeZone = Annotated[str, AfterValidator(_timezone)]
Name = Annotated[str, Field(min_length=1, max_length=200)]
# Normalized to E.164 by the service, with the organization's default region.
PhoneText = Annotated[str, Field(min_length=1, max_length=64, examples=["+32 470 12 34 56"])]
Region = Annotated[str, AfterValidator(_region)]
PHONES_DOC = (
    "the user's phone numbers (matched against telephony call logs), stored in E.164; "
    "numbers without + are read in the organization's telephony default_region"
)


class OrgCreate(BaseModel):
    name: Name
    domains: list[Domain] = Field(min_length=1, max_length=50)
    timezone: TimeZone = Field(examples=["Europe/Brussels"])
    week_start: Weekday = "monday"
    fiscal_year_start_month: int = Field(1, ge=1, le=12)
    admin_email: Email | None = Field(
        None, description="the first admin's address; default admin@ the first domain"
    )
    admin_name: Name = "Administrator"
    currency: Currency = Field("EUR", description="ISO 4217: the currency it reports in")


class OrgUpdate(BaseModel):
    name: Name | None = None
    domains: list[Domain] | None = Field(None, min_length=1, max_length=50)
    timezone: TimeZone | None = None
    week_start: Weekday | None = None
    fiscal_year_start_month: int | None = Field(None, ge=1, le=12)
    currency: Currency | None = Field(
        None, description="only while the organization has no deals and no exchange rates"
    )


class OrgRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    domains: list[str]
    timezone: str
    week_start: str
    fiscal_year_start_month: int
    currency: str


class OrgCreated(OrgRead):
    admin_api_key: str = Field(description="shown once; store it now")


class TeamCreate(BaseModel):
    name: Name
    manager_id: int | None = None


class TeamRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    manager_id: int | None


class UserCreate(BaseModel):
    email: Email
    name: Name
    role: Role
    team_id: int | None = None
    aliases: list[Email] = Field(default_factory=list, max_length=50)
    phones: list[PhoneText] = Field(default_factory=list, max_length=10, description=PHONES_DOC)


class UserUpdate(BaseModel):
    name: Name | None = None
    role: Role | None = None
    team_id: int | None = None
    aliases: list[Email] | None = Field(None, max_length=50)
    phones: list[PhoneText] | None = Field(None, max_length=10, description=PHONES_DOC)


class Me(BaseModel):
    id: int
    email: str
    name: str
    role: Role
    team_id: int | None
    org_id: int


class UserRead(BaseModel):
    id: int
    email: str
    name: str
    role: Role
    team_id: int | None
    aliases: list[str]
    phones: list[str] = Field(description="E.164")
    created_at: datetime
    active: bool = Field(
        description="false once deactivated (DELETE /users/{id}): kept for the history"
    )
    deactivated_at: datetime | None = Field(description="when the user was deactivated")


class UserCreated(UserRead):
    api_key: str = Field(description="shown once; store it now")


class ApiKeyCreated(BaseModel):
    api_key: str = Field(description="shown once; store it now")


class TelephonyRead(BaseModel):
    """The organization's telephony settings; secrets are never shown, only whether set."""

    twilio_account_sid: str | None
    default_region: str | None = Field(description="ISO country for numbers written without +")
    twilio_auth_token_set: bool
    webhook_secret_set: bool
    generic_webhook_path: str = Field(description="POST here, signed with the webhook secret")
    twilio_webhook_path: str = Field(description="Twilio's status callback URL (path)")


class TelephonyUpdate(BaseModel):
    """Fields left out are unchanged; null clears one."""

    twilio_account_sid: str | None = Field(None, pattern=r"^AC[0-9a-fA-F]{32}$")
    twilio_auth_token: SecretStr | None = Field(
        None, min_length=8, max_length=256, description="write-only: never shown again"
    )
    default_region: Region | None = Field(None, examples=["BE"])


class WebhookSecretCreated(BaseModel):
    webhook_secret: str = Field(description="shown once; store it in the phone system now")
