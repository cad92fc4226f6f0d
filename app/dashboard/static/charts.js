// Hand-made SVG charts. Each is an image with a label that says its numbers, and a table of
// the same numbers beside it, so that no one needs to see the bars.
import { h, number } from "./dom.js";

const SVG = "http://www.w3.org/2000/svg";

function s(tag, attributes, ...children) {
  const element = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes || {})) element.setAttribute(name, String(value));
  for (const child of children) element.append(child);
  return element;
}

// Bars per period, with the target as a dashed line: {title, points: [{label, value}], target}.
export function barChart({ title, points, target, format = number }) {
  const width = 320;
  const height = 150;
  const left = 8;
  const bottom = 22;
  const top = 14;
  const values = points.map((p) => (p.value === null ? 0 : Number(p.value)));
  const highest = Math.max(1e-9, ...values, target ? Number(target) : 0);
  const scale = (height - bottom - top) / highest;
  const slot = (width - left * 2) / Math.max(1, points.length);
  const said = points.map((p) => `${p.label}: ${format(p.value)}`).join("; ");
  const label = `${title}. ${said}${target ? `. Target ${format(target)}` : ""}.`;
  const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": label, class: "chart" });
  points.forEach((point, i) => {
    const value = values[i];
    const barHeight = Math.max(value > 0 ? 1 : 0, value * scale);
    const x = left + i * slot + slot * 0.15;
    const y = height - bottom - barHeight;
    const met = target ? value >= Number(target) : true;
    svg.append(
      s("rect", { x, y, width: slot * 0.7, height: barHeight, class: met ? "bar" : "bar under" }),
      s("text", { x: x + slot * 0.35, y: height - 8, "text-anchor": "middle", class: "axis" }, point.label),
      s("text", { x: x + slot * 0.35, y: Math.max(10, y - 3), "text-anchor": "middle", class: "value" }, format(point.value)),
    );
  });
  if (target) {
    const y = height - bottom - Number(target) * scale;
    svg.append(s("line", { x1: left, x2: width - left, y1: y, y2: y, class: "target" }));
  }
  const rows = points.map((p) => h("tr", {}, h("th", { scope: "row", text: p.period || p.label }), h("td", { text: format(p.value) })));
  const table = h(
    "table",
    { class: "numbers" },
    h("caption", { text: title }),
    h("thead", {}, h("tr", {}, h("th", { scope: "col", text: "Period from" }), h("th", { scope: "col", text: "Value" }))),
    h("tbody", {}, rows),
  );
  return h(
    "figure",
    { class: "figure" },
    svg,
    h("figcaption", { text: target ? `${title} (dashed line: target ${format(target)})` : title }),
    h("details", {}, h("summary", { text: "The numbers" }), table),
  );
}

// Horizontal bars, one per row: {title, rows: [{label, value, note}]}.
export function rowChart({ title, rows, format = number }) {
  const width = 420;
  const rowHeight = 20;
  const height = Math.max(1, rows.length) * rowHeight + 4;
  const highest = Math.max(1e-9, ...rows.map((r) => Number(r.value) || 0));
  const said = rows.map((r) => `${r.label}: ${format(r.value)}`).join("; ");
  const svg = s("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": `${title}. ${said}.`, class: "chart rows" });
  rows.forEach((row, i) => {
    const y = i * rowHeight + 2;
    const barWidth = ((Number(row.value) || 0) / highest) * (width - 150);
    svg.append(
      s("text", { x: 0, y: y + 14, class: "axis" }, row.label),
      s("rect", { x: 100, y: y + 4, width: Math.max(row.value > 0 ? 1 : 0, barWidth), height: rowHeight - 8, class: "bar" }),
      s("text", { x: 104 + barWidth, y: y + 14, class: "value" }, format(row.value)),
    );
  });
  return svg;
}
