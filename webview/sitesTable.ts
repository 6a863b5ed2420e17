// Sites table: the lines where one probed function's memory went (allocated, freed, live at exit,
// at the call's peak, count), sortable by any column (buttons in the headers, so the keyboard
// sorts too); a row opens its line. Also lists an allocator snapshot's sites.
import { formatBytes } from "../src/model/format";
import { compareCells, el, onActivate } from "./dom";
import { bytesTitle } from "./format";
import type { PanelKey, SiteRow, SiteSortColumn } from "./protocol";
import { s } from "./text";

export type SiteSort = { column: SiteSortColumn; descending: boolean };

export interface SitesTableEvents {
  onOpen(row: SiteRow): void;
  onSort(sort: SiteSort): void;
}

interface Column {
  id: SiteSortColumn;
  title: PanelKey;
  help?: PanelKey;
  value(row: SiteRow): number | string;
  text(row: SiteRow): string;
  bytes?(row: SiteRow): number;
}

/** The file's last part: the table is narrow, the row's title has the whole path. */
function shortFile(file: string): string {
  return file.slice(Math.max(file.lastIndexOf("/"), file.lastIndexOf("\\")) + 1);
}

const COLUMNS: Column[] = [
  {
    id: "place",
    title: "sites.place",
    value: (r) => `${shortFile(r.file).toLowerCase()}:${String(r.line).padStart(8, "0")}`,
    text: (r) => `${shortFile(r.file)}:${r.line}`,
  },
  {
    id: "function",
    title: "sites.function",
    value: (r) => r.function.toLowerCase(),
    text: (r) => r.function,
  },
  {
    id: "allocated",
    title: "sites.allocated",
    help: "sites.allocatedHelp",
    value: (r) => r.allocated,
    text: (r) => formatBytes(r.allocated),
    bytes: (r) => r.allocated,
  },
  {
    id: "freed",
    title: "sites.freed",
    value: (r) => r.freed,
    text: (r) => formatBytes(r.freed),
    bytes: (r) => r.freed,
  },
  {
    id: "live",
    title: "sites.live",
    help: "sites.liveHelp",
    value: (r) => r.liveAtExit,
    text: (r) => formatBytes(r.liveAtExit),
    bytes: (r) => r.liveAtExit,
  },
  {
    id: "peak",
    title: "sites.peak",
    help: "sites.peakHelp",
    value: (r) => r.atPeak,
    text: (r) => formatBytes(r.atPeak),
    bytes: (r) => r.atPeak,
  },
  { id: "count", title: "sites.count", value: (r) => r.count, text: (r) => r.count.toLocaleString("en-US") },
];

export function sortSites(rows: readonly SiteRow[], sort: SiteSort): SiteRow[] {
  const column = COLUMNS.find((c) => c.id === sort.column) ?? COLUMNS[2]!;
  const sign = sort.descending ? -1 : 1;
  return [...rows].sort((a, b) => {
    return (
      sign * compareCells(column.value(a), column.value(b)) || a.file.localeCompare(b.file) || a.line - b.line
    );
  });
}

export class SitesTable {
  constructor(
    private readonly container: HTMLElement,
    private readonly events: SitesTableEvents,
    /** A prefix for focus keys, so two tables on the page keep their own focus. */
    private readonly name = "sites",
  ) {}

  render(rows: readonly SiteRow[], sort: SiteSort): void {
    const focused =
      document.activeElement instanceof HTMLElement ? document.activeElement.dataset.focusKey : undefined;
    if (rows.length === 0) {
      this.container.replaceChildren(el("p", { class: "muted empty" }, s("sites.empty")));
      return;
    }
    const table = el("table", { class: "hotspots sites", "aria-label": s("sites.aria") });
    table.append(this.header(sort), this.body(rows, sort));
    this.container.replaceChildren(table);
    if (focused) {
      this.container.querySelector<HTMLElement>(`[data-focus-key="${CSS.escape(focused)}"]`)?.focus();
    }
  }

  private header(sort: SiteSort): HTMLTableSectionElement {
    const row = el("tr");
    for (const column of COLUMNS) {
      const active = sort.column === column.id;
      const button = el(
        "button",
        {
          class: "sort",
          type: "button",
          "data-column": column.id,
          "data-focus-key": `${this.name}-sort:${column.id}`,
          title: column.help ? s(column.help) : undefined,
        },
        s(column.title),
        el(
          "span",
          { class: "sort-mark", "aria-hidden": "true" },
          active ? (sort.descending ? " ▼" : " ▲") : "",
        ),
      );
      button.addEventListener("click", () => {
        const text = column.id === "place" || column.id === "function";
        this.events.onSort({ column: column.id, descending: active ? !sort.descending : !text });
      });
      row.append(
        el(
          "th",
          {
            scope: "col",
            class: column.bytes || column.id === "count" ? "num" : "",
            "aria-sort": active ? (sort.descending ? "descending" : "ascending") : "none",
          },
          button,
        ),
      );
    }
    return el("thead", {}, row);
  }

  private body(rows: readonly SiteRow[], sort: SiteSort): HTMLTableSectionElement {
    const body = el("tbody");
    for (const row of sortSites(rows, sort)) {
      const key = `${row.file}:${row.line}:${row.function}`;
      const tr = el("tr", {
        class: "site clickable",
        "data-file": row.file,
        "data-line": row.line,
        "data-focus-key": `${this.name}-row:${key}`,
        tabindex: 0,
        "aria-label": `${row.function} ${s("sites.open", { file: shortFile(row.file), line: row.line })}`,
        title: `${row.file}:${row.line}`,
      });
      for (const column of COLUMNS) {
        const bytes = column.bytes?.(row);
        tr.append(
          el(
            "td",
            {
              class: bytes !== undefined || column.id === "count" ? "num" : "label",
              "data-column": column.id,
              "data-bytes": bytes,
              title: bytes === undefined ? undefined : bytesTitle(bytes),
            },
            column.text(row),
          ),
        );
      }
      onActivate(tr, () => this.events.onOpen(row));
      body.append(tr);
    }
    return body;
  }
}
