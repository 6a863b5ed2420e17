// Budget bars: the parts of memory stacked, theory beside measured, against a line at the target
// card size; a table with every number and where it comes from, and the verdict as plain text.
// The numbers are src/budget's; this only draws them.
import {
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  LinearScale,
  type Plugin,
  type Scale,
} from "chart.js";
import { formatBytes } from "../src/model/format";
import { el } from "./dom";
import { binaryTicks, bytesTitle, tickBytes } from "./format";
import type { BudgetRow, BudgetView, ShowBudgetParams } from "./protocol";
import { withAlpha, type Palette } from "./theme";
import { s } from "./text";

Chart.register(BarController, BarElement, CategoryScale, LinearScale);

const BARS = ["budget.theory", "budget.measured"] as const;

/** The rows that add up in the bars (all of them when the budget marks none). */
export function stackedRows(view: BudgetView): BudgetRow[] {
  const marked = view.rows.some((r) => r.stack !== undefined);
  return marked ? view.rows.filter((r) => r.stack === true) : view.rows;
}

export class BudgetChart {
  private chart: Chart<"bar", (number | null)[], string> | undefined;
  private view: BudgetView | null = null;

  constructor(
    private readonly dom: {
      section: HTMLElement;
      canvas: HTMLCanvasElement;
      table: HTMLElement;
      verdict: HTMLElement;
      arithmetic: HTMLElement;
      note: HTMLElement;
    },
    private palette: Palette,
  ) {}

  get chartInstance(): Chart<"bar", (number | null)[], string> | undefined {
    return this.chart;
  }

  show(params: ShowBudgetParams): void {
    this.view = params.budget;
    this.chart?.destroy();
    this.chart = undefined;
    const { section, note, table, verdict, arithmetic } = this.dom;
    if (!params.budget) {
      section.classList.add("unavailable");
      note.textContent = params.unavailable ?? s("budget.none");
      table.replaceChildren();
      verdict.textContent = "";
      arithmetic.textContent = "";
      return;
    }
    section.classList.remove("unavailable");
    note.textContent = "";
    this.chart = this.create(params.budget);
    this.renderTable(params.budget);
    // Tensor parallelism: the deciding line, then one line per rank (the verdict keeps line breaks).
    verdict.textContent = [params.budget.verdict, ...(params.budget.rankVerdicts ?? [])].join("\n");
    arithmetic.textContent = (params.budget.arithmetic ?? []).join("\n");
  }

  applyTheme(palette: Palette): void {
    this.palette = palette;
    if (this.view) this.show({ runId: null, budget: this.view });
  }

  toPng(): string | undefined {
    return this.chart ? this.dom.canvas.toDataURL("image/png") : undefined;
  }

  private create(view: BudgetView): Chart<"bar", (number | null)[], string> {
    const p = this.palette;
    const datasets = stackedRows(view).map((row, i) => {
      const color = p.series[i % p.series.length]!;
      const estimate = row.kind === "estimate";
      return {
        label: estimate ? s("budget.estimateLabel", { label: row.label }) : row.label,
        data: [row.theoryBytes ?? null, row.measuredBytes ?? null],
        backgroundColor: withAlpha(color, estimate ? 0.35 : 0.8),
        borderColor: color,
        borderWidth: estimate || p.highContrast ? 2 : 1,
        borderDash: estimate ? [4, 3] : [],
        stack: "parts",
        barPercentage: 0.7,
      };
    });
    const totals = BARS.map((_, bar) =>
      stackedRows(view).reduce((sum, r) => sum + ((bar === 0 ? r.theoryBytes : r.measuredBytes) ?? 0), 0),
    );
    const top = Math.max(view.targetBytes, ...totals) * 1.08;
    const chart = new Chart(this.dom.canvas, {
      type: "bar",
      data: { labels: BARS.map((bar) => s(bar)), datasets },
      plugins: [this.targetPlugin(view.targetBytes), this.backgroundPlugin()],
      options: {
        indexAxis: "y",
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        layout: { padding: { top: 18, right: 12 } },
        scales: {
          x: {
            stacked: true,
            min: 0,
            max: top,
            ticks: { color: p.foreground, callback: (v) => tickBytes(Number(v)) },
            afterBuildTicks: (scale: Scale) => {
              scale.ticks = binaryTicks(scale.min, scale.max, 6);
            },
            grid: { color: p.grid },
            border: { color: p.grid },
          },
          y: {
            stacked: true,
            ticks: { color: p.foreground },
            grid: { display: false },
            border: { color: p.grid },
          },
        },
      },
    });
    return chart;
  }

  private targetPlugin(targetBytes: number): Plugin<"bar"> {
    return {
      id: "memlensTarget",
      afterDatasetsDraw: (chart) => {
        const { ctx, chartArea: area } = chart;
        const px = chart.scales.x!.getPixelForValue(targetBytes);
        ctx.save();
        ctx.strokeStyle = this.palette.target;
        ctx.lineWidth = 2;
        ctx.setLineDash([6, 4]);
        ctx.beginPath();
        ctx.moveTo(px, area.top - 4);
        ctx.lineTo(px, area.bottom);
        ctx.stroke();
        ctx.fillStyle = this.palette.target;
        ctx.font = `11px ${getComputedStyle(document.body).fontFamily || "sans-serif"}`;
        ctx.textAlign = px > area.right - 120 ? "right" : "left";
        ctx.textBaseline = "bottom";
        ctx.fillText(
          s("budget.target", { bytes: formatBytes(targetBytes, 2) }),
          px + (ctx.textAlign === "right" ? -4 : 4),
          area.top - 4,
        );
        ctx.restore();
      },
    };
  }

  private backgroundPlugin(): Plugin<"bar"> {
    return {
      id: "memlensBudgetBackground",
      beforeDraw: (chart) => {
        chart.ctx.save();
        chart.ctx.fillStyle = this.palette.background;
        chart.ctx.fillRect(0, 0, chart.width, chart.height);
        chart.ctx.restore();
      },
    };
  }

  private renderTable(view: BudgetView): void {
    const bytesCell = (bytes: number | undefined) =>
      el(
        "td",
        { class: "num", "data-bytes": bytes, title: bytes === undefined ? undefined : bytesTitle(bytes) },
        bytes === undefined ? "—" : formatBytes(bytes, 2),
      );
    const body = el("tbody");
    const stacked = stackedRows(view);
    for (const row of view.rows) {
      const index = stacked.indexOf(row);
      const swatch = el("span", { class: index < 0 ? "swatch none" : "swatch", "aria-hidden": "true" });
      if (index >= 0) swatch.style.backgroundColor = this.palette.series[index % this.palette.series.length]!;
      body.append(
        el(
          "tr",
          { class: `budget-row kind-${row.kind}${index >= 0 ? " stacked" : ""}` },
          el("td", { class: "part" }, swatch, row.label),
          bytesCell(row.theoryBytes),
          bytesCell(row.measuredBytes),
          el("td", { class: "kind" }, s(`kind.${row.kind}`)),
          el("td", { class: "source" }, row.source),
        ),
      );
    }
    const theory = stacked.reduce((s, r) => s + (r.theoryBytes ?? 0), 0);
    const measured = stacked.reduce((s, r) => s + (r.measuredBytes ?? 0), 0);
    const foot = el(
      "tfoot",
      {},
      el(
        "tr",
        {},
        el("th", { scope: "row" }, s("budget.stacked")),
        bytesCell(theory),
        bytesCell(measured),
        el("td", {}),
        el("td", { class: "source" }, s("budget.stackedSource")),
      ),
      el(
        "tr",
        {},
        el("th", { scope: "row" }, s("budget.targetCard")),
        el(
          "td",
          { class: "num", colspan: 2, "data-bytes": view.targetBytes, title: bytesTitle(view.targetBytes) },
          formatBytes(view.targetBytes, 2),
        ),
        el("td", {}),
        el("td", { class: "source" }, s("budget.targetSource")),
      ),
    );
    const head = el(
      "thead",
      {},
      el(
        "tr",
        {},
        ...(["budget.part", "budget.theory", "budget.measured", "budget.kind", "budget.source"] as const).map(
          (h) =>
            el(
              "th",
              { scope: "col", class: h === "budget.theory" || h === "budget.measured" ? "num" : "" },
              s(h),
            ),
        ),
      ),
    );
    this.dom.table.replaceChildren(
      el("table", { class: "budget", "aria-label": s("budget.tableAria") }, head, body, foot),
    );
  }
}
