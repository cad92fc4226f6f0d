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
    assert second.exit_code == 0, second.output
    assert "66 messages, all already seen by an earlier import: nothing new" in second.output
    assert "imported" not in second.output


def first_messages(mbox: Path, count: int, into: Path) -> Path:
    """The first `count` messages of `mbox`, byte for byte (so they are the same messages)."""
    raw = mbox.read_bytes()
    starts = [0, *(i + 1 for i in range(len(raw)) if raw.startswith(b"\nFrom ", i))]
    into.write_bytes(raw[: starts[count]])
    return into


def test_a_repeat_import_says_how_many_messages_it_had_already_seen(
    client: TestClient, tmp_path: Path
) -> None:
    org = make_org(client, domains=("enron.com",), timezone="America/Chicago")
    org.user("phillip.allen@enron.com")
    part = first_messages(ENRON / "inbox.mbox", 20, tmp_path / "part.mbox")
    runner = CliRunner()
    user = ["import", "mbox", "--user", "phillip.allen@enron.com"]
    assert runner.invoke(cli, [*user, str(part)]).exit_code == 0
    whole = runner.invoke(cli, [*user, str(ENRON / "inbox.mbox")])
    assert whole.exit_code == 0, whole.output
    summary = next(line for line in whole.output.splitlines() if line.startswith("66 messages"))
    assert summary.startswith("66 messages: ") and ", 20 already seen; " in summary


def test_an_import_that_concerns_nobody_says_so(client: TestClient) -> None:
    """Phillip Allen's mailbox imported for Ana: no message is from or to her."""
    org = make_org(client, domains=("acme.example",))
    org.user("ana@acme.example", aliases=["a.silva@acme.example"])
    result = CliRunner().invoke(
        cli, ["import", "mbox", "--user", "ana@acme.example", str(ENRON / "inbox.mbox")]
    )
    assert result.exit_code == 0, result.output
    assert (
        "0 of 66 messages are from or to a.silva@acme.example or ana@acme.example (the user's "
        "address and aliases): check --user and the files"
    ) in " ".join(result.output.split())
    # Phillip's own addresses, the ones to give as --user or aliases
    assert "the addresses most often in them: k..allen@enron.com (" in result.output


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
