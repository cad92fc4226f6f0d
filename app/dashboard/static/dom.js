// Elements built with the DOM (text always through textContent: no markup from the API), and
// the number formats every panel shares.

export function h(tag, attributes, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "class") element.className = value;
    else if (name === "text") element.textContent = value;
    else if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

const NUMBER = new Intl.NumberFormat("en-US", { maximumFractionDigits: 2 });

export function number(value) {
  if (value === null || value === undefined) return "—";
  return NUMBER.format(Number(value));
}

export function percent(value) {
  if (value === null || value === undefined) return "—";
  return Math.round(Number(value) * 100) + "%";
}

export function pace(value) {
  if (value === null || value === undefined) return "—";
  return Number(value).toFixed(2);
}

export function day(text) {
  return text ? String(text).slice(0, 10) : "—";
}

const WORDS = {
  emails_sent: "Emails sent",
  meetings_scheduled: "Meetings scheduled",
  meetings_held: "Meetings held",
  calls: "Calls",
  chat_conversations: "Chat conversations",
  contacts_engaged: "Contacts engaged",
  opportunities_created: "Opportunities created",
  win_rate: "Win rate",
  avg_deal_value: "Average deal value",
  sales_cycle_days: "Sales cycle (days)",
  deals_won: "Deals won",
  revenue: "Revenue",
  gross_margin: "Gross margin",
};

export function metricName(metric) {
  const words = String(metric).replaceAll("_", " ");
  return WORDS[metric] || words.charAt(0).toUpperCase() + words.slice(1);
}

export function quotaName(metric, period) {
  return `${metricName(metric)} per ${period}`;
}

// A card: a section with its heading, labelled by it (a landmark a screen reader lists).
let sections = 0;
export function card(title, ...children) {
  const id = `panel-${++sections}`;
  return h(
    "section",
    { class: "card", "aria-labelledby": id },
    h("h2", { id, text: title }),
    ...children,
  );
}

export function unavailable(what, error) {
  const reason = error && error.status === 404 ? "" : error && error.message ? ` (${error.message})` : "";
  return h("p", { class: "muted unavailable", text: `${what}: not available${reason}.` });
}

// A wide table scrolls sideways on a phone inside a focusable, labelled region.
export function scroller(label, table) {
  return h("div", { class: "scroll", role: "region", "aria-label": label, tabindex: "0" }, table);
}
