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
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    WithJsonSchema,
    model_validator,
)

from app.deals.currency import CENT, ISO_4217
from app.models import DealStatus
from app.schemas import (
    JSON_INTEGER,
    LINE_PATTERN,
    NAME_PATTERN,
    Day,
    Id,
    Moment,
    decimal_schema,
    decimal_text,
)

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
    return value.strip()  # the pattern already refused a blank one


# A decimal string as the OpenAPI states it: no sign, no exponent, no leading zero.
_MONEY_TEXT = r"^(?:0|[1-9][0-9]{0,12})(?:\.[0-9]{1,2})?$"
# A rate has at most 15 significant digits and 10 decimal places, written so the pattern
# and the number's bounds say it: a whole part of 1 to 5 digits takes up to 10 decimals, one
# of n digits (6 to 13) up to 15 - n; below 1, a fraction with a non-zero digit among its 10.
_RATE_TEXT = (
    r"^(?:[1-9][0-9]{0,4}(?:\.[0-9]{1,10})?|"
    + "|".join(f"[1-9][0-9]{{{n - 1}}}(?:\\.[0-9]{{1,{15 - n}}})?" for n in range(6, 14))
    + r"|0\.(?:"
    + "|".join(f"0{{{k}}}[1-9][0-9]{{0,{9 - k}}}" for k in range(10))
    + r"))$"
)
# As a number: below 10^5 a multiple of 10^-10; from 10^k to 10^(k+1) a multiple of 10^(k-14)
_RATE_NUMBERS = [{"exclusiveMinimum": 0, "exclusiveMaximum": 10**5, "multipleOf": 1e-10}] + [
    {"minimum": 10**k, "exclusiveMaximum": 10 ** (k + 1), "multipleOf": float(f"1e{k - 14}")}
    for k in range(5, 13)
]
_PROBABILITY_TEXT = r"^(?:0(?:\.[0-9]{1,4})?|1(?:\.0{1,4})?)$"


_MONEY_DOC = "an amount from 0 to under 10^13 with at most 2 decimal places"
_PROBABILITY_DOC = "0 to 1, at most 4 decimal places"
_RATE_DOC = "above 0 and under 10^13, at most 10 decimal places and 15 significant digits"
Money = Annotated[
    Decimal,
    decimal_text(_MONEY_TEXT, _MONEY_DOC),
    Field(ge=0, lt=MONEY_LIMIT, decimal_places=2, allow_inf_nan=False),
    AfterValidator(_cents),
    decimal_schema(
        {"minimum": 0, "exclusiveMaximum": 10**13, "multipleOf": 0.01},
        _MONEY_TEXT,
        _MONEY_DOC,
    ),
]
MoneyOut = Annotated[Decimal, PlainSerializer(json_number, return_type=float, when_used="json")]
Currency = Annotated[
    str,
    Field(min_length=3, max_length=3, examples=["EUR"]),
    AfterValidator(_currency),
    WithJsonSchema({"type": "string", "enum": sorted(ISO_4217), "examples": ["EUR"]}),
]
StageName = Annotated[
    str,
    Field(min_length=1, max_length=100, pattern=NAME_PATTERN),
    AfterValidator(_stage_name),
]
Probability = Annotated[
    Decimal,
    decimal_text(_PROBABILITY_TEXT, _PROBABILITY_DOC),
    Field(ge=0, le=1, decimal_places=4, allow_inf_nan=False),
    decimal_schema(
        {"minimum": 0, "maximum": 1, "multipleOf": 0.0001}, _PROBABILITY_TEXT, _PROBABILITY_DOC
    ),
]
RateValue = Annotated[
    Decimal,
    decimal_text(_RATE_TEXT, _RATE_DOC),
    Field(gt=0, lt=MONEY_LIMIT, decimal_places=10, allow_inf_nan=False),
    AfterValidator(_fifteen_digits),
    WithJsonSchema(
        {
            "anyOf": [
                *({"type": "number", **bounds} for bounds in _RATE_NUMBERS),
                {"type": "string", "pattern": _RATE_TEXT},
            ],
            "description": _RATE_DOC,
        }
    ),
]
ExternalId = Annotated[str, Field(min_length=1, max_length=255, pattern=LINE_PATTERN)]
DealName = Annotated[
    str, Field(min_length=1, max_length=255, pattern=NAME_PATTERN), AfterValidator(str.strip)
]

_CLOSED_AT = "won/lost only: when it closed (default: now); reopening clears it"


class DealCreate(BaseModel):
    name: DealName
    owner_id: Id
    company_id: Id | None = None
    contact_ids: list[Id] = Field(default_factory=list, max_length=MAX_CONTACTS)
    value: Money
    cost: Money | None = Field(None, description="missing: 0 (margin = value)")
    currency: Currency | None = Field(None, description="default: the organization's currency")
    stage: StageName | None = Field(None, description="a stage of the pipeline; open deals only")
    status: DealStatus = DealStatus.open
    expected_close_date: Day | None = None
    created_at: Moment | None = Field(None, description="default: now")
    closed_at: Moment | None = Field(None, description=_CLOSED_AT)
    external_id: ExternalId | None = Field(
        None, description="its id in the system it came from; unique in the organization"
    )


# Fields a PATCH may not set to null (a deal always has them).
REQUIRED_FIELDS = ("name", "owner_id", "contact_ids", "value", "status", "created_at", "currency")


def _no_null(schema: dict[str, Any]) -> None:
    """The OpenAPI says which fields a PATCH may not set to null (they are not nullable)."""
    for name in REQUIRED_FIELDS:
        field = schema.get("properties", {}).get(name, {})
        options = [o for o in field.get("anyOf", []) if o.get("type") != "null"]
        if len(options) == 1:
            field.pop("anyOf")
            field.update(options[0])


class DealUpdate(BaseModel):
    """Fields left out are unchanged; null clears one that may be empty."""

    model_config = ConfigDict(json_schema_extra=_no_null)

    name: DealName | None = None
    owner_id: Id | None = None
    company_id: Id | None = None
    contact_ids: list[Id] | None = Field(None, max_length=MAX_CONTACTS)
    value: Money | None = None
    cost: Money | None = None
    currency: Currency | None = None
    stage: StageName | None = None
    status: DealStatus | None = None
    expected_close_date: Day | None = None
    created_at: Moment | None = None
    closed_at: Moment | None = Field(None, description=_CLOSED_AT)
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
    rotten_days: Annotated[int, Field(ge=1, le=3650), JSON_INTEGER] = Field(
        14, description="days without activity before rot"
    )


class StageRead(BaseModel):
    name: str
    probability: MoneyOut
    rotten_days: int


class PipelineRead(BaseModel):
    stages: list[StageRead]


def _stage_keys(schema: dict[str, Any]) -> None:
    names = schema.get("properties", {}).get("move", {}).get("propertyNames")
    if isinstance(names, dict):
        names["pattern"] = NAME_PATTERN  # pydantic leaves a key's pattern out


class PipelineUpdate(BaseModel):
    model_config = ConfigDict(json_schema_extra=_stage_keys)

    stages: list[Stage] = Field(
        min_length=1, max_length=MAX_STAGES, description="in order; names unique"
    )
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
    effective_from: Day


class RateRead(BaseModel):
    currency: str
    rate: MoneyOut
    effective_from: date


class RatesRead(BaseModel):
    currency: str = Field(description="the organization's reporting currency")
    rates: list[RateRead]


class RatesUpdate(BaseModel):
    rates: list[RateIn] = Field(
        max_length=MAX_RATES,
        description="replaces the whole list; at most one rate per currency and effective_from",
    )

    @model_validator(mode="after")
    def _unique(self) -> Self:
        seen = set()
        for rate in self.rates:
            key = (rate.currency, rate.effective_from)
            if key in seen:
                raise ValueError(f"two rates for {rate.currency} from {rate.effective_from}")
            seen.add(key)
        return self


class StageSummary(BaseModel):
    name: str
    probability: MoneyOut
    count: int = Field(description="open deals in the stage")
    value: MoneyOut = Field(description="their value in the organization's currency")
    weighted: MoneyOut = Field(description="value x the stage's probability")


class PipelineTotals(BaseModel):
    count: int
    value: MoneyOut
    weighted: MoneyOut


class PipelineSummary(BaseModel):
    currency: str = Field(description="the organization's reporting currency")
    stages: list[StageSummary] = Field(description="in pipeline order, empty stages included")
    total: PipelineTotals = Field(
        description="every open deal, also those in a stage the pipeline no longer has "
        "(probability 0)"
    )
    open_without_close_date: int = Field(description="open deals with no expected close date")
