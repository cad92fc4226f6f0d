"""Reaching further back in a CalDAV calendar, against a real Radicale: meetings older than the
window count once a user widens it (POST /connections/{id}/backfill), none twice, and a pull
cut off while it re-reads the calendars still re-reads those it had not finished."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.config import settings
from connectors.calendar.caldav import CalDavConnector
from tests.api import make_org
from tests.fixtures.radicale import RadicaleServer
from tests.sync.test_caldav_sync import ANA, BOB, NOW, Calendars, Ev, day

DEFAULT_SINCE = NOW - timedelta(days=settings.backfill_days)
WIDER = NOW - timedelta(days=540)  # about 18 months back
RECENT = Ev("recent-review", day(-10), "Recent review", "meeting", created=day(-20))
OLD = Ev("old-kickoff", day(-425), "Old kickoff", "meeting", created=day(-440))
ANCIENT = Ev("ancient-demo", day(-700), "Ancient demo", "meeting", created=day(-710))


@pytest.fixture
def cals(client: TestClient, radicale: RadicaleServer) -> Calendars:
    org = make_org(client)
    org.user(ANA, name="Ana Silva")
    org.user(BOB, name="Bob Stone")
    return Calendars(org, radicale)


def activities(cals: Calendars) -> list[tuple[str, str]]:
    response = cals.org.client.get(
        "/api/v1/activities", params={"limit": 1000}, headers=cals.org.as_admin()
    )
    assert response.status_code == 200, response.text
    return sorted((a["type"], a["subject"] or "") for a in response.json()["items"])


def test_meetings_older_than_the_window_count_once_it_is_widened(cals: Calendars) -> None:
    connection_id = cals.connect(ANA)
    for ev in (RECENT, OLD, ANCIENT):
        cals.put(ANA, ev)
    cals.sync(ANA)
    before = activities(cals)
    assert {subject for _, subject in before} == {"Recent review"}

    response = cals.org.client.post(
        f"/api/v1/connections/{connection_id}/backfill",
        json={"from": WIDER.date().isoformat()},
        headers=cals.org.as_user(ANA),
    )
    assert response.status_code == 202, response.text
    cals.sync(ANA)
    after = activities(cals)
    old = [(kind, subject) for kind, subject in after if subject == "Old kickoff"]
    assert old == [(kind, "Old kickoff") for kind, subject in before]  # the same kinds, once
    assert [a for a in after if a[1] == "Recent review"] == before  # not doubled
    assert "Ancient demo" not in {subject for _, subject in after}
    assert cals.connection(ANA)["status"] == "idle"

    cals.sync(ANA)  # nothing new: nothing changes
    assert activities(cals) == after


def occurrences(pages: list[Any]) -> dict[str, list[str]]:
    """Summaries read per calendar (the resource's calendar path)."""
    found: dict[str, list[str]] = {}
    for page in pages:
        for item in page.calendar:
            calendar = item.resource.rsplit("/", 1)[0]
            found.setdefault(calendar, []).extend(e.summary for e in item.events)
    return {k: sorted(v) for k, v in found.items()}


def test_a_re_read_cut_off_mid_way_still_re_reads_the_calendars_it_had_not_finished(
    radicale: RadicaleServer,
) -> None:
    radicale.add_user("ana", "secret")
    for slug in ("sales", "support"):
        radicale.make_calendar("ana", slug, slug.title())
        for ev in (RECENT, OLD):
            radicale.put("ana", f"/ana/{slug}/", f"{ev.uid}.ics", ev.ics())
    connector = CalDavConnector(radicale.url, "ana", "secret")
    first = list(connector.pull(None, since=DEFAULT_SINCE))
    assert occurrences(first) == {
        "/ana/sales": ["Recent review"],
        "/ana/support": ["Recent review"],
    }
    cursor = first[-1].cursor

    widened = connector.pull(cursor, since=DEFAULT_SINCE, history_from=WIDER)
    cut = next(widened)  # the first calendar's page is stored, then the worker stops
    del widened  # the generator closes: its connection too
    assert occurrences([cut]) == {"/ana/sales": ["Old kickoff", "Recent review"]}
    assert cut.cursor is not None
    assert json.loads(cut.cursor)["reread"] == ["/ana/sales/", "/ana/support/"]

    resumed = list(connector.pull(cut.cursor, since=DEFAULT_SINCE, history_from=WIDER))
    assert occurrences(resumed)["/ana/support"] == ["Old kickoff", "Recent review"]
    last = resumed[-1].cursor
    assert last is not None and "reread" not in json.loads(last)

    again = list(connector.pull(last, since=DEFAULT_SINCE, history_from=WIDER))
    assert occurrences(again) == {}  # done: nothing is read again
