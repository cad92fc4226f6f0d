"""The Maven CRM export as the deal tests read it: its rows, the organization of its Central
office, and the deal metrics derived from the CSV alone (csv, datetime and decimal: none of
Tally's code), compared with what GET /metrics answers."""

from __future__ import annotations

import csv
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from tests.api import Org, make_org

DATA = Path(__file__).resolve().parent.parent / "data" / "deals"
EXPORT = DATA / "sales_pipeline.csv"
MAPPING = Path(__file__).resolve().parents[2] / "docs" / "examples" / "maven-crm-mapping.toml"
PRICES = {r["product"]: r["sales_price"] for r in csv.DictReader((DATA / "products.csv").open())}
TEAMS = {r["sales_agent"]: r["manager"] for r in csv.DictReader((DATA / "sales_teams.csv").open())}
ROWS = list(csv.DictReader(EXPORT.open()))
METRICS = (
    "opportunities_created",
    "deals_won",
    "revenue",
    "win_rate",
    "avg_deal_value",
    "sales_cycle_days",
)
FIRST, LAST = date(2016, 10, 1), date(2017, 12, 31)


def email(name: str) -> str:
    return name.lower().replace(" ", ".") + "@maven.example"


@dataclass
class Tally:
    """One subject's facts in one period."""

    created: int = 0
    won: int = 0
    lost: int = 0
    revenue: Decimal = Decimal(0)
    cycle_days: int = 0

    def value(self, metric: str) -> Decimal | None:
        closed = self.won + self.lost
        values: dict[str, Decimal | None] = {
            "opportunities_created": Decimal(self.created),
            "deals_won": Decimal(self.won),
            "revenue": self.revenue,
            "win_rate": Decimal(self.won) / closed if closed else None,
            "avg_deal_value": self.revenue / self.won if self.won else None,
            "sales_cycle_days": Decimal(self.cycle_days) / self.won if self.won else None,
        }
        return values[metric]


def period_start(day: date, unit: str) -> date:
    month = day.month if unit == "month" else (day.month - 1) // 3 * 3 + 1
    return date(day.year, month, 1)


def derive(rows: list[dict[str, str]]) -> dict[tuple[str, str, date], Tally]:
    """(rep or manager, unit, period start) -> facts, from the CSV alone: an opportunity is
    created on its engage date, won or lost on its close date; the cycle is the days between
    the two dates; a team is its manager's reps pooled."""
    facts: dict[tuple[str, str, date], Tally] = defaultdict(Tally)
    for row in rows:
        agent = row["sales_agent"]
        engaged = date.fromisoformat(row["engage_date"]) if row["engage_date"] else None
        closed = date.fromisoformat(row["close_date"]) if row["close_date"] else None
        for subject in (agent, TEAMS[agent]):
            for unit in ("month", "quarter"):
                if engaged:
                    facts[subject, unit, period_start(engaged, unit)].created += 1
                if closed and row["deal_stage"] == "Won":
                    assert engaged is not None
                    won = facts[subject, unit, period_start(closed, unit)]
                    won.won += 1
                    won.revenue += Decimal(row["close_value"])
                    won.cycle_days += (closed - engaged).days
                if closed and row["deal_stage"] == "Lost":
                    facts[subject, unit, period_start(closed, unit)].lost += 1
    return facts


def as_number(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def setup_org(
    client: TestClient, name: str = "Maven"
) -> tuple[Org, dict[str, int], dict[str, int]]:
    """The Central office: its 2 managers, their teams, their 11 reps (users by name)."""
    org = make_org(client, name=name, timezone="America/Chicago", currency="USD")
    users: dict[str, int] = {}
    teams: dict[str, int] = {}
    for manager in sorted(set(TEAMS.values())):
        users[manager] = org.user(email(manager), name=manager, role="manager")["id"]
        teams[manager] = org.team(f"{manager}'s team", manager_id=users[manager])["id"]
    for agent, manager in TEAMS.items():
        users[agent] = org.user(email(agent), name=agent, team_id=teams[manager])["id"]
    return org, users, teams


def compare(
    org: Org,
    users: dict[str, int],
    teams: dict[str, int],
    subjects: list[str],
    rows: list[dict[str, str]],
) -> int:
    """Every metric of every subject, month and quarter: Tally's series against the CSV's."""
    expected = derive(rows)
    compared = 0
    for subject in subjects:
        query = f"team_id={teams[subject]}" if subject in teams else f"user_id={users[subject]}"
        for unit in ("month", "quarter"):
            for metric in METRICS:
                response = org.client.get(
                    f"/api/v1/metrics?metric={metric}&period={unit}&start={FIRST}&end={LAST}&{query}",
                    headers=org.as_admin(),
                )
                assert response.status_code == 200, response.text
                for point in response.json()["series"]:
                    start = date.fromisoformat(point["period_start"])
                    want = expected.get((subject, unit, start), Tally()).value(metric)
                    got = as_number(point["value"])
                    where = f"{metric} of {subject} in the {unit} of {start}"
                    if want is None or got is None:
                        assert got == want, where
                    else:  # ratios and means to 1e-6; counts and sums exactly
                        assert abs(got - want) < Decimal("0.000001"), f"{where}: {got} != {want}"
                    compared += 1
    return compared
