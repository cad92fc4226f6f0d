"""`tally import deals` on the real Maven CRM export: the metrics Tally serves afterwards equal
the ones `maven.py` derives from the CSV itself (none of Tally's code), per rep and per team,
per month and per quarter; the same rows posted through the API give the same deals and
numbers; a second import changes nothing; bad rows are refused with their line."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterator
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from typer.testing import CliRunner

from app.cli import cli
from app.db import session_scope
from app.deals.models import DealChange, PipelineStage
from app.models import Deal
from tests.api import Org
from tests.deals.maven import DATA, EXPORT, MAPPING, PRICES, ROWS, TEAMS, compare, setup_org


def import_export(*extra: str) -> Any:
    result = CliRunner().invoke(
        cli, ["import", "deals", "--mapping", str(MAPPING), *extra, str(EXPORT)]
    )
    return result


def history_rows(org_id: int) -> int:
    with session_scope() as session:
        count = session.scalar(
            select(func.count()).select_from(DealChange).where(DealChange.org_id == org_id)
        )
        return int(count or 0)


def test_the_real_export_imports_exactly_and_twice_changes_nothing(client: TestClient) -> None:
    org, users, teams = setup_org(client)
    first = import_export("--org", str(org.id))
    assert first.exit_code == 0, first.output
    assert "3512 rows: 3512 created, 0 updated, 0 unchanged, 0 refused" in first.output
    subjects = [*TEAMS, *sorted(set(TEAMS.values()))]
    # 13 subjects x 6 metrics x (15 months + 5 quarters)
    assert compare(org, users, teams, subjects, ROWS) == 13 * 6 * 20

    with session_scope() as session:
        deals = session.scalars(select(Deal).where(Deal.org_id == org.id)).all()
        by_status: dict[tuple[str, str | None], int] = defaultdict(int)
        for deal in deals:
            by_status[deal.status, deal.stage] += 1
        lost = next(d for d in deals if d.external_id == "KWVA7VR1")  # GTXPro, lost, value 0
        assert lost.value == Decimal(PRICES["GTX Pro"]) and lost.currency == "USD"
    assert by_status == {
        ("won", None): 1629,
        ("lost", None): 975,
        ("open", "Discovery"): 408,
        ("open", "Qualification"): 500,
    }
    history = history_rows(org.id)
    assert history == 3512  # one "created" each
    assert_prospecting_is_created_now(org, users)

    second = import_export("--org", str(org.id))
    assert second.exit_code == 0, second.output
    assert "3512 rows: 0 created, 0 updated, 3512 unchanged, 0 refused" in second.output
    assert history_rows(org.id) == history
    with session_scope() as session:
        count = session.scalar(select(func.count()).select_from(Deal).where(Deal.org_id == org.id))
    assert count == 3512


def assert_prospecting_is_created_now(org: Org, users: dict[str, int]) -> None:
    """The documented choice: a row without an engage date (Prospecting) is an opportunity of
    the import's day (semantics §8: otherwise the moment of the change)."""
    today = datetime.now(ZoneInfo("America/Chicago")).date()
    for agent in ("Moses Frase", "Darcel Schlecht"):
        response = org.client.get(
            f"/api/v1/metrics?metric=opportunities_created&period=month&start={today}"
            f"&end={today}&user_id={users[agent]}",
            headers=org.as_admin(),
        )
        assert response.status_code == 200, response.text
        prospecting = sum(
            1 for r in ROWS if r["sales_agent"] == agent and r["deal_stage"] == "Prospecting"
        )
        assert response.json()["series"][0]["value"] == prospecting > 0


HEADER = "opportunity_id,sales_agent,product,account,deal_stage,engage_date,close_date,close_value"
BAD = f"""{HEADER},currency
OK1,Moses Frase,GTX Basic,Cancity,Won,2017-01-02,2017-02-01,500,USD
BAD1,Moses Frase,GTX Basic,Cancity,Won,2017-02-30,2017-03-01,500,USD
BAD2,Moses Frase,GTX Basic,Cancity,Won,2017-01-02,2017-03-01,-5,USD
BAD3,Nobody Here,GTX Basic,Cancity,Won,2017-01-02,2017-03-01,500,USD
BAD4,Moses Frase,GTX Basic,Cancity,Won,2017-01-02,2017-03-01,500,XYZ
BAD5,Moses Frase,GTX Basic,Cancity,Won,2017-01-02,2017-03-01,500,GBP
OK2,moses  frase,GTXPro,Cancity,Lost,2017-01-02,2017-03-01,0,
BAD6,Moses Frase,GTX Basic,Cancity,Negotiating,2017-01-02,,,USD
"BAD7",Moses Frase,"GTX
Basic",Cancity,Won,2017-01-02,2016-12-01,500,USD
OK1,Moses Frase,GTX Basic,Cancity,Won,2017-01-02,2017-02-01,500,USD
OK3,moses.frase@maven.example,GTX Basic,Cancity,Engaging,2017-01-02,,,USD
"""


def write(tmp_path: Path, text: str) -> Path:
    (tmp_path / "products.csv").write_text((DATA / "products.csv").read_text())
    path = tmp_path / "export.csv"
    path.write_text(text)
    return path


def test_bad_rows_are_refused_by_line_and_the_rest_imports(
    client: TestClient, tmp_path: Path
) -> None:
    org, _, _ = setup_org(client)
    args = ["import", "deals", "--mapping", str(MAPPING), "--currency-column", "currency"]
    result = CliRunner().invoke(cli, [*args, str(write(tmp_path, BAD))])
    assert result.exit_code == 1, result.output  # some rows refused: a script can tell
    lines = result.output.splitlines()
    assert "11 rows: 3 created, 0 updated, 0 unchanged, 8 refused" in lines
    assert [line for line in lines if line.startswith("  line ")] == [
        "  line 3 (BAD1): engage_date '2017-02-30' is not a date (YYYY-MM-DD)",
        "  line 4 (BAD2): value -5 is negative",
        "  line 5 (BAD3): owner 'Nobody Here': no user has this name",
        "  line 6 (BAD4): currency 'XYZ' is not an ISO 4217 code",
        "  line 7 (BAD5): no exchange rate for GBP in force on 2017-03-01: add one with PUT "
        "/org/exchange-rates (the organization reports in USD)",
        "  line 9 (BAD6): stage 'Negotiating' is neither mapped nor in the pipeline",
        "  line 10 (BAD7): closed (2016-12-01) before it was created (2017-01-02)",
        "  line 12 (OK1): opportunity id 'OK1' is also on line 2",
    ]
    with session_scope() as session:
        deals = {
            d.external_id: (d.status, d.value, d.currency)
            for d in session.scalars(select(Deal).where(Deal.org_id == org.id))
        }
    # OK2 has no currency cell: the mapping's USD; its 0 on a lost deal is the list price
    assert deals == {
        "OK1": ("won", Decimal(500), "USD"),
        "OK2": ("lost", Decimal(4821), "USD"),
        "OK3": ("open", Decimal(550), "USD"),
    }


def test_a_changed_row_is_an_update_kept_in_the_history(client: TestClient, tmp_path: Path) -> None:
    org, _, _ = setup_org(client)
    header, won = BAD.splitlines()[:2]
    lost = "OK2,Moses Frase,GTXPro,Cancity,Lost,2017-01-02,2017-03-01,0,USD"
    args = ["import", "deals", "--org", str(org.id), "--mapping", str(MAPPING)]
    assert (
        CliRunner()
        .invoke(cli, [*args, str(write(tmp_path, f"{header}\n{won}\n{lost}\n"))])
        .exit_code
        == 0
    )
    revalued = won.replace(",500,", ",650,")
    dry = CliRunner().invoke(
        cli, [*args, "--dry-run", str(write(tmp_path, f"{header}\n{revalued}\n{lost}\n"))]
    )
    assert dry.exit_code == 0, dry.output
    assert "2 rows: 0 created, 1 updated, 1 unchanged, 0 refused" in dry.output
    assert "dry run: nothing was written" in dry.output
    assert history_rows(org.id) == 2
    real = CliRunner().invoke(cli, [*args, str(write(tmp_path, f"{header}\n{revalued}\n{lost}\n"))])
    assert "2 rows: 0 created, 1 updated, 1 unchanged, 0 refused" in real.output, real.output
    with session_scope() as session:
        deal = session.scalars(select(Deal).where(Deal.external_id == "OK1")).one()
        deal_id = deal.id
        assert deal.value == Decimal(650)
    history = client.get(f"/api/v1/deals/{deal_id}/history", headers=org.as_admin()).json()["items"]
    assert [(h["field"], h["old"], h["new"], h["by_user_id"]) for h in history[1:]] == [
        ("value", 500, 650, None)
    ]


def test_stages_outside_the_pipeline_are_added_only_when_asked(
    client: TestClient, tmp_path: Path
) -> None:
    org, _, _ = setup_org(client)
    path = write(
        tmp_path,
        BAD.splitlines()[0] + "\n" + BAD.splitlines()[-1] + "\n",
    )
    args = ["import", "deals", "--org", str(org.id), "--mapping", str(MAPPING)]
    refused = CliRunner().invoke(cli, [*args, "--stage", "Engaging=Engaging", str(path)])
    assert refused.exit_code == 2
    assert "stage 'Engaging' is not in the pipeline" in refused.output
    assert "under [stage_probabilities]" in refused.output
    mapping = tmp_path / "mapping.toml"
    mapping.write_text(
        MAPPING.read_text().replace('Engaging = "Discovery"', 'Engaging = "Engaging"')
        + '\n[stage_probabilities]\nEngaging = "0.3"\n'
    )
    args[-1] = str(mapping)
    added = CliRunner().invoke(cli, [*args, "--create-stages", str(path)])
    assert added.exit_code == 0, added.output
    assert "pipeline stages added: Engaging" in added.output
    with session_scope() as session:
        stages = session.execute(
            select(PipelineStage.name, PipelineStage.probability)
            .where(PipelineStage.org_id == org.id)
            .order_by(PipelineStage.position)
        ).all()
    assert stages[-1] == ("Engaging", Decimal("0.3")) and len(stages) == 5


CHICAGO = ZoneInfo("America/Chicago")
OPEN_STAGES = {"Engaging": "Discovery", "Prospecting": "Qualification"}


def deal_body(row: dict[str, str], users: dict[str, int]) -> dict[str, Any]:
    """The row as a client would POST it, written here from the export's README alone."""

    def day_start(text: str) -> str:
        return datetime.combine(date.fromisoformat(text), time(), CHICAGO).isoformat()

    list_price = {k.replace(" ", ""): v for k, v in PRICES.items()}[row["product"].replace(" ", "")]
    body: dict[str, Any] = {
        "name": f"{row['product']} for {row['account']}".strip(),  # open rows: no account
        "owner_id": users[row["sales_agent"]],
        "currency": "USD",
        "external_id": row["opportunity_id"],
    }
    if row["engage_date"]:
        body["created_at"] = day_start(row["engage_date"])
    if row["deal_stage"] in OPEN_STAGES:
        return body | {
            "status": "open",
            "stage": OPEN_STAGES[row["deal_stage"]],
            "value": list_price,
        }
    won = row["deal_stage"] == "Won"
    return body | {
        "status": "won" if won else "lost",
        "value": row["close_value"] if won else list_price,
        "closed_at": day_start(row["close_date"]),
    }


def stored_deals(org_id: int, users: dict[str, int]) -> set[tuple[Any, ...]]:
    names = {user_id: name for name, user_id in users.items()}
    with session_scope() as session:
        return {
            (
                d.external_id,
                names[d.owner_id],
                d.name,
                d.value,
                d.currency,
                d.status,
                d.stage,
                d.created_at if d.created_at.year < 2020 else None,  # Prospecting: now
                d.closed_at,
                d.value_base,
            )
            for d in session.scalars(select(Deal).where(Deal.org_id == org_id))
        }


@pytest.fixture
def sqlite_client(sqlite_database: Any) -> Iterator[TestClient]:
    from app.main import create_app

    with TestClient(create_app(), raise_server_exceptions=True) as test_client:
        yield test_client


def test_the_same_rows_through_the_api_give_the_same_deals_and_numbers(
    sqlite_client: TestClient, tmp_path: Path
) -> None:
    """Two reps of one team (463 rows, for speed: one POST each), on SQLite: posted through
    the API they make the deals the command makes of the same rows, and the same metrics
    as the CSV for the reps and for their team (whose other members have no deals here)."""
    reps = ("Moses Frase", "Cecily Lampkin")
    rows = [r for r in ROWS if r["sales_agent"] in reps]
    posted, users, teams = setup_org(sqlite_client, "Maven via the API")
    for row in rows:
        response = sqlite_client.post(
            "/api/v1/deals", json=deal_body(row, users), headers=posted.as_admin()
        )
        assert response.status_code == 201, (row, response.text)
    manager = TEAMS[reps[0]]
    assert compare(posted, users, teams, [*reps, manager], rows) == 3 * 6 * 20

    imported, imported_users, _ = setup_org(sqlite_client, "Maven via the command")
    subset = io.StringIO()
    writer = csv.DictWriter(subset, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    path = write(tmp_path, subset.getvalue())
    result = CliRunner().invoke(
        cli, ["import", "deals", "--org", str(imported.id), "--mapping", str(MAPPING), str(path)]
    )
    assert result.exit_code == 0, result.output
    assert f"{len(rows)} rows: {len(rows)} created" in result.output
    assert stored_deals(imported.id, imported_users) == stored_deals(posted.id, users)


def test_what_stops_an_import_before_any_row(client: TestClient, tmp_path: Path) -> None:
    setup_org(client)
    setup_org(client, "Another")
    result = CliRunner().invoke(cli, ["import", "deals", "--mapping", str(MAPPING), str(EXPORT)])
    assert result.exit_code == 2 and "say which with --org" in result.output
    missing = CliRunner().invoke(cli, ["import", "deals", "--org", "99", str(EXPORT)])
    assert missing.exit_code == 2 and "no id column" in missing.output
    no_prices = CliRunner().invoke(
        cli, ["import", "deals", "--org", "1", "--mapping", str(MAPPING), str(tmp_path / "x.csv")]
    )
    assert no_prices.exit_code == 2  # the file is missing: typer says so
    write(tmp_path, HEADER + "\n")
    (tmp_path / "products.csv").unlink()
    no_prices = CliRunner().invoke(
        cli,
        ["import", "deals", "--org", "1", "--mapping", str(MAPPING), str(tmp_path / "export.csv")],
    )
    assert no_prices.exit_code == 2 and "products.csv: No such file" in no_prices.output
    write(tmp_path, "")
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes(
        HEADER.encode()
        + "\nX1,Zoë Müller,GTX Basic,A,Won,2017-01-02,2017-02-01,5\n".encode("latin-1")
    )
    unreadable = CliRunner().invoke(
        cli, ["import", "deals", "--org", "1", "--mapping", str(MAPPING), str(latin1)]
    )
    assert unreadable.exit_code == 2 and "utf-8" in unreadable.output
