"""Organizations, teams, users and API keys as the API reads and writes them."""

from __future__ import annotations

from datetime import datetime
from importlib import resources
from typing import Annotated, Literal

import phonenumbers
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, WithJsonSchema

from app.deals.schemas import Currency
from app.models import Role
from app.schemas import JSON_INTEGER, Id, Name

Weekday = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]

# Each rule below is a pattern or a list in the OpenAPI, and the server checks exactly that:
# what a client can read there is what it gets accepted.

# A domain name: dot-separated labels of letters, digits and inner hyphens, the last one of
# 2 or more characters; any case, one final dot allowed (both normalized away).
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOST = rf"(?:{_LABEL}\.)+[A-Za-z0-9-]{{2,63}}"
DOMAIN_PATTERN = rf"^{_HOST}\.?$"
# An address: a local part of up to 64 characters without "@", white space or a control
# character, then "@" and a domain name (the explicit list, not \s: regular expression
# engines disagree on which characters \s matches).
_LOCAL = r"[^@\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]{1,64}"
EMAIL_PATTERN = rf"^{_LOCAL}@{_HOST}$"
# A phone number as people write it: digits, an optional leading +, spaces ( ) . / -
PHONE_PATTERN = r"^\+?[0-9 ()./-]*[0-9][0-9 ()./-]*$"


def _lower_domain(value: str) -> str:
    return value.lower().rstrip(".")


# The IANA zones of the tzdata package (a dependency, so the list does not depend on the
# host), without "Factory", which is no place's time.
TIME_ZONES = sorted(
    set(resources.files("tzdata").joinpath("zones").read_text().split()) - {"Factory"}
)
_TIME_ZONES = frozenset(TIME_ZONES)
REGIONS = sorted(phonenumbers.SUPPORTED_REGIONS)
_REGIONS = frozenset(REGIONS)


def _timezone(value: str) -> str:
    if value not in _TIME_ZONES:
        raise ValueError(f"{value[:64]!r} is not an IANA time zone (as the OpenAPI lists them)")
    return value


def _region(value: str) -> str:
    if value not in _REGIONS:
        raise ValueError(f"{value[:8]!r} is not an ISO 3166 country code with a numbering plan")
    return value


Domain = Annotated[
    str,
    Field(min_length=4, max_length=253, pattern=DOMAIN_PATTERN, examples=["acme.example"]),
    AfterValidator(_lower_domain),
]
Email = Annotated[
    str,
    Field(min_length=6, max_length=318, pattern=EMAIL_PATTERN, examples=["ana@acme.example"]),
    AfterValidator(str.lower),
]
TimeZone = Annotated[
    str,
    AfterValidator(_timezone),
    WithJsonSchema({"type": "string", "enum": TIME_ZONES, "examples": ["Europe/Brussels"]}),
]
Region = Annotated[
    str,
    AfterValidator(_region),
    WithJsonSchema({"type": "string", "enum": REGIONS, "examples": ["BE"]}),
]
Month = Annotated[int, Field(ge=1, le=12), JSON_INTEGER]
# Normalized to E.164 by the service, with the organization's default region.
PhoneText = Annotated[
    str,
    Field(min_length=1, max_length=64, pattern=PHONE_PATTERN, examples=["+32 470 12 34 56"]),
]
PHONES_DOC = (
    "the user's phone numbers (matched against telephony call logs), stored in E.164; "
    "numbers without + are read in the organization's telephony default_region; each must "
    "be a valid number of its country's numbering plan (else a 422)"
)


class OrgCreate(BaseModel):
    name: Name
    domains: list[Domain] = Field(min_length=1, max_length=50)
    timezone: TimeZone = Field(examples=["Europe/Brussels"])
    week_start: Weekday = "monday"
    fiscal_year_start_month: Month = 1
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
    fiscal_year_start_month: Month | None = None
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


class ReevaluationRead(BaseModel):
    """Where the re-derivation of activities after the last changes of users, aliases or
    internal domains stands (docs/reevaluation.md)."""

    model_config = ConfigDict(from_attributes=True)

    state: Literal["idle", "pending", "running"] = Field(
        description="running: a worker is deriving the affected mail and events again; "
        "pending: changes wait for a worker (`tally worker` runs the job); idle: nothing to do"
    )
    done: int = Field(description="messages and events of the current or last run derived again")
    total: int = Field(description="messages and events the current or last run has to derive")
    started_at: datetime | None = Field(description="when the current or last run started")
    finished_at: datetime | None = Field(description="when the last run ended; null while running")


class TeamCreate(BaseModel):
    name: Name
    manager_id: Id | None = None


class TeamRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    manager_id: int | None


class UserCreate(BaseModel):
    email: Email
    name: Name
    role: Role
    team_id: Id | None = None
    aliases: list[Email] = Field(default_factory=list, max_length=50)
    phones: list[PhoneText] = Field(default_factory=list, max_length=10, description=PHONES_DOC)


class UserUpdate(BaseModel):
    name: Name | None = None
    role: Role | None = None
    team_id: Id | None = None
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
