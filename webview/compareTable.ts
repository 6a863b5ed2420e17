// Two runs side by side: per hotspot, what changed (b − a), the largest byte changes first.
import { formatDelta } from "../src/model/format";
import { el } from "./dom";
import { bytesTitle, compareSummary, deltaHeader, signedCount } from "./format";
import type { CompareRow, CompareView } from "./protocol";
import { s } from "./text";

export function renderCompare(container: HTMLElement, heading: HTMLElement, view: CompareView): void {
  heading.textContent = s("compare.vs", { a: view.a.label, b: view.b.label });
  if (view.rows.length === 0) {
    container.replaceChildren(el("p", { class: "muted" }, s("compare.none")));
    return;
  }
  const sources = [...new Set(view.rows.map((r) => r.source))];
  const unit = sources.length === 1 ? s("compare.unit", { header: deltaHeader(sources[0]!) }) : "";
  const head = el(
    "thead",
    {},
    el(
      "tr",
      {},
      el("th", { scope: "col" }, s("compare.target")),
      el("th", { scope: "col", class: "num" }, s("compare.aRetained", { unit })),
      el("th", { scope: "col", class: "num" }, s("compare.bRetained", { unit })),
      el("th", { scope: "col", class: "num" }, s("compare.deltaRetained")),
      el("th", { scope: "col", class: "num" }, s("compare.deltaPeak")),
      el("th", { scope: "col", class: "num" }, s("compare.deltaCalls")),
      el("th", { scope: "col" }, s("compare.change")),
    ),
  );
  const body = el("tbody");
  for (const row of view.rows) body.append(compareRow(row));
  container.replaceChildren(el("table", { class: "compare", "aria-label": s("compare.aria") }, head, body));
}

/** Retained bytes and their differences are all deltas, so they carry a sign. */
function bytes(value: number | undefined, column: string): HTMLTableCellElement {
  return el(
    "td",
    {
      class: "num",
      "data-column": column,
      "data-bytes": value,
      title: value === undefined ? undefined : bytesTitle(value),
    },
    value === undefined ? "—" : formatDelta(value),
  );
}

function compareRow(row: CompareRow): HTMLTableRowElement {
  const change = compareSummary(row);
  const direction = row.retainedDelta < 0 ? "better" : row.retainedDelta > 0 ? "worse" : "same";
  return el(
    "tr",
    { class: `compare-row ${direction}`, "data-key": row.key, title: row.key },
    el("td", { class: "label" }, row.label),
    bytes(row.a?.retained, "a"),
    bytes(row.b?.retained, "b"),
    bytes(row.retainedDelta, "retainedDelta"),
    bytes(row.peakDelta, "peakDelta"),
    el(
      "td",
      { class: "num", "data-column": "callsDelta", "data-value": row.callsDelta },
      signedCount(row.callsDelta),
    ),
    el("td", { class: "change", "data-column": "change" }, change),
  );
}
