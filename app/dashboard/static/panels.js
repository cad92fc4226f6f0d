// The dashboard's panels, each built from API answers only.
import { barChart, rowChart } from "./charts.js";
import { card, day, h, metricName, number, pace, percent, quotaName, scroller, unavailable } from "./dom.js";

export function isBehind(item) {
  return item.pace !== null && item.pace !== undefined && Number(item.pace) < 1;
}

function statusWord(item) {
  if (item.pace === null || item.pace === undefined) return h("span", { class: "state", text: "No pace yet" });
  return isBehind(item)
    ? h("span", { class: "state behind" }, h("span", { "aria-hidden": "true", text: "▼ " }), "Behind")
    : h("span", { class: "state ok" }, h("span", { "aria-hidden": "true", text: "✓ " }), "On track");
}

// `label`: the column's quota, shown in the cell itself when a phone stacks the table
function quotaCell(item, label) {
  if (!item) return h("td", { class: "none", "data-label": label }, h("span", { class: "muted", text: "no quota" }));
  return h(
    "td",
    { class: isBehind(item) ? "quota is-behind" : "quota", "data-quota-id": item.quota_id, "data-label": label },
    h("div", { class: "big" }, h("span", { class: "actual", text: number(item.actual) }), " / ", h("span", { class: "target", text: number(item.target) })),
    h("div", {}, h("span", { class: "attainment", text: percent(item.attainment) }), " of target, ", day(item.period_start), " – ", day(item.period_end)),
    h("div", {}, "Pace ", h("span", { class: "pace", text: pace(item.pace) }), " · Forecast ", h("span", { class: "forecast", text: number(item.forecast) })),
    statusWord(item),
  );
}

// rows: [{label, kind: "team" | "user", id, result: settled attainment}]
export function quotasPanel(title, rows) {
  const columns = [];
  const seen = new Set();
  for (const row of rows) {
    for (const item of row.result.ok ? row.result.value.items : []) {
      const key = `${item.metric}/${item.period}`;
      if (!seen.has(key)) {
        seen.add(key);
        columns.push({ key, metric: item.metric, period: item.period });
      }
    }
  }
  if (!columns.length) {
    const failed = rows.find((r) => !r.result.ok);
    return card(title, failed ? unavailable("Attainment", failed.result.error) : h("p", { class: "muted", text: "No quota in force today." }));
  }
  const head = h(
    "tr",
    {},
    h("th", { scope: "col", text: "Who" }),
    columns.map((c) => h("th", { scope: "col", text: quotaName(c.metric, c.period) })),
  );
  const body = rows.map((row) => {
    const byKey = new Map((row.result.ok ? row.result.value.items : []).map((i) => [`${i.metric}/${i.period}`, i]));
    const cells = row.result.ok
      ? columns.map((c) => quotaCell(byKey.get(c.key), quotaName(c.metric, c.period)))
      : [h("td", { colspan: columns.length }, unavailable("Attainment", row.result.error))];
    return h(
      "tr",
      { "data-subject": `${row.kind}:${row.id}`, class: row.kind === "team" ? "team-row" : "" },
      h("th", { scope: "row", text: row.label }),
      cells,
    );
  });
  const behind = rows.flatMap((r) => (r.result.ok ? r.result.value.items.filter(isBehind) : [])).length;
  const table = h("table", { class: "quotas" }, h("caption", { text: `${title}: actual / target, attainment, pace and forecast for each quota in force today` }), h("thead", {}, head), h("tbody", {}, body));
  return card(
    title,
    h("p", { class: behind ? "summary behind" : "summary ok", text: behind ? `${behind} quota${behind > 1 ? "s" : ""} behind pace (pace below 1).` : "Every quota is on pace." }),
    scroller(`${title} table`, table),
  );
}

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

// A period's start, short enough for an axis: "Oct 26", "2026", "12-07".
export function shortPeriod(start, period) {
  if (period === "year") return start.slice(0, 4);
  if (period === "month" || period === "quarter") return `${MONTHS[Number(start.slice(5, 7)) - 1]} ${start.slice(2, 4)}`;
  return start.slice(5);
}

function trendCharts(series) {
  return series.map((s) => {
    const title = `${quotaName(s.metric, s.period)}, last ${s.count} periods`;
    if (!s.result.ok) return unavailable(title, s.result.error);
    const points = s.result.value.series.map((row) => ({ label: shortPeriod(row.period_start, s.period), period: row.period_start, value: row.value }));
    return barChart({ title, points, target: s.target });
  });
}

// series: [{metric, period, target, count, result: settled /metrics answer}] drawn now;
// `later`: the other quotas, drawn when asked for (`load(later)` gives their series).
export function trendsPanel(series, later = [], load = null) {
  if (!series.length) return card("Trends", h("p", { class: "muted", text: "No quota to chart." }));
  const charts = h("div", { class: "charts" }, trendCharts(series));
  const parts = [charts];
  if (later.length && load) {
    const button = h("button", { type: "button", class: "more", text: `Show ${later.length} more trend${later.length > 1 ? "s" : ""}` });
    button.addEventListener("click", async () => {
      button.disabled = true;
      button.textContent = "Loading…";
      charts.append(...trendCharts(await load(later)));
      button.remove();
      charts.lastElementChild.setAttribute("tabindex", "-1");
    });
    parts.push(button);
  }
  return card("Trends", ...parts);
}

// summary: a settled GET /pipeline/summary (values already in the organization's currency)
export function pipelinePanel({ title, summary, revenue }) {
  if (!summary.ok) return card(title, unavailable("The pipeline", summary.error));
  const { currency, stages: rows, total } = summary.value;
  const table = h(
    "table",
    { class: "pipeline" },
    h("caption", { text: `Open deals by stage, values in ${currency}` }),
    h("thead", {}, h("tr", {}, ["Stage", "Open deals", "Value", "Probability", "Weighted"].map((t) => h("th", { scope: "col", text: t })))),
    h(
      "tbody",
      {},
      rows.map((r) =>
        h("tr", { "data-stage": r.name }, h("th", { scope: "row", text: r.name }), h("td", { class: "count", text: number(r.count) }), h("td", { class: "value", text: number(r.value) }), h("td", { text: percent(r.probability) }), h("td", { class: "weighted", text: number(r.weighted) })),
      ),
    ),
    h("tfoot", {}, h("tr", { "data-stage": "total" }, h("th", { scope: "row", text: "Total" }), h("td", { class: "count", text: number(total.count) }), h("td", { class: "value", text: number(total.value) }), h("td", {}), h("td", { class: "weighted", text: number(total.weighted) }))),
  );
  const parts = [
    rowChart({ title: `Weighted open pipeline by stage (${currency})`, rows: rows.map((r) => ({ label: r.name, value: r.weighted })) }),
    scroller("Pipeline table", table),
  ];
  if (summary.value.open_without_close_date && !revenue) {
    parts.push(h("p", { class: "muted", text: `${summary.value.open_without_close_date} open deals have no expected close date.` }));
  }
  if (revenue) {
    parts.push(
      h(
        "p",
        { class: "forecast-line" },
        `Revenue per ${revenue.period}: forecast with the pipeline `,
        h("strong", { class: "forecast-pipeline", text: number(revenue.forecast_pipeline) }),
        ` against a target of ${number(revenue.target)}; coverage `,
        h("strong", { class: "coverage", text: revenue.coverage === null || revenue.coverage === undefined ? "—" : `${number(revenue.coverage)}×` }),
        revenue.coverage !== null && revenue.coverage !== undefined && Number(revenue.coverage) < 3 ? h("span", { class: "state behind", text: " (below 3×)" }) : null,
        revenue.open_without_close_date ? `; ${revenue.open_without_close_date} open deals have no expected close date` : "",
        ".",
      ),
    );
  } else {
    parts.push(h("p", { class: "muted", text: "No revenue quota in force: no forecast or coverage to show." }));
  }
  return card(title, ...parts);
}

const KINDS = {
  behind_pace: "Behind pace",
  low_coverage: "Low coverage",
  deal_going_cold: "Deal going cold",
  few_new_opportunities: "Few new opportunities",
  activity_drop: "Activity drop",
  connection_broken: "Connection broken",
};

// result: a settled first page of GET /alerts
export function alertsPanel(result) {
  if (!result.ok) return card("Open alerts", unavailable("Alerts", result.error));
  const { items, next_cursor: more } = result.value;
  if (!items.length) return card("Open alerts", h("p", { class: "muted", text: "No open alert." }));
  return card(
    "Open alerts",
    more ? h("p", { class: "muted", text: `The first ${items.length} open alerts; there are more.` }) : null,
    h(
      "ul",
      { class: "alerts" },
      items.map((a) =>
        h("li", { "data-alert-id": a.id }, h("strong", { text: KINDS[a.kind] || a.kind }), " ", h("span", { text: a.message }), " ", h("span", { class: "muted", text: `since ${day(a.opened_at)}` })),
      ),
    ),
  );
}

const NEEDS = { needs_reconnect: "needs to be reconnected", error: "fails" };

export function connectionsPanel(result, names) {
  if (!result.ok) return card("Connections that need a person", unavailable("Connections", result.error));
  const broken = result.value.filter((c) => c.status in NEEDS);
  if (!broken.length) return card("Connections that need a person", h("p", { class: "muted", text: "Every connection syncs." }));
  return card(
    "Connections that need a person",
    h(
      "ul",
      { class: "connections" },
      broken.map((c) =>
        h("li", { "data-connection-id": c.id }, h("span", { class: "state behind", text: "⚠ " }), h("strong", { text: names.get(c.user_id) || `user ${c.user_id}` }), `: ${c.provider} ${NEEDS[c.status]}`, c.last_error ? h("span", { class: "muted", text: ` (${c.last_error})` }) : null),
      ),
    ),
  );
}

export function performersPanel(result, names) {
  const title = "What the top performers do differently";
  if (!result.ok) return card(title, unavailable("Top performers", result.error));
  const p = result.value;
  const top = (p.top_user_ids || []).map((id) => names.get(id) || `user ${id}`).join(", ") || "—";
  const drivers = (p.drivers || []).slice(0, 6);
  const table = h(
    "table",
    { class: "drivers" },
    h("caption", { text: `Top performers on ${metricName(p.outcome)}, ${day(p.period_start)} – ${day(p.period_end)}` }),
    h("thead", {}, h("tr", {}, ["Figure", "Top performers", "Others", "Ratio"].map((t) => h("th", { scope: "col", text: t })))),
    h("tbody", {}, drivers.map((d) => h("tr", {}, h("th", { scope: "row", text: metricName(d.metric) }), h("td", { text: number(d.top_mean) }), h("td", { text: number(d.others_mean) }), h("td", { text: d.ratio === null ? "—" : `${number(d.ratio)}×` })))),
  );
  return card(title, h("p", {}, "Top performers: ", h("strong", { text: top })), drivers.length ? scroller("Drivers table", table) : h("p", { class: "muted", text: "No figure sets them apart yet." }));
}

// Open deals idle for longer than their stage's rotten_days, or named by a deal_going_cold alert.
export function coldDeals(deals, stages, alerts, now = Date.now()) {
  const rotten = new Map(stages.map((s) => [s.name, s.rotten_days]));
  const alerted = new Set(alerts.filter((a) => a.kind === "deal_going_cold").map((a) => a.subject && a.subject.deal_id));
  return deals
    .map((deal) => {
      const since = Date.parse(deal.last_activity_at || deal.created_at);
      const idle = Math.floor((now - since) / 86400000);
      return { deal, idle, limit: rotten.get(deal.stage) ?? 14 };
    })
    .filter((d) => d.idle > d.limit || alerted.has(d.deal.id))
    .sort((a, b) => b.idle - a.idle);
}

export function coldPanel(deals, stages, alerts) {
  const title = "Your deals going cold";
  if (!deals.ok || !stages.ok) return card(title, unavailable("Deals", deals.ok ? stages.error : deals.error));
  const cold = coldDeals(deals.value, stages.value.stages, alerts.ok ? alerts.value.items : []);
  if (!cold.length) return card(title, h("p", { class: "muted", text: "No open deal has gone quiet." }));
  return card(
    title,
    h(
      "ul",
      { class: "cold" },
      cold.map((c) =>
        h("li", { "data-deal-id": c.deal.id }, h("span", { class: "state behind", text: "❄ " }), h("strong", { text: c.deal.name }), ` (${c.deal.stage}, ${number(c.deal.value)} ${c.deal.currency}): no activity for ${c.idle} days; its stage allows ${c.limit}.`),
      ),
    ),
  );
}
