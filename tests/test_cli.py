"""The `tally` command as an admin uses it: migrate, import with a progress bar, errors."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from app.cli import cli
from tests.api import make_org

ENRON = Path(__file__).resolve().parent / "data" / "enron" / "allen-p"


def test_import_mbox_reports_what_it_did_and_twice_changes_nothing(client: TestClient) -> None:
    org = make_org(client, domains=("enron.com",), timezone="America/Chicago")
    org.user("phillip.allen@enron.com")
    runner = CliRunner()
    args = ["import", "mbox", "--user", "Phillip.Allen@enron.com", str(ENRON / "inbox.mbox")]
    first = runner.invoke(cli, args)
    assert first.exit_code == 0, first.output
    assert "66 messages:" in first.output and "0 unreadable" in first.output
    second = runner.invoke(cli, args)
    assert second.exit_code == 0 and "0 imported, 0 filtered" in second.output
    assert "0 new activities" in second.output


def test_import_for_an_unknown_user_says_so(client: TestClient) -> None:
    result = CliRunner().invoke(
        cli, ["import", "mbox", "--user", "nobody@nowhere.example", str(ENRON / "inbox.mbox")]
    )
    assert (
        result.exit_code == 2 and "no user with the address nobody@nowhere.example" in result.output
    )


def test_import_of_a_missing_file_is_refused(client: TestClient) -> None:
    result = CliRunner().invoke(cli, ["import", "maildir", "--user", "a@b.example", "/no/such/dir"])
    assert result.exit_code == 2


def test_health_and_prometheus_metrics(client: TestClient) -> None:
    health = client.get("/healthz")
    assert health.status_code == 200 and health.json()["status"] == "ok"
    client.get("/api/v1/users/me")
    metrics = client.get("/metrics").text
    assert (
        'tally_http_requests_total{method="GET",route="/api/v1/users/me",status="401"}' in metrics
    )


ICS = Path(__file__).resolve().parent / "data" / "ics"


def test_import_ics_counts_meetings_and_twice_changes_nothing(client: TestClient) -> None:
    org = make_org(client)
    org.user("ana@acme.example")
    files = [
        ICS / "icalendar" / "issue_156_RDATE_with_PERIOD_TZID_khal_2.ics",  # khal, 1 attendee
        ICS / "recurring-ical-events" / "issue_132_swapped_start_and_end.ics",
        ICS / "recurring-ical-events" / "subcomponents.ics",
        ICS / "recurring-ical-events" / "daylight_saving_time.ics",  # Google: no person invited
        ICS / "icalendar" / "broken_ical.ics",
    ]
    args = ["import", "ics", "--user", "ana@acme.example", *map(str, files)]

    def activities() -> list[tuple[str, str, str]]:
        items = client.get("/api/v1/activities?limit=1000", headers=org.as_admin()).json()["items"]
        return sorted((a["type"], a["occurred_at"], a["subject"]) for a in items)

    first = CliRunner().invoke(cli, args)
    assert first.exit_code == 0, first.output
    assert "5 calendar files: 1 unreadable; 3 new activities" in first.output
    imported = activities()
    # each of the three files has one past event with an outside person on it: held once
    assert [kind for kind, _, _ in imported] == ["meeting_held"] * 3
    second = CliRunner().invoke(cli, args)
    assert second.exit_code == 0, second.output
    # counts are of what this run added: the broken file was recorded by the first one
    assert "5 calendar files: 0 unreadable; 0 new activities" in second.output
    assert activities() == imported
