"""The dashboard in a real headless Chromium against a real server: a manager (pasted key) and
a rep (sign-in link) see the API's own numbers, a rep sees nothing of anyone else, the page is
operable by keyboard, and screenshots at desktop and phone widths are saved (to
$TALLY_SCREENSHOTS, e.g. docs/screenshots to refresh the README's; else a temporary folder, so
a test run leaves the checkout as it was)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from fastapi.testclient import TestClient

from tests.dashboard.conftest import LiveServer
from tests.dashboard.org import NAMES, Generated, generate

SHOTS = Path(os.environ.get("TALLY_SCREENSHOTS") or tempfile.mkdtemp(prefix="tally-shots-"))
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


class Browser:
    """One page and what it did: the API calls it made, their statuses, its script errors."""

    def __init__(self, chromium: Any, server: LiveServer, viewport: dict[str, int]) -> None:
        self.context = chromium.new_context(viewport=viewport)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.calls: list[tuple[str, int]] = []
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on(
            "console",
            lambda m: self.errors.append(m.text) if "Content Security Policy" in m.text else None,
        )
        self.page.on(
            "response",
            lambda r: self.calls.append((r.url, r.status)) if "/api/v1/" in r.url else None,
        )
        self.server = server

    def ready(self) -> None:
        self.page.wait_for_selector("body[data-ready='true']", timeout=30_000)
        assert not self.errors, self.errors
        assert not [c for c in self.calls if c[1] >= 500], self.calls

    def shot(self, name: str) -> None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)

    def text(self) -> str:
        return str(self.page.inner_text("body"))


@pytest.fixture
def world(client: TestClient) -> Generated:
    return generate(client)


@pytest.fixture
def browsers(chromium: Any, live_server: LiveServer) -> Iterator[list[Browser]]:
    opened: list[Browser] = []
    yield opened
    for browser in opened:
        browser.context.close()


def parse(text: str) -> float | None:
    text = text.strip().rstrip("×%")
    return None if text == "—" else float(text.replace(",", ""))


def close(shown: str, expected: Any, tolerance: float = 0.006) -> bool:
    value = parse(shown)
    if expected is None or value is None:
        return value is None and expected is None
    return abs(value - float(expected)) <= tolerance + abs(float(expected)) * 1e-3


def api(client: TestClient, headers: dict[str, str], path: str, **params: Any) -> Any:
    answer = client.get(f"/api/v1{path}", params=params, headers=headers)
    assert answer.status_code == 200, answer.text
    return answer.json()


def check_quotas(page: Any, subject: str, items: list[dict[str, Any]]) -> None:
    """Each quota cell of the row shows the API's actual, target and attainment exactly, and
    its pace and forecast (which move with the clock) to the shown precision."""
    row = page.locator(f"tr[data-subject='{subject}']")
    assert items, subject
    for item in items:
        cell = row.locator(f"td[data-quota-id='{item['quota_id']}']")
        assert close(cell.locator(".actual").inner_text(), item["actual"]), (subject, item)
        assert close(cell.locator(".target").inner_text(), item["target"]), (subject, item)
        shown = parse(cell.locator(".attainment").inner_text())
        assert shown is not None and abs(shown - float(item["attainment"]) * 100) <= 0.5001
        assert close(cell.locator(".pace").inner_text(), item["pace"], 0.011), (subject, item)
        assert close(cell.locator(".forecast").inner_text(), item["forecast"], 0.011)
        behind = float(item["pace"]) < 1
        assert ("Behind" in cell.inner_text()) == behind, (subject, item)
        assert ("is-behind" in (cell.get_attribute("class") or "")) == behind


def check_pipeline(
    page: Any, summary: dict[str, Any], deals: list[dict[str, Any]], stages: list[dict[str, Any]]
) -> None:
    """The table shows GET /pipeline/summary, whose figures are the open deals' own (all in
    the organization's currency here)."""
    assert [s["name"] for s in summary["stages"]] == [s["name"] for s in stages]
    for stage, shown in zip(stages, summary["stages"], strict=True):
        mine = [d for d in deals if d["stage"] == stage["name"]]
        assert shown["count"] == len(mine)
        assert close(str(shown["value"]), sum(float(d["value"]) for d in mine))
        weighted = sum(float(d["value"]) * float(d["probability"]) for d in mine)
        assert close(str(shown["weighted"]), weighted)
        row = page.locator(f"tr[data-stage='{stage['name']}']")
        assert parse(row.locator(".count").inner_text()) == len(mine)
        assert close(row.locator(".value").inner_text(), shown["value"])
        assert close(row.locator(".weighted").inner_text(), shown["weighted"])
    total = page.locator("tr[data-stage='total']")
    assert parse(total.locator(".count").inner_text()) == summary["total"]["count"] == len(deals)


def check_trends(page: Any, client: TestClient, headers: dict[str, str], **subject: int) -> None:
    for item in api(client, headers, "/quotas/attainment", **subject)["items"]:
        figure = page.locator("figure").filter(has_text=f"per {item['period']}, last 6 periods")
        figure = figure.filter(has_text=_metric_words(item["metric"]))
        shown = [parse(t) for t in figure.locator("tbody td").all_text_contents()]
        starts = figure.locator("tbody th").all_text_contents()
        first = starts[0]
        series = api(
            client, headers, "/metrics", metric=item["metric"], period=item["period"],
            start=first, end=item["period_start"], **subject,
        )["series"]  # fmt: skip
        assert [row["period_start"] for row in series] == starts
        assert len(shown) == 6
        for value, row in zip(shown, series, strict=True):
            assert value == (None if row["value"] is None else float(row["value"]))


def _metric_words(metric: str) -> str:
    return {
        "emails_sent": "Emails sent",
        "revenue": "Revenue",
        "chat_conversations": "Chat conversations",
    }[metric]


# WCAG 2 contrast of every visible text against the background it sits on: 4.5:1, or 3:1
# for large text (24 px, or 18.66 px bold).
CONTRAST = """() => {
  const rgb = (c) => (c.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => {
    const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = (e) => {
    for (; e; e = e.parentElement) {
      const c = rgb(getComputedStyle(e).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] > 0)) return c;
    }
    return [255, 255, 255];
  };
  const low = [];
  for (const e of document.querySelectorAll("body *")) {
    const own = [...e.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    if (!own || !e.checkVisibility() || e.closest("svg")) continue;
    const style = getComputedStyle(e);
    const [a, b] = [lum(rgb(style.color)), lum(background(e))];
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    const size = parseFloat(style.fontSize);
    const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
    if (ratio < (large ? 3 : 4.5)) low.push(`${e.tagName}.${e.className}: ${ratio.toFixed(2)}`);
  }
  return low;
}"""


def panel_text(page: Any, title: str) -> str:
    panel = page.locator("section.card").filter(has=page.get_by_role("heading", name=title))
    return str(panel.inner_text())


def check_alerts(page: Any, alerts: list[dict[str, Any]]) -> None:
    """Every open alert the caller may see, by its message, and nothing else."""
    text = panel_text(page, "Open alerts")
    assert alerts, "the generated organization has alerts open"
    for alert in alerts:
        assert alert["message"] in text, (alert["message"], text)
    shown = page.locator("[data-alert-id]")
    assert sorted(shown.nth(i).get_attribute("data-alert-id") for i in range(shown.count())) == (
        sorted(str(a["id"]) for a in alerts)
    )


def test_a_manager_sees_the_team_against_every_quota(
    world: Generated, client: TestClient, live_server: LiveServer, chromium: Any,
    browsers: list[Browser],
) -> None:  # fmt: skip
    desktop = Browser(chromium, live_server, DESKTOP)
    browsers.append(desktop)
    page = desktop.page
    page.goto(live_server.url + "/")
    page.wait_for_selector("body[data-ready='sign-in']")
    page.get_by_label("API key").fill(world.key("mia"))
    page.get_by_role("button", name="Sign in").click()
    desktop.ready()
    mia = world.headers("mia")
    east, ana, abe = world.ids["east"], world.ids["ana"], world.ids["abe"]

    team = api(client, mia, "/quotas/attainment", team_id=east)["items"]
    check_quotas(page, f"team:{east}", team)
    for rep in (ana, abe):
        check_quotas(
            page, f"user:{rep}", api(client, mia, "/quotas/attainment", user_id=rep)["items"]
        )
    text = desktop.text()
    assert "Ana Silva" in text and "Abe Okafor" in text
    assert "Bob Westwood" not in text  # West is Max's team
    assert "Behind" in text and "On track" in text

    deals = api(client, mia, "/deals", team_id=east, status="open", limit=1000)["items"]
    stages = api(client, mia, "/pipeline/stages")["stages"]
    assert len(deals) == 3
    summary = api(client, mia, "/pipeline/summary", team_id=east)
    check_pipeline(page, summary, deals, stages)
    revenue = next(i for i in team if i["metric"] == "revenue")
    assert close(page.locator(".forecast-pipeline").inner_text(), revenue["forecast_pipeline"])
    assert close(page.locator(".coverage").inner_text(), revenue["coverage"])
    check_trends(page, client, mia, team_id=east)

    alerts = api(client, mia, "/alerts", status="open")["items"]
    assert {a["kind"] for a in alerts} >= {"behind_pace", "deal_going_cold"}
    check_alerts(page, alerts)
    performers = api(client, mia, "/insights/performers", team_id=east, period="quarter")
    shown = panel_text(page, "What the top performers do differently")
    names = {world.ids[n]: NAMES[n] for n in ("ana", "abe")}
    assert all(names[u] in shown for u in performers["top_user_ids"]), shown
    rows = page.locator("table.drivers tbody tr")
    assert rows.count() == min(6, len(performers["drivers"])) > 0  # the six furthest from 1
    assert rows.first.locator("th").inner_text() != ""
    # the calls, all parallel but for two waves: the pasted key tried (1); what needs only
    # the key (4); attainment of the team with its members (1), the pipeline summary (1),
    # alerts, connections, performers, the team's quotas; then a trend per quota (at most 4
    # at first)
    expected = 1 + 4 + 1 + 1 + 3 + 1 + min(4, len(team))
    assert len(desktop.calls) == expected, desktop.calls
    desktop.shot("manager-desktop")
    assert page.evaluate(CONTRAST) == []

    # keyboard: from the top of the page (the key is remembered), Tab reaches the skip link,
    # sign-out, the tables' scroll regions
    page.reload()
    desktop.ready()
    reached = []
    for _ in range(12):
        page.keyboard.press("Tab")
        reached.append(page.evaluate(
            "(() => { const e = document.activeElement;"
            " return e.tagName + ':' + (e.getAttribute('aria-label') || e.textContent.trim()); })()"
        ))  # fmt: skip
    assert reached[0] == "A:Skip to the dashboard", reached
    assert "BUTTON:Sign out" in reached, reached
    assert any(r.startswith("DIV:") and "table" in r for r in reached), reached
    # focus is visible: the focused element gets an outline
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"

    phone = Browser(chromium, live_server, PHONE)
    browsers.append(phone)
    phone.page.goto(live_server.url + "/")
    phone.page.get_by_label("API key").fill(world.key("mia"))
    phone.page.keyboard.press("Enter")
    phone.ready()
    # nothing wider than the phone but the tables, which scroll inside their region
    overflow = phone.page.evaluate("document.documentElement.scrollWidth")
    assert overflow <= PHONE["width"], overflow
    phone.shot("manager-phone")

    # signing out by keyboard forgets a pasted key but does not revoke it
    page.get_by_role("button", name="Sign out").focus()
    page.keyboard.press("Enter")
    page.wait_for_selector("body[data-ready='sign-in']")
    assert page.evaluate("localStorage.getItem('tally.apiKey')") is None
    assert client.get("/api/v1/users/me", headers=mia).status_code == 200


def test_a_rep_signs_in_with_a_link_and_sees_only_their_own(
    world: Generated, client: TestClient, live_server: LiveServer, chromium: Any,
    browsers: list[Browser],
) -> None:  # fmt: skip
    ana = world.ids["ana"]
    made = requests.post(
        f"{live_server.url}/api/v1/users/{ana}/sign-in-links",
        headers=world.org.as_admin(),
        timeout=30,
    )
    assert made.status_code == 201, made.text
    url = made.json()["url"]
    assert url.startswith(live_server.url + "/#sign-in=")

    desktop = Browser(chromium, live_server, DESKTOP)
    browsers.append(desktop)
    page = desktop.page
    page.goto(url)
    desktop.ready()
    assert "#sign-in" not in page.url  # the spent token leaves the address bar
    key = page.evaluate("localStorage.getItem('tally.apiKey')")
    mine = {"Authorization": f"Bearer {key}"}
    assert api(client, mine, "/users/me")["id"] == ana

    items = api(client, mine, "/quotas/attainment", user_id=ana)["items"]
    check_quotas(page, f"user:{ana}", items)
    # her chat quota counts the chats a chat tool posted (§11), shown like any other
    chats = next(i for i in items if i["metric"] == "chat_conversations")
    talked = [
        a["occurred_at"][:10]
        for a in api(client, mine, "/activities", user_id=ana, limit=100)["items"]
        if a["type"] == "chat_conversation"
    ]
    assert len(talked) == 3
    assert float(chats["actual"]) == sum(1 for day in talked if day >= chats["period_start"])
    deals = api(client, mine, "/deals", owner_id=ana, status="open")["items"]
    summary = api(client, mine, "/pipeline/summary", user_id=ana)
    check_pipeline(page, summary, deals, api(client, mine, "/pipeline/stages")["stages"])
    check_trends(page, client, mine, user_id=ana)
    check_alerts(page, api(client, mine, "/alerts", status="open")["items"])
    cold = page.locator("ul.cold li")
    assert cold.count() == 1
    assert cold.get_attribute("data-deal-id") == str(world.deals["Ana Cold pilot"]["id"])
    assert "no activity for 40 days" in cold.inner_text()

    # nothing of anyone else: names, deals, numbers, nor a call about them
    text = desktop.text()
    for other in ("Abe Okafor", "Bob Westwood", "Max Westley", "Mia Manager", "East (team)"):
        assert other not in text
    assert "Ana Cold pilot" in text
    for name in world.deals:
        assert name.startswith("Ana") or name not in text, name
    assert "Team" not in desktop.page.locator("header").inner_text()  # no team to choose
    assert "1 / 500" not in text  # Abe's e-mail quota
    foreign = {world.ids[n] for n in ("abe", "bob", "mia", "max", "east", "west")}
    for call, status in desktop.calls:
        assert status < 400, (call, status)
        for other_id in foreign:
            assert f"_id={other_id}&" not in call + "&", call
    desktop.shot("rep-desktop")

    phone = Browser(chromium, live_server, PHONE)
    browsers.append(phone)
    phone.page.goto(live_server.url + "/")
    phone.page.evaluate(f"localStorage.setItem('tally.apiKey', {key!r})")
    phone.page.reload()
    phone.ready()
    phone.shot("rep-phone")
    phone.context.close()
    browsers.remove(phone)

    # sign-out revokes the key the link gave
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_selector("body[data-ready='sign-in']")
    assert page.get_by_text("You are signed out.").is_visible()
    assert client.get("/api/v1/users/me", headers=mine).status_code == 401
    # and the link cannot be used again
    page.goto(url)
    page.get_by_text("That sign-in link did not work").wait_for()
    assert page.evaluate("document.body.dataset.ready") == "sign-in"


def test_an_admin_chooses_the_team(
    world: Generated, client: TestClient, live_server: LiveServer, chromium: Any,
    browsers: list[Browser],
) -> None:  # fmt: skip
    desktop = Browser(chromium, live_server, DESKTOP)
    browsers.append(desktop)
    page = desktop.page
    page.goto(live_server.url + "/")
    page.get_by_label("API key").fill(world.org.admin_key)
    page.keyboard.press("Enter")
    desktop.ready()
    choice = page.get_by_label("Team")
    assert choice.is_visible()
    assert choice.locator("option").all_inner_texts() == ["East", "West"]
    assert "Ana Silva" in desktop.text() and "Bob Westwood" not in desktop.text()
    choice.select_option(label="West")
    bob = world.ids["bob"]
    page.wait_for_selector(f"tr[data-subject='user:{bob}']")
    desktop.ready()
    admin = world.org.as_admin()
    check_quotas(
        page, f"user:{bob}", api(client, admin, "/quotas/attainment", user_id=bob)["items"]
    )
    assert "Ana Silva" not in desktop.text()
    # the choice is remembered
    page.reload()
    desktop.ready()
    assert page.get_by_label("Team").input_value() == str(world.ids["west"])
