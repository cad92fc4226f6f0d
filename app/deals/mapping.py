"""What a CSV row of another CRM's export means as a deal: the column mapping and its parsing.

Pure: no database. `imports.py` matches the parsed row's owner, currency and stage against the
organization and writes it. Every decision a row can fail on raises `RowError` with the reason
the import summary shows beside the row's line number.
"""

from __future__ import annotations

import csv
import json
import re
import tomllib
from collections.abc import Mapping as AnyMapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from app.deals.currency import ISO_4217
from app.models import DealStatus

STATUSES = frozenset(DealStatus)
COLUMN_KEYS = (
    "id",
    "owner",
    "name",
    "value",
    "cost",
    "stage",
    "created",
    "closed",
    "expected_close",
    "currency",
    "product",
)
ISO = "iso"  # the default date format: YYYY-MM-DD, or an ISO 8601 date-time


class MappingError(ValueError):
    """The import cannot start (an unusable mapping, a missing column, no such organization,
    a stage outside the pipeline); nothing is written."""


class RowError(ValueError):
    """One row cannot become a deal; the message is the reason shown in the summary."""


def key(text: str) -> str:
    """The form two spellings are compared in: case-folded, all white space removed.

    One rule for owners, stages and products: the real export spells `GTXPro` where its price
    list says `GTX Pro`, and `anna  snelling` is the same person as `Anna Snelling`."""
    return "".join(text.split()).casefold()


@dataclass(frozen=True, slots=True)
class Target:
    """What a source stage value means: a status, and for an open deal its pipeline stage."""

    status: DealStatus
    stage: str | None = None


def target_of(text: str) -> Target:
    """`won`, `lost`, `open` (any case) are statuses; anything else names a pipeline stage."""
    word = text.strip()
    if not word:
        raise MappingError("a stage maps to an empty target")
    if word.casefold() in STATUSES:
        return Target(DealStatus(word.casefold()))
    return Target(DealStatus.open, word)


@dataclass(frozen=True)
class Mapping:
    """Source column names by Tally field, stage meanings, the price list and the formats."""

    columns: dict[str, str] = field(default_factory=dict)
    stages: dict[str, Target] = field(default_factory=dict)  # by key(source value)
    prices: dict[str, Decimal] = field(default_factory=dict)  # by key(product)
    name_template: str | None = None  # "{product} for {account}": cells by column name
    currency: str | None = None  # every row's, when no currency column (None: the org's)
    date_format: str = ISO
    delimiter: str = ","
    stage_probabilities: dict[str, Decimal] = field(default_factory=dict)  # for --create-stages

    def column(self, name: str) -> str | None:
        return self.columns.get(name)

    def check(self, header: list[str]) -> None:
        """Refuse to start when a needed column is missing from the file's header."""
        for needed in ("id", "owner", "stage"):
            if needed not in self.columns:
                raise MappingError(f"no {needed} column: say which with --{needed}-column")
        if "value" not in self.columns and not self.prices:
            raise MappingError("no value column and no price list: rows would have no value")
        if self.prices and "product" not in self.columns and "value" not in self.columns:
            raise MappingError("a price list needs a product column")
        wanted = set(self.columns.values()) | set(template_columns(self.name_template))
        missing = sorted(wanted - set(header))
        if missing:
            raise MappingError(f"the file has no column {', '.join(map(repr, missing))}")

    def merged(self, **options: Any) -> Mapping:
        """This mapping with what the command line says on top (None: not said)."""
        columns = dict(self.columns)
        for name in COLUMN_KEYS:
            given = options.pop(f"{name}_column", None)
            if given:
                columns[name] = given
        stages = dict(self.stages)
        for pair in options.pop("stage_map", None) or ():
            source, _, meaning = pair.partition("=")
            if not source.strip() or not meaning.strip():
                raise MappingError(f"--stage {pair!r}: expected SOURCE=won|lost|open|STAGE")
            stages[key(source)] = target_of(meaning)
        given = {k: v for k, v in options.items() if v is not None}
        return replace(self, columns=columns, stages=stages, **given)


def template_columns(template: str | None) -> list[str]:
    return re.findall(r"\{([^{}]+)\}", template or "")


def read_prices(path: Path, product_column: str, price_column: str) -> dict[str, Decimal]:
    """A price list CSV: product name -> list price (keyed by `key`)."""
    prices: dict[str, Decimal] = {}
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            for line, row in enumerate(csv.DictReader(handle), start=2):
                try:
                    prices[key(row[product_column])] = money(row[price_column], "price")
                except (KeyError, RowError) as error:
                    raise MappingError(f"{path.name} line {line}: {error}") from None
    except OSError as error:
        raise MappingError(f"price list {path}: {error.strerror}") from None
    return prices


def load_mapping(path: Path, base: Path) -> Mapping:
    """A mapping file, TOML or JSON (by extension). Relative paths in it (the price list) are
    taken from `base`, the folder of the imported file: an export ships its files together."""
    raw = path.read_bytes()
    try:
        data = json.loads(raw) if path.suffix == ".json" else tomllib.loads(raw.decode())
    except (ValueError, UnicodeDecodeError) as error:
        raise MappingError(f"{path.name}: {error}") from None
    return mapping_of(data, base)


def mapping_of(data: AnyMapping[str, Any], base: Path) -> Mapping:
    unknown = set(data) - {
        "columns",
        "stages",
        "prices",
        "name_template",
        "currency",
        "date_format",
        "delimiter",
        "stage_probabilities",
    }
    if unknown:
        raise MappingError(f"unknown mapping keys: {', '.join(sorted(unknown))}")
    columns = {str(k): str(v) for k, v in data.get("columns", {}).items()}
    if set(columns) - set(COLUMN_KEYS):
        bad = ", ".join(sorted(set(columns) - set(COLUMN_KEYS)))
        raise MappingError(f"unknown columns: {bad} (known: {', '.join(COLUMN_KEYS)})")
    stages = {key(str(k)): target_of(str(v)) for k, v in data.get("stages", {}).items()}
    prices: dict[str, Decimal] = {}
    spec = data.get("prices", {})
    if "file" in spec:
        prices |= read_prices(
            base / spec["file"], spec.get("product", "product"), spec.get("price", "price")
        )
    for product, price in spec.get("list", {}).items():
        prices[key(str(product))] = money(str(price), "price")
    probabilities = {
        str(k): probability(str(v)) for k, v in data.get("stage_probabilities", {}).items()
    }
    return Mapping(
        columns=columns,
        stages=stages,
        prices=prices,
        name_template=data.get("name_template"),
        currency=data.get("currency"),
        date_format=data.get("date_format", ISO),
        delimiter=data.get("delimiter", ","),
        stage_probabilities=probabilities,
    )


def probability(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise MappingError(f"probability {text!r} is not a number") from None
    if not 0 <= value <= 1:
        raise MappingError(f"probability {text} is not between 0 and 1")
    return value


def money(text: str, what: str) -> Decimal:
    """A plain decimal amount: digits with an optional point and at most 2 decimals, >= 0.

    No thousands separators: `1,054` is 1054 in one export and 1.054 in another."""
    cleaned = text.strip()
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        raise RowError(f"{what} {cleaned!r} is not a number") from None
    if not value.is_finite():
        raise RowError(f"{what} {cleaned!r} is not a number")
    if value < 0:
        raise RowError(f"{what} {cleaned} is negative")
    if value.as_tuple().exponent < -2:  # type: ignore[operator]
        raise RowError(f"{what} {cleaned} has more than 2 decimals")
    return value


def moment(text: str, fmt: str, zone: ZoneInfo, what: str) -> datetime:
    """A date cell as an aware moment: a bare date is the start of that day in the
    organization's zone (so the deal lands on that local day); a time without an offset is
    read in that zone too."""
    cleaned = text.strip()
    try:
        if fmt == ISO:
            parsed = (
                datetime.combine(date.fromisoformat(cleaned), time())
                if len(cleaned) == 10
                else datetime.fromisoformat(cleaned)
            )
        else:
            parsed = datetime.strptime(cleaned, fmt)
    except ValueError:
        shown = "YYYY-MM-DD" if fmt == ISO else fmt
        raise RowError(f"{what} {cleaned!r} is not a date ({shown})") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=zone)
    return parsed.astimezone(UTC)


@dataclass(frozen=True, slots=True)
class RowDeal:
    """A row as a deal, before its owner and currency are matched against the organization.
    None for created_at / closed_at: the file does not say (the import's moment on creation;
    unchanged on a later import)."""

    external_id: str
    owner: str
    name: str
    value: Decimal
    cost: Decimal | None
    currency: str | None
    status: DealStatus
    stage: str | None
    created_at: datetime | None
    closed_at: datetime | None
    expected_close_date: date | None


def parse_row(row: AnyMapping[str, str | None], mapping: Mapping, zone: ZoneInfo) -> RowDeal:
    """One CSV row (column -> cell) as a deal, or RowError with the reason."""

    def cell(name: str) -> str:
        column = mapping.column(name)
        return (row.get(column) or "").strip() if column else ""

    external_id = cell("id")
    if not external_id:
        raise RowError(f"no opportunity id in {mapping.column('id')!r}")
    owner = cell("owner")
    if not owner:
        raise RowError(f"no owner in {mapping.column('owner')!r}")
    source_stage = cell("stage")
    if not source_stage:
        raise RowError(f"no stage in {mapping.column('stage')!r}")
    # unmapped: a status word, or (checked against the pipeline by the import) a stage's name
    target = mapping.stages.get(key(source_stage)) or target_of(source_stage)

    def when(name: str) -> datetime | None:
        text = cell(name)
        if not text:
            return None
        return moment(text, mapping.date_format, zone, f"{mapping.column(name)}")

    closed_at = when("closed") if target.status != DealStatus.open else None
    # A closed deal without a creation date was created by its close at the latest: now (the
    # default) would put its creation after its close. Its cycle counts 0 days.
    created_at = when("created") or closed_at
    if created_at and closed_at and closed_at < created_at:
        raise RowError(f"closed ({closed_at.date()}) before it was created ({created_at.date()})")
    expected = when("expected_close")
    value = _value(cell("value"), cell("product"), target.status, mapping)
    cost_text = cell("cost")
    currency = (cell("currency") or mapping.currency or "").upper() or None
    if currency is not None and currency not in ISO_4217:
        raise RowError(f"currency {currency[:8]!r} is not an ISO 4217 code")
    return RowDeal(
        external_id=external_id,
        owner=owner,
        name=_name(row, mapping, external_id),
        value=value,
        cost=money(cost_text, "cost") if cost_text else None,
        currency=currency,
        status=target.status,
        stage=target.stage,
        created_at=created_at,
        closed_at=closed_at,
        expected_close_date=expected.astimezone(zone).date() if expected else None,
    )


def _value(text: str, product: str, status: DealStatus, mapping: Mapping) -> Decimal:
    """The cell's amount; an empty cell, or 0 on a deal not won, is missing and takes the
    product's list price. Exports write 0 for a lost deal's value (it brought nothing), but the
    deal was still worth its price; a won deal's 0 is a real amount and stays."""
    value = money(text, "value") if text else None
    if value is not None and (value != 0 or status == DealStatus.won):
        return value
    if mapping.prices:
        price = mapping.prices.get(key(product))
        if price is not None:
            return price
        if value is None:
            raise RowError(f"no value and no list price for product {product!r}")
    if value is None:
        raise RowError("no value")
    return value


def _name(row: AnyMapping[str, str | None], mapping: Mapping, external_id: str) -> str:
    column = mapping.column("name")
    if column and (row.get(column) or "").strip():
        return (row.get(column) or "").strip()[:255]
    if mapping.name_template:
        cells = {c: (row.get(c) or "").strip() for c in template_columns(mapping.name_template)}
        named = re.sub(r"\{([^{}]+)\}", lambda m: cells[m.group(1)], mapping.name_template)
        if named.strip():
            return named.strip()[:255]
    return external_id[:255]


def resolve(mapping_file: Path | None, base: Path, **options: Any) -> Mapping:
    """The mapping file's (if any), with the command line's options on top."""
    mapping = load_mapping(mapping_file, base) if mapping_file else Mapping()
    return mapping.merged(**options)
