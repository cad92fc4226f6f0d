// The dashboard: sign-in, then the figures the caller's role may see, every call in parallel.
import { client, settle } from "./api.js";
import { card, h } from "./dom.js";
import {
  alertsPanel,
  coldPanel,
  connectionsPanel,
  performersPanel,
  pipelinePanel,
  quotasPanel,
  trendsPanel,
} from "./panels.js";

const KEY = "tally.apiKey";
const SOURCE = "tally.keySource"; // "link": the key a sign-in link gave, revoked at sign-out
const TEAM = "tally.teamId";
const TREND_PERIODS = 6;
const TREND_CHARTS = 4;
const ALERTS_SHOWN = 100;

const $ = (id) => document.getElementById(id);

function say(text) {
  $("status").textContent = text;
}

// data-ready: "true" once every call is answered and its panel drawn; data-ready-ms: when,
// in ms since the navigation started (bench/dashboard.py reads it)
function ready(state) {
  document.body.dataset.ready = state;
  document.body.dataset.readyMs = String(Math.round(performance.now()));
}

function showSignIn(message) {
  $("dashboard").hidden = true;
  $("dashboard").replaceChildren();
  $("sign-out").hidden = true;
  $("team-choice").hidden = true;
  $("who").textContent = "";
  $("sign-in").hidden = false;
  $("sign-in-error").textContent = message || "";
  say("");
  ready("sign-in");
  $("api-key").focus();
}

async function signInWithLink() {
  const match = window.location.hash.match(/^#sign-in=([A-Za-z0-9_-]{1,100})$/);
  if (!match) return;
  // the token is spent whatever happens: out of the address bar and the history
  window.history.replaceState(null, "", window.location.pathname + window.location.search);
  say("Signing in…");
  try {
    const answer = await client(null).post("/sign-in", { token: match[1] });
    localStorage.setItem(KEY, answer.api_key);
    localStorage.setItem(SOURCE, "link");
  } catch (error) {
    localStorage.removeItem(KEY);
    throw error;
  }
}

async function signOut() {
  const key = localStorage.getItem(KEY);
  if (key && localStorage.getItem(SOURCE) === "link") {
    await settle(client(key).post("/sign-out"));
  }
  localStorage.removeItem(KEY);
  localStorage.removeItem(SOURCE);
  localStorage.removeItem(TEAM);
  showSignIn("You are signed out.");
}

// The first day of the period `n` periods before the one starting on `start` (YYYY-MM-DD).
export function periodsBefore(start, period, n) {
  const d = new Date(start + "T00:00:00Z");
  if (period === "day") d.setUTCDate(d.getUTCDate() - n);
  else if (period === "week") d.setUTCDate(d.getUTCDate() - 7 * n);
  else if (period === "month") d.setUTCMonth(d.getUTCMonth() - n);
  else if (period === "quarter") d.setUTCMonth(d.getUTCMonth() - 3 * n);
  else d.setUTCFullYear(d.getUTCFullYear() - n);
  return d.toISOString().slice(0, 10);
}

// Outcomes first: what a manager looks at before the activity behind it.
const PRIORITY = ["revenue", "deals_won", "gross_margin", "opportunities_created"];
const rank = (item) => (PRIORITY.includes(item.metric) ? PRIORITY.indexOf(item.metric) : PRIORITY.length);

// Today in the organization's time zone, YYYY-MM-DD (the day the API's "today" is).
function today(timezone) {
  const parts = { timeZone: timezone, year: "numeric", month: "2-digit", day: "2-digit" };
  return new Intl.DateTimeFormat("en-CA", parts).format(new Date());
}

// The subject's quotas in force today, outcomes first: those whose trends are drawn at once
// (TREND_CHARTS), and the others, drawn on demand: each is one /metrics call.
function trendQuotas(quotas, day) {
  if (!quotas.ok) return [[], []];
  const inForce = quotas.value.filter((q) => q.effective_from <= day && (!q.effective_to || q.effective_to >= day));
  const items = inForce.sort((a, b) => rank(a) - rank(b));
  return [items.slice(0, TREND_CHARTS), items.slice(TREND_CHARTS)];
}

// One trend per quota: the periods from the one TREND_PERIODS - 1 before today's to today's
// (the API answers one row per period between the ones containing start and end).
export function trends(api, quotas, subject, day) {
  return Promise.all(
    quotas.map(async (quota) => ({
      metric: quota.metric,
      period: quota.period,
      target: quota.target,
      count: TREND_PERIODS,
      result: await settle(
        api.get("/metrics", {
          metric: quota.metric,
          period: quota.period,
          start: periodsBefore(day, quota.period, TREND_PERIODS - 1),
          end: day,
          ...subject,
        }),
      ),
    })),
  );
}

// The trends drawn at once, and the panel's way to draw the others.
async function trendsOf(api, subject, day) {
  const quotas = await settle(api.all("/quotas", subject));
  const [now, later] = trendQuotas(quotas, day);
  const series = await trends(api, now, subject, day);
  return { series, later, load: (more) => trends(api, more, subject, day) };
}

const revenueOf = (attainment) => (attainment.ok ? attainment.value.items.find((i) => i.metric === "revenue") : undefined);

// A rep's open deals, every stage (the cold-deals panel judges each one).
function openDeals(api, subject) {
  return settle(api.all("/deals", { ...subject, status: "open" }));
}

// The pipeline by stage, summed by the API in the organization's currency.
function pipelineSummary(api, subject) {
  return settle(api.get("/pipeline/summary", subject));
}

// The team's attainment and each member's, in one call.
function teamAttainment(api, team) {
  return settle(api.get("/quotas/attainment", { team_id: team.id, members: true }));
}

// A member's share of the team's answer, as `?user_id=` would give it.
function memberResult(result, userId) {
  if (!result.ok) return result;
  const found = (result.value.members || []).find((m) => m.user_id === userId);
  return { ok: true, value: { items: found ? found.items : [] } };
}

// The first page of open alerts (a long list is read in the alerts' own tools).
function openAlerts(api, subject) {
  return settle(api.get("/alerts", { status: "open", limit: ALERTS_SHOWN, ...subject }));
}

async function teamView(api, me, team, context) {
  const { users, org } = context;
  const members = users.filter((u) => u.team_id === team.id && u.active && u.role === "rep");
  const names = new Map(users.map((u) => [u.id, u.name]));
  const subject = { team_id: team.id };
  const [trend, performers, summary, teamResult, alerts, connections] = await Promise.all([
    trendsOf(api, subject, today(org.timezone)),
    settle(api.get("/insights/performers", { team_id: team.id, period: "quarter" })),
    pipelineSummary(api, subject),
    teamAttainment(api, team),
    openAlerts(api, subject),
    settle(api.all("/connections")),
  ]);
  const memberResults = members.map((m) => memberResult(teamResult, m.id));
  const memberIds = new Set(members.map((m) => m.id));
  const teamConnections = connections.ok ? { ok: true, value: connections.value.filter((c) => memberIds.has(c.user_id)) } : connections;
  return [
    quotasPanel(`${team.name}: quotas in force`, [
      { label: `${team.name} (team)`, kind: "team", id: team.id, result: teamResult },
      ...members.map((m, i) => ({ label: m.name, kind: "user", id: m.id, result: memberResults[i] })),
    ]),
    alertsPanel(alerts),
    connectionsPanel(teamConnections, names),
    trendsPanel(trend.series, trend.later, trend.load),
    pipelinePanel({ title: "Pipeline", summary, revenue: revenueOf(teamResult) }),
    performersPanel(performers, names),
  ];
}

async function repView(api, me, context) {
  const { org } = context;
  const subject = { user_id: me.id };
  const [stages, trend, deals, summary, mine, alerts, connections] = await Promise.all([
    settle(api.get("/pipeline/stages")), // the cold-deals panel reads each stage's rotten_days
    trendsOf(api, subject, today(org.timezone)),
    openDeals(api, { owner_id: me.id }),
    pipelineSummary(api, subject),
    settle(api.get("/quotas/attainment", subject)),
    openAlerts(api, subject),
    settle(api.all("/connections", subject)),
  ]);
  return [
    quotasPanel("Your quotas in force", [{ label: me.name, kind: "user", id: me.id, result: mine }]),
    alertsPanel(alerts),
    coldPanel(deals, stages, alerts),
    connectionsPanel(connections, new Map([[me.id, me.name]])),
    trendsPanel(trend.series, trend.later, trend.load),
    pipelinePanel({ title: "Your pipeline", summary, revenue: revenueOf(mine) }),
  ];
}

async function render(api, me, context) {
  ready("loading");
  say("Loading the figures…");
  const started = performance.now();
  let panels;
  if (me.role === "rep") {
    panels = await repView(api, me, context);
  } else if (!context.team) {
    panels = [card("No team", h("p", { text: "You manage no team yet: an admin sets a team's manager." }))];
  } else {
    panels = await teamView(api, me, context.team, context);
  }
  $("dashboard").replaceChildren(...panels);
  $("dashboard").hidden = false;
  const seconds = ((performance.now() - started) / 1000).toFixed(2);
  say(`Figures as of ${new Date().toLocaleString()} (loaded in ${seconds} s).`);
  ready("true");
}

async function start() {
  ready("loading");
  $("sign-in-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const key = $("api-key").value.trim();
    if (!key) return;
    // a pasted key is tried once on its own: a mistyped one counts one failed authentication,
    // not one per call of the dashboard
    const tried = await settle(client(key).get("/users/me"));
    if (!tried.ok) {
      $("sign-in-error").textContent = tried.error.status === 401 ? "This key is not valid." : tried.error.message;
      return;
    }
    localStorage.setItem(KEY, key);
    localStorage.setItem(SOURCE, "pasted");
    $("api-key").value = "";
    await open();
    $("main").focus(); // the form is gone: a screen reader goes on from the figures
  });
  $("sign-out").addEventListener("click", signOut);
  // a link opened in a tab that shows the dashboard already changes only the fragment
  window.addEventListener("hashchange", () => {
    if (window.location.hash.startsWith("#sign-in=")) linkThenOpen();
  });
  await linkThenOpen();
}

async function linkThenOpen() {
  try {
    await signInWithLink();
  } catch (error) {
    showSignIn(`That sign-in link did not work: ${error.message}`);
    return;
  }
  await open();
}

async function open() {
  const key = localStorage.getItem(KEY);
  if (!key) {
    showSignIn();
    return;
  }
  const api = client(key);
  // all that needs only the key, at once: who the caller is, and what every view reads
  const [me, org, teams, users] = await Promise.all([
    settle(api.get("/users/me")),
    settle(api.get("/org")),
    settle(api.get("/teams")),
    settle(api.get("/users", { active: true })),
  ]);
  if (!me.ok) {
    if (me.error.status === 401) {
      localStorage.removeItem(KEY);
      localStorage.removeItem(SOURCE);
      showSignIn("This key is not valid (any more). Paste another, or ask for a sign-in link.");
    } else {
      say(`The API could not be reached: ${me.error.message}`);
      ready("error");
    }
    return;
  }
  for (const answer of [org, teams, users]) {
    if (!answer.ok) throw answer.error;
  }
  await show(api, me.value, org.value, me.value.role === "rep" ? [] : teams.value, users.value);
}

async function show(api, me, org, teams, users) {
  $("sign-in").hidden = true;
  $("sign-out").hidden = false;
  $("who").textContent = `${me.name} · ${me.role}`;
  const context = { org, users, team: null };
  if (me.role !== "rep" && teams.length) {
    const select = $("team");
    const chosen = teams.find((t) => String(t.id) === localStorage.getItem(TEAM)) || teams[0];
    select.replaceChildren(...teams.map((t) => h("option", { value: t.id, text: t.name, selected: t.id === chosen.id })));
    select.onchange = () => {
      localStorage.setItem(TEAM, select.value);
      context.team = teams.find((t) => String(t.id) === select.value);
      render(api, me, context);
    };
    $("team-choice").hidden = teams.length < 2;
    context.team = chosen;
  }
  await render(api, me, context);
}

start().catch((error) => {
  say(`Something went wrong: ${error.message}`);
  ready("error");
});
