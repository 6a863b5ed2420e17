// Hotspot table: one row per probed target, sortable by any column (buttons in the headers, so
// the keyboard sorts too), expandable per process, and a row opens the source at the definition.
import { formatBytes, formatDelta, formatDuration } from "../src/model/format";
import type { DeltaSource } from "../src/model/runModel";
import { compareCells, el, onActivate } from "./dom";
import { bytesTitle, deltaHeader, sourceName } from "./format";
import type { HotspotRow, PanelKey, PanelState, ProcessHotspotRow, SortColumn } from "./protocol";
import { s } from "./text";

type Sort = PanelState["sort"];

export interface HotspotTableEvents {
  onOpen(row: HotspotRow): void;
  onSort(sort: Sort): void;
  onExpand(target: string, expanded: boolean): void;
}

interface Column {
  id: SortColumn;
  title: PanelKey;
  /** Byte columns carry the reading they come from in the header. */
  bytes: boolean;
  value(row: HotspotRow | ProcessHotspotRow): number | string;
  text(row: HotspotRow | ProcessHotspotRow): string;
  exact?(row: HotspotRow | ProcessHotspotRow): number | undefined;
}

const dash = "—";

const COLUMNS: Column[] = [
  {
    id: "label",
    title: "hotspots.target",
    bytes: false,
    value: (r) => ("label" in r ? r.label.toLowerCase() : r.pid),
    text: (r) => ("label" in r ? r.label : ""),
  },
  {
    id: "calls",
    title: "hotspots.calls",
    bytes: false,
    value: (r) => r.calls,
    text: (r) =>
      "openCalls" in r && r.openCalls > 0
        ? s("hotspots.callsRunning", { calls: r.calls, running: r.openCalls })
        : String(r.calls),
  },
  {
    id: "retained",
    title: "hotspots.retained",
    bytes: true,
    value: (r) => r.retained,
    text: (r) => formatDelta(r.retained),
    exact: (r) => r.retained,
  },
  {
    id: "transient",
    title: "hotspots.transient",
    bytes: true,
    value: (r) => r.transientMax ?? -Infinity,
    text: (r) => (r.transientMax === undefined ? dash : formatBytes(r.transientMax)),
    exact: (r) => r.transientMax,
  },
  {
    id: "peak",
    title: "hotspots.peak",
    bytes: true,
    value: (r) => r.peakAboveBeforeMax ?? -Infinity,
    text: (r) => (r.peakAboveBeforeMax === undefined ? dash : formatDelta(r.peakAboveBeforeMax)),
    exact: (r) => r.peakAboveBeforeMax,
  },
  {
    id: "duration",
    title: "hotspots.duration",
    bytes: false,
    value: (r) => r.durationNs,
    text: (r) => formatDuration(r.durationNs),
  },
];

/** Tensor parallelism: each rank's retained, the worst in bold; sorts by the worst rank. Shown only
 * when some target ran on two or more ranks. */
const RANKS_COLUMN: Column = {
  id: "ranks",
  title: "hotspots.ranks",
  bytes: true,
  value: (r) => ("label" in r && r.perRank ? Math.max(...r.perRank.map((c) => c.retained)) : -Infinity),
  text: (r) =>
    "label" in r
      ? (r.perRank ?? [])
          .map((c) => s("hotspots.rankCell", { rank: c.rank, delta: formatDelta(c.retained) }))
          .join(" · ") || dash
      : r.rank === null
        ? dash
        : s("hotspots.processRankOnly", { rank: r.rank }),
};

/** The columns for these rows: the per-rank column after Retained when any row has ranks. */
function columnsFor(rows: readonly HotspotRow[]): Column[] {
  if (!rows.some((r) => r.perRank)) return COLUMNS;
  const at = COLUMNS.findIndex((c) => c.id === "retained") + 1;
  return [...COLUMNS.slice(0, at), RANKS_COLUMN, ...COLUMNS.slice(at)];
}

const DESCRIPTIONS: Partial<Record<SortColumn, PanelKey>> = {
  ranks: "hotspots.ranksHelp",
  retained: "hotspots.retainedHelp",
  transient: "hotspots.transientHelp",
  peak: "hotspots.peakHelp",
  duration: "hotspots.durationHelp",
};

export function sortRows(rows: HotspotRow[], sort: Sort): HotspotRow[] {
  const column = [...COLUMNS, RANKS_COLUMN].find((c) => c.id === sort.column) ?? COLUMNS[2]!;
  const sign = sort.descending ? -1 : 1;
  return [...rows].sort((a, b) => {
    return sign * compareCells(column.value(a), column.value(b)) || a.label.localeCompare(b.label);
  });
}

export class HotspotTable {
  private rows: HotspotRow[] = [];
  private sort: Sort = { column: "retained", descending: true };
  private expanded = new Set<string>();
  private columns: Column[] = COLUMNS;

  constructor(
    private readonly container: HTMLElement,
    private readonly events: HotspotTableEvents,
  ) {}

  render(rows: HotspotRow[], sort: Sort, expanded: Iterable<string>): void {
    this.rows = rows;
    this.sort = sort;
    this.expanded = new Set(expanded);
    // Keep keyboard focus on the same row or header across live re-renders.
    const focused =
      document.activeElement instanceof HTMLElement ? document.activeElement.dataset.focusKey : undefined;
    if (rows.length === 0) {
      this.container.replaceChildren(el("p", { class: "muted empty" }, s("hotspots.empty")));
      return;
    }
    this.columns = columnsFor(rows);
    const sources = [...new Set(rows.map((r) => r.source))];
    const mixed = sources.length > 1;
    const table = el("table", { class: "hotspots", "aria-label": s("hotspots.aria") });
    table.append(this.header(mixed ? undefined : sources[0]!), this.body(mixed));
    this.container.replaceChildren(table);
    if (focused) {
      const again = this.container.querySelector<HTMLElement>(`[data-focus-key="${CSS.escape(focused)}"]`);
      again?.focus();
    }
  }

  private header(source: DeltaSource | undefined): HTMLTableSectionElement {
    const row = el(
      "tr",
      {},
      el(
        "th",
        { scope: "col", class: "expander-col" },
        el("span", { class: "visually-hidden" }, s("hotspots.processes")),
      ),
    );
    for (const column of this.columns) {
      const active = this.sort.column === column.id;
      const unit = column.bytes ? (source ? deltaHeader(source) : s("delta.mixed")) : undefined;
      const help = DESCRIPTIONS[column.id];
      const button = el(
        "button",
        {
          class: "sort",
          type: "button",
          "data-column": column.id,
          "data-focus-key": `sort:${column.id}`,
          title: help ? s(help) : undefined,
        },
        s(column.title),
        el(
          "span",
          { class: "sort-mark", "aria-hidden": "true" },
          active ? (this.sort.descending ? " ▼" : " ▲") : "",
        ),
        unit ? el("span", { class: "unit" }, unit) : undefined,
      );
      button.addEventListener("click", () => {
        const descending = active ? !this.sort.descending : column.id !== "label";
        this.events.onSort({ column: column.id, descending });
      });
      row.append(
        el(
          "th",
          {
            scope: "col",
            class: column.id === "label" ? "" : "num",
            "aria-sort": active ? (this.sort.descending ? "descending" : "ascending") : "none",
          },
          button,
        ),
      );
    }
    return el("thead", {}, row);
  }

  private body(mixed: boolean): HTMLTableSectionElement {
    const body = el("tbody");
    for (const row of sortRows(this.rows, this.sort)) {
      const canOpen = row.file !== undefined && row.line !== undefined;
      const isExpanded = this.expanded.has(row.target);
      const tr = el("tr", {
        class: `hotspot${canOpen ? " clickable" : ""}`,
        "data-target": row.target,
        "data-focus-key": `row:${row.target}`,
        tabindex: 0,
        "aria-label": canOpen
          ? s("hotspots.open", { label: row.label, file: row.file!, line: row.line! })
          : row.label,
        title: canOpen ? `${row.spec ?? row.label}\n${row.file}:${row.line}` : (row.spec ?? row.label),
      });
      const expandCell = el("td", { class: "expander-col" });
      if (row.perProcess.length > 1) {
        const toggle = el(
          "button",
          {
            class: "expand",
            type: "button",
            "aria-expanded": isExpanded ? "true" : "false",
            "aria-label": s(isExpanded ? "hotspots.hide" : "hotspots.show", {
              n: row.perProcess.length,
              label: row.label,
            }),
            "data-focus-key": `expand:${row.target}`,
          },
          isExpanded ? "▾" : "▸",
        );
        toggle.addEventListener("click", (e) => {
          e.stopPropagation();
          this.events.onExpand(row.target, !isExpanded);
        });
        toggle.addEventListener("keydown", (e) => e.stopPropagation());
        expandCell.append(toggle);
      }
      tr.append(expandCell);
      for (const column of this.columns) tr.append(this.cell(column, row, mixed));
      if (canOpen) onActivate(tr, () => this.events.onOpen(row));
      body.append(tr);
      if (isExpanded) {
        for (const p of row.perProcess) {
          const sub = el(
            "tr",
            { class: "process-row", "data-parent": row.target, "data-pid": p.pid },
            el("td", {}),
          );
          for (const column of this.columns) {
            if (column.id === "label") {
              sub.append(
                el(
                  "td",
                  { class: "process-label" },
                  p.rank !== null
                    ? s("hotspots.processRank", { pid: p.pid, rank: p.rank })
                    : s("hotspots.process", { pid: p.pid }),
                ),
              );
            } else sub.append(this.cell(column, p, false));
          }
          body.append(sub);
        }
      }
    }
    return body;
  }

  private cell(column: Column, row: HotspotRow | ProcessHotspotRow, mixed: boolean): HTMLTableCellElement {
    const exact = column.exact?.(row);
    const td = el(
      "td",
      {
        class: column.id === "label" ? "label" : "num",
        "data-column": column.id,
        "data-bytes": exact,
        title: exact === undefined ? undefined : bytesTitle(exact),
      },
      column.text(row),
    );
    if (column.id === "ranks" && "label" in row && row.perRank) this.rankCells(td, row.perRank);
    if (column.id === "label" && "label" in row) {
      if (mixed) td.append(el("span", { class: "badge" }, sourceName(row.source)));
      if (row.kind === "line") td.append(el("span", { class: "badge" }, s("hotspots.line")));
    }
    return td;
  }

  /** One span per rank, the worst in bold, each with its exact bytes. */
  private rankCells(td: HTMLTableCellElement, cells: NonNullable<HotspotRow["perRank"]>): void {
    td.removeAttribute("data-bytes");
    td.removeAttribute("title");
    const parts: (HTMLElement | string)[] = [];
    for (const c of cells) {
      if (parts.length > 0) parts.push(" · ");
      const text = s("hotspots.rankCell", { rank: c.rank, delta: formatDelta(c.retained) });
      parts.push(
        c.worst
          ? el(
              "strong",
              {
                class: "rank worst",
                "data-rank": c.rank,
                "data-bytes": c.retained,
                title: `${s("hotspots.rankWorst", { rank: c.rank })}\n${bytesTitle(c.retained)}`,
              },
              text,
            )
          : el(
              "span",
              { class: "rank", "data-rank": c.rank, "data-bytes": c.retained, title: bytesTitle(c.retained) },
              text,
            ),
      );
    }
    td.replaceChildren(...parts);
  }
}
