"""Deals, the pipeline and exchange rates as the API reads and writes them.

Money is Decimal end to end. It comes in as a JSON number or a decimal string and goes out as
a JSON number: amounts are kept below 10^13 with at most 2 decimals (15 significant digits),
which a double holds exactly, so the number a client reads is the stored amount.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Self

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    Field,
    PlainSerializer,
    model_validator,
)

from app.deals.currency import CENT, ISO_4217
from app.models import DealStatus

MONEY_LIMIT = Decimal(10**13)
MAX_STAGES = 50
MAX_RATES = 1000
MAX_CONTACTS = 100


def json_number(value: Decimal) -> int | float:
    """The JSON edge: exact for the amounts and rates the API accepts (< 15 digits)."""
    return int(value) if value == value.to_integral_value() else float(value)


def _cents(value: Decimal) -> Decimal:
    return value.quantize(CENT)


def _currency(value: str) -> str:
    if value not in ISO_4217:
        raise ValueError(f"{value[:8]!r} is not an ISO 4217 currency code (3 upper-case letters)")
    return value


def _fifteen_digits(value: Decimal) -> Decimal:
    if len(value.normalize().as_tuple().digits) > 15:
        raise ValueError("at most 15 significant digits (so that the JSON number is exact)")
    return value


def _stage_name(value: str) -> str:
    value = value.strip()
    if not value:
        raise ValueError("a stage name may not be blank")
    return value


Money = Annotated[
    Decimal,
    Field(ge=0, lt=MONEY_LIMIT, decimal_places=2, allow_inf_nan=False),
    AfterValidator(_cents),
]
MoneyOut = Annotated[Decimal, PlainSerializer(json_number, return_type=float, when_used="json")]
Currency = Annotated[
    str, Field(min_length=3, max_length=3, examples=["EUR"]), AfterValidator(_currency)
]
StageName = Annotated[str, Field(min_length=1, max_length=100), AfterValidator(_stage_name)]
Probability = Annotated[Decimal, Field(ge=0, le=1, decimal_places=4, allow_inf_nan=False)]
RateValue = Annotated[
    Decimal,
    Field(gt=0, lt=MONEY_LIMIT, decimal_places=10, allow_inf_nan=False),
    AfterValidator(_fifteen_digits),
]
ExternalId = Annotated[str, Field(min_length=1, max_length=255)]
DealName = Annotated[str, Field(min_length=1, max_length=255)]

_CLOSED_AT = "won/lost only: when it closed (default: now); reopening clears it"


class DealCreate(BaseModel):
    name: DealName
    owner_id: int
    company_id: int | None = None
    contact_ids: list[int] = Field(default_factory=list, max_length=MAX_CONTACTS)
    value: Money
    cost: Money | None = Field(None, description="missing: 0 (margin = value)")
    currency: Currency | None = Field(None, description="default: the organization's currency")
    stage: StageName | None = Field(None, description="a stage of the pipeline; open deals only")
    status: DealStatus = DealStatus.open
    expected_close_date: date | None = None
    created_at: AwareDatetime | None = Field(None, description="default: now")
    closed_at: AwareDatetime | None = Field(None, description=_CLOSED_AT)
    external_id: ExternalId | None = Field(
        None, description="its id in the system it came from; unique in the organization"
    )


# Fields a PATCH may not set to null (a deal always has them).
REQUIRED_FIELDS = ("name", "owner_id", "contact_ids", "value", "status", "created_at", "currency")


class DealUpdate(BaseModel):
    """Fields left out are unchanged; null clears one that may be empty."""

    name: DealName | None = None
    owner_id: int | None = None
    company_id: int | None = None
    contact_ids: list[int] | None = Field(None, max_length=MAX_CONTACTS)
    value: Money | None = None
    cost: Money | None = None
    currency: Currency | None = None
    stage: StageName | None = None
    status: DealStatus | None = None
    expected_close_date: date | None = None
    created_at: AwareDatetime | None = None
    closed_at: AwareDatetime | None = Field(None, description=_CLOSED_AT)
    external_id: ExternalId | None = None

    @model_validator(mode="after")
    def _not_null(self) -> Self:
        for name in REQUIRED_FIELDS:
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} may not be null")
        return self


class DealRead(BaseModel):
    id: int
    name: str
    owner_id: int
    company_id: int | None
    contact_ids: list[int]
    value: MoneyOut
    cost: MoneyOut | None
    currency: str
    stage: str | None
    status: DealStatus
    probability: MoneyOut = Field(description="the stage's while open; 1 won, 0 lost")
    expected_close_date: date | None
    created_at: datetime
    closed_at: datetime | None
    external_id: str | None
    last_activity_at: datetime | None = Field(
        description="the latest captured activity with its contacts (or its company's)"
    )


class DealChangeRead(BaseModel):
    at: datetime
    field: str = Field(description="a Deal field, or `created` / `deleted` (the whole deal)")
    old: Any = Field(description="money as a JSON number; `deleted` holds the last state")
    new: Any = Field(description="`created` holds the first state")
    by_user_id: int | None = Field(description="null: written by an import or the system")


class Stage(BaseModel):
    name: StageName
    probability: Probability
    rotten_days: int = Field(14, ge=1, le=3650, description="days without activity before rot")


class StageRead(BaseModel):
    name: str
    probability: MoneyOut
    rotten_days: int


class PipelineRead(BaseModel):
    stages: list[StageRead]


class PipelineUpdate(BaseModel):
    stages: list[Stage] = Field(min_length=1, max_length=MAX_STAGES, description="in order")
    move: dict[StageName, StageName] = Field(
        default_factory=dict,
        max_length=MAX_STAGES,
        description="removed stage -> stage of the new list, for the open deals in it",
    )

    @model_validator(mode="after")
    def _check(self) -> Self:
        names = [s.name for s in self.stages]
        if len(set(names)) != len(names):
            raise ValueError("stage names must be unique")
        for old, new in self.move.items():
            if new not in names:
                raise ValueError(f"move: {new!r} (for {old!r}) is not a stage of the new list")
        return self


class RateIn(BaseModel):
    currency: Currency
    rate: RateValue = Field(description="one unit of currency in the organization's currency")
    effective_from: date


class RateRead(BaseModel):
    currency: str
    rate: MoneyOut
    effective_from: date


class RatesRead(BaseModel):
    currency: str = Field(description="the organization's reporting currency")
    rates: list[RateRead]


class RatesUpdate(BaseModel):
    rates: list[RateIn] = Field(max_length=MAX_RATES, description="replaces the whole list")

    @model_validator(mode="after")
    def _unique(self) -> Self:
        seen = set()
        for rate in self.rates:
            key = (rate.currency, rate.effective_from)
            if key in seen:
                raise ValueError(f"two rates for {rate.currency} from {rate.effective_from}")
            seen.add(key)
        return self
