"""The CSV import's decisions, one table each: how a cell, a row and a mapping are read."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from app.deals.imports import Owners, plan_stages
from app.deals.mapping import (
    Mapping,
    MappingError,
    RowError,
    Target,
    key,
    mapping_of,
    moment,
    money,
    parse_row,
    target_of,
)
from app.models import DealStatus

CHICAGO = ZoneInfo("America/Chicago")
DATA = Path(__file__).resolve().parent.parent / "data" / "deals"


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("GTXPro", "GTX Pro", True),  # the real export's two spellings
        ("Anna  Snelling", "anna snelling", True),
        ("Mei-Mei Johns", "mei-mei johns", True),
        ("Mei-Mei Johns", "Mei Mei Johns", False),  # punctuation is part of the name
        ("GTX Basic", "GTX Plus Basic", False),
    ],
)
def test_key_ignores_case_and_spaces_only(a: str, b: str, same: bool) -> None:
    assert (key(a) == key(b)) is same


@pytest.mark.parametrize(
    ("text", "target"),
    [
        ("won", Target(DealStatus.won)),
        ("WON", Target(DealStatus.won)),
        (" lost ", Target(DealStatus.lost)),
        ("open", Target(DealStatus.open)),
        ("Discovery", Target(DealStatus.open, "Discovery")),
    ],
)
def test_a_stage_target_is_a_status_or_a_pipeline_stage(text: str, target: Target) -> None:
    assert target_of(text) == target


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1054", Decimal("1054")),
        (" 12.5 ", Decimal("12.5")),
        ("0", Decimal("0")),
        ("0.01", Decimal("0.01")),
        ("-5", "value -5 is negative"),
        ("1.005", "more than 2 decimals"),
        ("1,054", "not a number"),  # thousands or decimal comma: ambiguous, refused
        ("NaN", "not a number"),
        ("Infinity", "not a number"),
        ("abc", "not a number"),
    ],
)
def test_money(text: str, expected: Decimal | str) -> None:
    if isinstance(expected, Decimal):
        assert money(text, "value") == expected
    else:
        with pytest.raises(RowError, match=expected):
            money(text, "value")


@pytest.mark.parametrize(
    ("text", "fmt", "expected"),
    [
        # a bare date: the start of that day in the organization's zone (CST = UTC-6)
        ("2017-01-15", "iso", datetime(2017, 1, 15, 6, tzinfo=UTC)),
        ("2017-07-15", "iso", datetime(2017, 7, 15, 5, tzinfo=UTC)),  # CDT = UTC-5
        ("2017-03-12", "iso", datetime(2017, 3, 12, 6, tzinfo=UTC)),  # DST starts at 02:00
        ("2017-01-15T10:30:00+01:00", "iso", datetime(2017, 1, 15, 9, 30, tzinfo=UTC)),
        ("2017-01-15T10:30:00", "iso", datetime(2017, 1, 15, 16, 30, tzinfo=UTC)),
        ("15/01/2017", "%d/%m/%Y", datetime(2017, 1, 15, 6, tzinfo=UTC)),
        ("2017-02-30", "iso", r"is not a date \(YYYY-MM-DD\)"),
        ("2017-01-15", "%d/%m/%Y", r"is not a date \(%d/%m/%Y\)"),
        ("yesterday", "iso", "is not a date"),
    ],
)
def test_moment(text: str, fmt: str, expected: datetime | str) -> None:
    if isinstance(expected, datetime):
        assert moment(text, fmt, CHICAGO, "engage_date") == expected
    else:
        with pytest.raises(RowError, match=expected):
            moment(text, fmt, CHICAGO, "engage_date")


MAVEN = Mapping(
    columns={
        "id": "opportunity_id",
        "owner": "sales_agent",
        "stage": "deal_stage",
        "value": "close_value",
        "created": "engage_date",
        "closed": "close_date",
        "product": "product",
    },
    stages={
        "won": Target(DealStatus.won),
        "lost": Target(DealStatus.lost),
        "engaging": Target(DealStatus.open, "Discovery"),
    },
    prices={"gtxpro": Decimal("4821"), "mgspecial": Decimal("55")},
    name_template="{product} for {account}",
)
ROW = {
    "opportunity_id": "Z063OYW0",
    "sales_agent": "Darcel Schlecht",
    "product": "GTXPro",
    "account": "Isdom",
    "deal_stage": "Won",
    "engage_date": "2016-10-25",
    "close_date": "2017-03-11",
    "close_value": "4514",
}
START_OF_OCT_25 = datetime(2016, 10, 25, 5, tzinfo=UTC)  # CDT


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {},
            {
                "value": Decimal("4514"),
                "status": "won",
                "closed_at": datetime(2017, 3, 11, 6, tzinfo=UTC),
            },
        ),
        ({}, {"name": "GTXPro for Isdom", "created_at": START_OF_OCT_25, "stage": None}),
        # a won deal's 0 is what it brought: kept
        ({"close_value": "0"}, {"value": Decimal("0")}),
        # lost: 0 means no money came in; the deal was worth its list price (GTXPro = GTX Pro)
        ({"deal_stage": "Lost", "close_value": "0"}, {"value": Decimal("4821"), "status": "lost"}),
        # open: no value, no close date; the list price, and a stage of the pipeline
        (
            {"deal_stage": "Engaging", "close_value": "", "close_date": ""},
            {"value": Decimal("4821"), "status": "open", "stage": "Discovery", "closed_at": None},
        ),
        # an open deal's close date is dropped: open deals have none
        ({"deal_stage": "Engaging"}, {"closed_at": None, "value": Decimal("4514")}),
        # no engage date (Prospecting rows): the file does not say
        ({"deal_stage": "Engaging", "engage_date": ""}, {"created_at": None}),
        # ... but a closed deal was created by its close at the latest
        ({"engage_date": ""}, {"created_at": datetime(2017, 3, 11, 6, tzinfo=UTC)}),
        # an unmapped status word still means the status; any other word names a stage
        ({"deal_stage": "open", "close_value": ""}, {"status": "open", "stage": None}),
        ({"deal_stage": "Proposal"}, {"status": "open", "stage": "Proposal"}),
        ({"account": ""}, {"name": "GTXPro for"}),
        ({"deal_stage": "lost", "close_value": "0", "product": "Unknown"}, {"value": Decimal(0)}),
        # refusals: the reason the summary shows
        ({"opportunity_id": " "}, "no opportunity id in 'opportunity_id'"),
        ({"sales_agent": ""}, "no owner in 'sales_agent'"),
        ({"deal_stage": ""}, "no stage in 'deal_stage'"),
        ({"close_value": "-1"}, "value -1 is negative"),
        ({"close_date": "2017-13-01"}, "close_date '2017-13-01' is not a date"),
        ({"close_date": "2016-10-24"}, r"closed \(2016-10-24\) before it was created"),
        ({"close_value": "", "product": "GTX Nova"}, "no value and no list price for product"),
    ],
)
def test_parse_row(change: dict[str, str], expected: dict[str, Any] | str) -> None:
    row = ROW | change
    if isinstance(expected, str):
        with pytest.raises(RowError, match=expected):
            parse_row(row, MAVEN, CHICAGO)
        return
    parsed = parse_row(row, MAVEN, CHICAGO)
    assert {name: getattr(parsed, name) for name in expected} == expected


@pytest.mark.parametrize(
    ("currency_cell", "fixed", "expected"),
    [
        (None, None, None),  # the organization's
        (None, "USD", "USD"),
        ("gbp", "USD", "GBP"),  # the row's cell wins
        ("XYZ", None, "currency 'XYZ' is not an ISO 4217 code"),
        ("US$", None, "is not an ISO 4217 code"),
    ],
)
def test_currency(currency_cell: str | None, fixed: str | None, expected: str | None) -> None:
    mapping = MAVEN.merged(currency_column="currency", currency=fixed)
    row = ROW | ({"currency": currency_cell} if currency_cell else {})
    if expected is not None and " " in expected:
        with pytest.raises(RowError, match=expected):
            parse_row(row, mapping, CHICAGO)
    else:
        assert parse_row(row, mapping, CHICAGO).currency == expected


def test_the_command_line_overrides_the_mapping_file() -> None:
    merged = MAVEN.merged(
        value_column="amount", stage_map=["Engaging=Proposal", "Verbal = won"], date_format="%d"
    )
    assert merged.columns["value"] == "amount" and merged.columns["id"] == "opportunity_id"
    assert merged.stages["engaging"] == Target(DealStatus.open, "Proposal")
    assert merged.stages["verbal"] == Target(DealStatus.won)
    assert merged.date_format == "%d" and merged.prices == MAVEN.prices
    with pytest.raises(MappingError, match="expected SOURCE=won"):
        MAVEN.merged(stage_map=["Engaging"])


@pytest.mark.parametrize(
    ("data", "header", "error"),
    [
        ({"columns": {"owner": "o", "stage": "s", "value": "v"}}, ["o", "s", "v"], "no id column"),
        ({"columns": {"id": "i", "owner": "o", "stage": "s"}}, ["i", "o", "s"], "no value column"),
        (
            {"columns": {"id": "i", "owner": "o", "stage": "s", "value": "v"}},
            ["i", "o", "s"],
            "the file has no column 'v'",
        ),
        ({"columns": {"id": "i", "amount": "a"}}, [], "unknown columns: amount"),
        ({"colums": {}}, [], "unknown mapping keys: colums"),
        ({"stage_probabilities": {"X": "1.5"}}, [], "not between 0 and 1"),
    ],
)
def test_unusable_mappings_stop_before_any_row(
    data: dict[str, Any], header: list[str], error: str
) -> None:
    with pytest.raises(MappingError, match=error):
        mapping_of(data, DATA).check(header)


def test_the_shipped_maven_mapping_reads_the_price_list_beside_the_export() -> None:
    from app.deals.mapping import load_mapping

    root = Path(__file__).resolve().parents[2]
    mapping = load_mapping(root / "docs" / "examples" / "maven-crm-mapping.toml", DATA)
    assert mapping.prices[key("GTXPro")] == Decimal(4821)
    assert mapping.prices[key("GTK 500")] == Decimal(26768)
    assert mapping.currency == "USD" and mapping.stages["prospecting"].stage == "Qualification"


OWNERS = Owners(
    by_email={"ana@acme.example": 1, "a.silva@acme.example": 1, "bo@acme.example": 2},
    by_name={"anasilva": (1,), "bolee": (2, 3)},
)


@pytest.mark.parametrize(
    ("owner", "expected"),
    [
        ("Ana Silva", 1),
        ("  ana   SILVA ", 1),
        ("A.Silva@Acme.example", 1),  # an alias
        ("Bo Lee", "owner 'Bo Lee': 2 users have this name (2, 3)"),
        ("bo@acme.example", 2),  # the address settles what the name cannot
        ("Cy Young", "owner 'Cy Young': no user has this name"),
        ("cy@acme.example", "no user has this address"),
    ],
)
def test_owners_by_address_or_name(owner: str, expected: int | str) -> None:
    if isinstance(expected, int):
        assert OWNERS.match(owner) == expected
    else:
        with pytest.raises(RowError, match=expected.replace("(", r"\(").replace(")", r"\)")):
            OWNERS.match(owner)


DEFAULT_PIPELINE = ["Qualification", "Discovery", "Proposal", "Negotiation"]


@pytest.mark.parametrize(
    ("stages", "probabilities", "create", "expected"),
    [
        ({"engaging": "discovery"}, {}, False, []),  # matched whatever the case
        ({"engaging": "Engaging"}, {}, False, "not in the pipeline"),
        ({"engaging": "Engaging"}, {}, True, "give its probability"),
        ({"engaging": "Engaging"}, {"Engaging": Decimal("0.3")}, False, "--create-stages"),
        ({"engaging": "Engaging"}, {"engaging": Decimal("0.3")}, True, ["Engaging"]),
    ],
)
def test_the_pipeline_changes_only_when_asked(
    stages: dict[str, str], probabilities: dict[str, Decimal], create: bool, expected: Any
) -> None:
    mapping = Mapping(
        stages={k: target_of(v) for k, v in stages.items()}, stage_probabilities=probabilities
    )
    if isinstance(expected, str):
        with pytest.raises(MappingError, match=expected):
            plan_stages(mapping, DEFAULT_PIPELINE, create=create)
        return
    names, missing = plan_stages(mapping, DEFAULT_PIPELINE, create=create)
    assert missing == expected
    assert names[key("discovery")] == "Discovery"


def test_expected_close_is_a_local_date() -> None:
    mapping = MAVEN.merged(expected_close_column="expected")
    parsed = parse_row(ROW | {"expected": "2017-06-30"}, mapping, CHICAGO)
    assert parsed.expected_close_date == date(2017, 6, 30)


def test_a_json_mapping_reads_like_a_toml_one(tmp_path: Path) -> None:
    from app.deals.mapping import load_mapping

    path = tmp_path / "mapping.json"
    path.write_text(
        '{"columns": {"id": "Id", "owner": "Owner", "stage": "Stage", "value": "Amount"},'
        ' "stages": {"Closed Won": "won"}, "prices": {"list": {"GTX Pro": "4821.50"}},'
        ' "date_format": "%d/%m/%Y"}'
    )
    mapping = load_mapping(path, tmp_path)
    assert mapping.stages[key("closed won")] == Target(DealStatus.won)
    assert mapping.prices == {"gtxpro": Decimal("4821.50")}
    assert mapping.date_format == "%d/%m/%Y"
    path.write_text("{not json")
    with pytest.raises(MappingError, match=r"mapping\.json"):
        load_mapping(path, tmp_path)
