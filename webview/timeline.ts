// The memory timeline: one line per process and reading, probed scopes as labelled bands,
// vLLM facts and OOMs as marks, zoom/pan (chartjs-plugin-zoom) and a crosshair that reads every
// series at one instant from the full data, not the decimated line.
import {
  Chart,
  LineController,
  LineElement,
  LinearScale,
  PointElement,
  type ChartDataset,
  type Plugin,
  type Scale,
} from "chart.js";
import zoomPlugin from "chartjs-plugin-zoom";
import { formatBytes } from "../src/model/format";
import { el } from "./dom";
import { binaryStep, binaryTicks, tickBytes } from "./format";
import { decimate, indexAtOrBefore, lowerBound, type XY } from "./lttb";
import {
  TIMELINE_READINGS,
  type ProcessSeries,
  type ProcessView,
  type RunIncrement,
  type RunSnapshot,
  type ScopeBand,
  type TimeMarker,
  type TimelineReading,
} from "./protocol";
import { withAlpha, type Palette } from "./theme";
import { s } from "./text";

Chart.register(LineController, LineElement, PointElement, LinearScale, zoomPlugin);

const LANE_HEIGHT = 15;
/** Scope lanes per process (deeper scopes share the last) and in all. */
const MAX_LANES_PER_PROCESS = 3;
const MAX_LANES = 8;
const DASHES: number[][] = [[], [6, 3], [2, 2], [8, 3, 2, 3]];

/** One process's samples in buffers that grow by doubling as a live run appends. */
class SeriesBuffer {
  t = new Float64Array(1024);
  readonly values = new Map<TimelineReading, Float64Array>();
  length = 0;

  append(series: ProcessSeries): void {
    const n = series.t.length;
    this.reserve(this.length + n);
    this.t.set(series.t, this.length);
    for (const key of TIMELINE_READINGS) {
      const incoming = series.readings[key];
      let column = this.values.get(key);
      if (!incoming && !column) continue;
      if (!column) {
        column = new Float64Array(this.t.length).fill(NaN);
        this.values.set(key, column);
      }
      if (incoming) column.set(incoming, this.length);
      else column.fill(NaN, this.length, this.length + n);
    }
    this.length += n;
  }

  private reserve(size: number): void {
    if (size <= this.t.length) return;
    let capacity = this.t.length;
    while (capacity < size) capacity *= 2;
    const grow = (old: Float64Array, fill: number) => {
      const next = new Float64Array(capacity).fill(fill, old.length);
      next.set(old);
      return next;
    };
    this.t = grow(this.t, 0);
    for (const [key, column] of this.values) this.values.set(key, grow(column, NaN));
  }
}

interface SeriesKey {
  pid: number;
  reading: TimelineReading;
}

type LineDataset = ChartDataset<"line", XY[]> & SeriesKey;

export interface ZoomRange {
  min: number;
  max: number;
}

export interface TimelineEvents {
  /** The visible range changed by zoom, pan or reset (undefined: the whole run). */
  onZoomChange(range: ZoomRange | undefined): void;
}

export interface CrosshairRow {
  pid: number;
  reading: TimelineReading;
  /** NaN where that process had no reading at or before the instant. */
  value: number;
  /** Time of the sample read, seconds. */
  atS: number;
}

export class Timeline {
  private chart: Chart<"line", XY[]> | undefined;
  private buffers = new Map<number, SeriesBuffer>();
  private processes: ProcessView[] = [];
  private bands = new Map<string, ScopeBand>();
  private bandPids = new Set<number>();
  private markers: TimeMarker[] = [];
  private durationS = 0;
  private hiddenPids = new Set<number>();
  private hiddenReadings = new Set<TimelineReading>();
  private crossS: number | undefined;
  /** Wall time of the last completed draw (benchmarks and tests wait on it). */
  lastDrawAt = 0;

  constructor(
    private readonly canvas: HTMLCanvasElement,
    private readonly readout: HTMLElement,
    private palette: Palette,
    private readonly events: TimelineEvents,
  ) {
    canvas.addEventListener("keydown", (e) => this.onKey(e));
    canvas.addEventListener("focus", () => readout.setAttribute("aria-live", "polite"));
    canvas.addEventListener("blur", () => readout.setAttribute("aria-live", "off"));
  }

  get chartInstance(): Chart<"line", XY[]> | undefined {
    return this.chart;
  }

  show(snapshot: RunSnapshot, zoom?: ZoomRange): void {
    this.chart?.destroy();
    this.chart = undefined;
    this.buffers = new Map();
    this.bands = new Map();
    this.bandPids = new Set();
    this.markers = [];
    this.crossS = undefined;
    this.absorb(snapshot);
    this.chart = this.create();
    if (zoom && zoom.max > zoom.min) this.chart.zoomScale("x", zoom, "none");
    this.renderReadout();
  }

  append(increment: RunIncrement): void {
    if (!this.chart) return;
    const before = this.datasetKeys().length;
    this.absorb(increment);
    if (this.datasetKeys().length !== before) this.chart.data.datasets = this.buildDatasets();
    this.updateBounds();
    this.chart.update("none");
  }

  setHidden(hiddenPids: Iterable<number>, hiddenReadings: Iterable<TimelineReading>): void {
    this.hiddenPids = new Set(hiddenPids);
    this.hiddenReadings = new Set(hiddenReadings);
    if (!this.chart) return;
    for (const dataset of this.chart.data.datasets as LineDataset[]) dataset.hidden = this.isHidden(dataset);
    this.chart.update("none");
    this.renderReadout();
  }

  /** Readings present in this run, in legend order. */
  readings(): TimelineReading[] {
    const present = new Set<TimelineReading>();
    for (const buffer of this.buffers.values()) for (const key of buffer.values.keys()) present.add(key);
    return TIMELINE_READINGS.filter((key) => present.has(key));
  }

  processList(): ProcessView[] {
    return this.processes.filter((p) => this.buffers.has(p.pid) || this.bandPids.has(p.pid));
  }

  /** Solid lines for the processes that used the GPU, dashes for the others. */
  dashFor(pid: number): number[] {
    const gpuFirst = [...this.processList()].sort(
      (a, b) => Number(this.usesGpu(b.pid)) - Number(this.usesGpu(a.pid)),
    );
    const index = gpuFirst.findIndex((p) => p.pid === pid);
    return DASHES[Math.max(0, index) % DASHES.length]!;
  }

  private usesGpu(pid: number): boolean {
    return this.buffers.get(pid)?.values.has("allocated") ?? false;
  }

  resetZoom(): void {
    this.chart?.resetZoom("none");
    this.events.onZoomChange(undefined);
  }

  zoomBy(factor: number): void {
    if (!this.chart) return;
    const area = this.chart.chartArea;
    const focusX =
      this.crossS !== undefined
        ? this.chart.scales.x!.getPixelForValue(this.crossS)
        : (area.left + area.right) / 2;
    this.chart.zoom({ x: factor, focalPoint: { x: focusX, y: (area.top + area.bottom) / 2 } }, "none");
    this.events.onZoomChange(this.visibleRange());
  }

  visibleRange(): ZoomRange | undefined {
    if (!this.chart?.isZoomedOrPanned()) return undefined;
    const x = this.chart.scales.x!;
    return { min: x.min, max: x.max };
  }

  applyTheme(palette: Palette): void {
    this.palette = palette;
    if (!this.chart) return;
    this.chart.data.datasets = this.buildDatasets();
    this.styleScales(this.chart);
    this.chart.update("none");
  }

  /** PNG of the chart as shown, without the crosshair, on the editor background. */
  toPng(): string {
    const cross = this.crossS;
    this.crossS = undefined;
    this.chart?.draw();
    const url = this.canvas.toDataURL("image/png");
    this.crossS = cross;
    this.chart?.draw();
    return url;
  }

  /** Every visible series read at time `atS` (the sample at or before it). */
  readAt(atS: number): CrosshairRow[] {
    const rows: CrosshairRow[] = [];
    for (const key of this.datasetKeys()) {
      if (this.hiddenPids.has(key.pid) || this.hiddenReadings.has(key.reading)) continue;
      const buffer = this.buffers.get(key.pid)!;
      const i = indexAtOrBefore(buffer.t, atS, buffer.length);
      const column = buffer.values.get(key.reading)!;
      rows.push({
        pid: key.pid,
        reading: key.reading,
        value: i >= 0 ? column[i]! : NaN,
        atS: i >= 0 ? buffer.t[i]! : NaN,
      });
    }
    return rows;
  }

  setCrosshair(atS: number | undefined): void {
    this.crossS = atS;
    this.chart?.render();
    this.renderReadout();
  }

  get crosshair(): number | undefined {
    return this.crossS;
  }

  /** The full data of one series, for tests. */
  seriesData(pid: number, reading: TimelineReading): { t: number[]; values: number[] } | undefined {
    const buffer = this.buffers.get(pid);
    const column = buffer?.values.get(reading);
    if (!buffer || !column) return undefined;
    return { t: [...buffer.t.subarray(0, buffer.length)], values: [...column.subarray(0, buffer.length)] };
  }

  bandList(): ScopeBand[] {
    return [...this.bands.values()];
  }

  destroy(): void {
    this.chart?.destroy();
    this.chart = undefined;
  }

  private absorb(update: RunSnapshot | RunIncrement): void {
    this.processes = update.processes;
    this.durationS = Math.max(this.durationS, update.durationS);
    for (const series of update.timeline) {
      let buffer = this.buffers.get(series.pid);
      if (!buffer) this.buffers.set(series.pid, (buffer = new SeriesBuffer()));
      buffer.append(series);
    }
    for (const band of update.bands) {
      this.bands.set(band.key, band);
      this.bandPids.add(band.pid);
    }
    this.markers.push(...update.markers);
  }

  private datasetKeys(): SeriesKey[] {
    const keys: SeriesKey[] = [];
    const order = this.processes.map((p) => p.pid);
    for (const pid of this.buffers.keys()) if (!order.includes(pid)) order.push(pid);
    for (const pid of order) {
      const buffer = this.buffers.get(pid);
      if (!buffer) continue;
      for (const reading of TIMELINE_READINGS) if (buffer.values.has(reading)) keys.push({ pid, reading });
    }
    return keys;
  }

  private isHidden(key: SeriesKey): boolean {
    return this.hiddenPids.has(key.pid) || this.hiddenReadings.has(key.reading);
  }

  private buildDatasets(): LineDataset[] {
    const multi = this.buffers.size > 1;
    return this.datasetKeys().map((key) => {
      const color = this.palette.readings[key.reading];
      const process = this.processes.find((p) => p.pid === key.pid);
      return {
        ...key,
        label: multi
          ? `${process?.label ?? `pid ${key.pid}`} ${s(`reading.${key.reading}`)}`
          : s(`reading.${key.reading}`),
        data: [],
        borderColor: color,
        backgroundColor: color,
        borderWidth: this.palette.highContrast ? 2.5 : 1.5,
        borderDash: this.dashFor(key.pid),
        pointRadius: 0,
        pointHitRadius: 0,
        tension: 0,
        spanGaps: false,
        hidden: this.isHidden(key),
        parsing: false,
        normalized: true,
      };
    });
  }

  private updateBounds(): void {
    const chart = this.chart;
    if (!chart) return;
    const x = chart.options.scales!.x!;
    x.suggestedMax = this.durationS;
    const limits = chart.options.plugins!.zoom!.limits!;
    limits.x = { min: 0, max: Math.max(this.durationS, 1e-6), minRange: 1e-4 };
  }

  private styleScales(chart: Chart<"line", XY[]>): void {
    const p = this.palette;
    for (const scale of [chart.options.scales!.x!, chart.options.scales!.y!]) {
      scale.ticks!.color = p.foreground;
      scale.grid!.color = p.grid;
      if (scale.border) scale.border.color = p.grid;
      if (scale.title) scale.title.color = p.foreground;
    }
  }

  private create(): Chart<"line", XY[]> {
    const chart = new Chart<"line", XY[]>(this.canvas, {
      type: "line",
      data: { datasets: this.buildDatasets() },
      plugins: [this.decimationPlugin(), this.backgroundPlugin(), this.bandsPlugin(), this.crosshairPlugin()],
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        parsing: false,
        normalized: true,
        events: ["mousemove", "mouseout", "click", "touchstart", "touchmove"],
        interaction: { mode: "nearest", intersect: true, axis: "x" },
        layout: { padding: { top: this.lanePadding(), right: 8 } },
        scales: {
          x: {
            type: "linear",
            min: undefined,
            max: undefined,
            suggestedMin: 0,
            suggestedMax: this.durationS,
            title: { display: true, text: s("timeline.axisTime") },
            ticks: {
              maxRotation: 0,
              callback: (v) => `${Number(v).toLocaleString("en-US", { maximumFractionDigits: 3 })}`,
            },
            grid: {},
            border: {},
          },
          y: {
            type: "linear",
            beginAtZero: true,
            title: { display: true, text: s("timeline.axisBytes") },
            ticks: { callback: (v) => tickBytes(Number(v)) },
            afterDataLimits: (scale: Scale) => {
              const step = binaryStep(scale.max - scale.min);
              scale.max = Math.ceil(scale.max / step) * step || step;
            },
            afterBuildTicks: (scale: Scale) => {
              scale.ticks = binaryTicks(scale.min, scale.max);
            },
            grid: {},
            border: {},
          },
        },
        plugins: {
          zoom: {
            limits: { x: { min: 0, max: Math.max(this.durationS, 1e-6), minRange: 1e-4 } },
            pan: {
              enabled: true,
              mode: "x",
              modifierKey: "shift",
              onPan: () => this.events.onZoomChange(this.visibleRange()),
            },
            zoom: {
              mode: "x",
              wheel: { enabled: true },
              pinch: { enabled: true },
              drag: { enabled: true, threshold: 4 },
              onZoom: () => this.events.onZoomChange(this.visibleRange()),
            },
          },
        },
      },
    });
    this.styleScales(chart);
    chart.update("none");
    return chart;
  }

  /** Each shown process gets its own lanes (one per nesting depth), in process order. */
  private laneLayout(): { total: number; laneOf(band: ScopeBand): number } {
    const depth = new Map<number, number>();
    for (const band of this.bands.values()) {
      if (this.hiddenPids.has(band.pid)) continue;
      depth.set(
        band.pid,
        Math.max(depth.get(band.pid) ?? 0, Math.min(band.depth, MAX_LANES_PER_PROCESS - 1)),
      );
    }
    const offsets = new Map<number, number>();
    let total = 0;
    for (const p of this.processes) {
      const deepest = depth.get(p.pid);
      if (deepest === undefined) continue;
      offsets.set(p.pid, total);
      total += deepest + 1;
    }
    total = Math.min(total, MAX_LANES);
    return {
      total,
      laneOf: (band) =>
        Math.min(total - 1, (offsets.get(band.pid) ?? 0) + Math.min(band.depth, MAX_LANES_PER_PROCESS - 1)),
    };
  }

  private lanePadding(): number {
    const lanes = this.laneLayout().total;
    return lanes === 0 ? 6 : lanes * LANE_HEIGHT + 6;
  }

  /** Replaces each dataset's points with an LTTB reduction of its visible range. */
  private decimationPlugin(): Plugin<"line"> {
    return {
      id: "memlensDecimation",
      beforeElementsUpdate: (chart) => {
        const x = chart.scales.x;
        const bounds = x?.getUserBounds();
        const min = bounds?.minDefined ? bounds.min : -Infinity;
        const max = bounds?.maxDefined ? bounds.max : Infinity;
        const width = chart.chartArea ? chart.chartArea.right - chart.chartArea.left : chart.width;
        const threshold = Math.max(200, Math.round(width * 2));
        for (const dataset of chart.data.datasets as LineDataset[]) {
          if (dataset.hidden) {
            dataset.data = [];
            continue;
          }
          const buffer = this.buffers.get(dataset.pid)!;
          const column = buffer.values.get(dataset.reading)!;
          // One point either side of the range, so lines run to the edges.
          const start = Math.max(0, lowerBound(buffer.t, min, buffer.length) - 1);
          const end = Math.min(buffer.length, indexAtOrBefore(buffer.t, max, buffer.length) + 2);
          dataset.data = decimate(buffer.t, column, start, end, threshold);
        }
        if (chart.options.layout?.padding && typeof chart.options.layout.padding === "object") {
          (chart.options.layout.padding as { top?: number }).top = this.lanePadding();
        }
      },
    };
  }

  private backgroundPlugin(): Plugin<"line"> {
    return {
      id: "memlensBackground",
      beforeDraw: (chart) => {
        const { ctx } = chart;
        ctx.save();
        ctx.fillStyle = this.palette.background;
        ctx.fillRect(0, 0, chart.width, chart.height);
        ctx.restore();
      },
      afterRender: () => {
        this.lastDrawAt = performance.now();
      },
    };
  }

  /** Scopes as boxes in lanes above the plot (one lane per nesting depth), shaded behind the lines. */
  private bandsPlugin(): Plugin<"line"> {
    return {
      id: "memlensBands",
      beforeDatasetsDraw: (chart) => {
        const { ctx, chartArea: area } = chart;
        const x = chart.scales.x!;
        ctx.save();
        ctx.beginPath();
        ctx.rect(area.left, area.top, area.right - area.left, area.bottom - area.top);
        ctx.clip();
        // The innermost scope under the crosshair is shaded down the plot, to show its span.
        const inner = this.crossS === undefined ? undefined : this.innermostAt(this.crossS);
        if (inner) {
          const [left, right] = this.bandPixels(x, inner);
          ctx.fillStyle = withAlpha(this.palette.band, this.palette.highContrast ? 0.2 : 0.12);
          ctx.fillRect(left, area.top, Math.max(1, right - left), area.bottom - area.top);
        }
        for (const marker of this.markers) {
          const px = x.getPixelForValue(marker.atS);
          if (px < area.left || px > area.right) continue;
          ctx.strokeStyle = marker.kind === "oom" ? this.palette.oom : this.palette.fact;
          ctx.lineWidth = marker.kind === "oom" ? 2 : 1;
          ctx.setLineDash(marker.kind === "oom" ? [] : [3, 3]);
          ctx.beginPath();
          ctx.moveTo(px, area.top);
          ctx.lineTo(px, area.bottom);
          ctx.stroke();
        }
        ctx.restore();
      },
      afterDatasetsDraw: (chart) => {
        const { ctx, chartArea: area } = chart;
        const x = chart.scales.x!;
        const layout = this.laneLayout();
        const lanes = layout.total;
        if (lanes <= 0) return;
        ctx.save();
        ctx.beginPath();
        ctx.rect(
          area.left,
          area.top - lanes * LANE_HEIGHT - 2,
          area.right - area.left,
          lanes * LANE_HEIGHT + 2,
        );
        ctx.clip();
        ctx.font = `11px ${getComputedStyle(document.body).fontFamily || "sans-serif"}`;
        ctx.textBaseline = "middle";
        const fill = withAlpha(this.palette.band, 0.35);
        for (const band of this.bands.values()) {
          if (this.hiddenPids.has(band.pid)) continue;
          const [left, right] = this.bandPixels(x, band);
          if (right < area.left || left > area.right) continue;
          const lane = layout.laneOf(band);
          const top = area.top - (lanes - lane) * LANE_HEIGHT - 1;
          const width = Math.max(1, right - left);
          ctx.fillStyle = band.raised ? withAlpha(this.palette.oom, 0.5) : fill;
          ctx.fillRect(left, top, width, LANE_HEIGHT - 2);
          ctx.strokeStyle = this.palette.band;
          ctx.lineWidth = 1;
          ctx.strokeRect(left + 0.5, top + 0.5, width - 1, LANE_HEIGHT - 3);
          const visibleLeft = Math.max(left, area.left) + 3;
          const room = Math.min(right, area.right) - visibleLeft - 3;
          if (room > 20) {
            ctx.fillStyle = this.palette.bandText;
            ctx.fillText(fitText(ctx, band.label, room), visibleLeft, top + (LANE_HEIGHT - 2) / 2);
          }
        }
        ctx.restore();
      },
    };
  }

  /** Visible scopes open at `atS`, outermost first. */
  private scopesAt(atS: number): ScopeBand[] {
    return [...this.bands.values()]
      .filter((b) => !this.hiddenPids.has(b.pid) && b.startS <= atS && (b.endS ?? this.durationS) >= atS)
      .sort((a, b) => a.depth - b.depth || a.startS - b.startS);
  }

  private innermostAt(atS: number): ScopeBand | undefined {
    const open = this.scopesAt(atS);
    return open[open.length - 1];
  }

  private bandPixels(x: Scale, band: ScopeBand): [number, number] {
    return [x.getPixelForValue(band.startS), x.getPixelForValue(band.endS ?? this.durationS)];
  }

  private crosshairPlugin(): Plugin<"line"> {
    return {
      id: "memlensCrosshair",
      afterEvent: (chart, args) => {
        const e = args.event;
        // Chart.js already delivers canvas events at most once per animation frame. The readout
        // is rebuilt here, with the crosshair, so its text never shows another instant than the
        // line and `crosshair` (a second frame of delay would leave it one position behind).
        if (e.type === "mousemove" && args.inChartArea && e.x !== null) {
          this.crossS = chart.scales.x!.getValueForPixel(e.x);
          args.changed = true;
          this.renderReadout();
        } else if (
          e.type === "mouseout" &&
          this.crossS !== undefined &&
          document.activeElement !== this.canvas
        ) {
          this.crossS = undefined;
          args.changed = true;
          this.renderReadout();
        }
      },
      afterDraw: (chart) => {
        if (this.crossS === undefined) return;
        const { ctx, chartArea: area } = chart;
        const px = chart.scales.x!.getPixelForValue(this.crossS);
        if (px < area.left || px > area.right) return;
        ctx.save();
        ctx.strokeStyle = this.palette.focus;
        ctx.lineWidth = 1;
        ctx.beginPath();
        ctx.moveTo(px + 0.5, area.top);
        ctx.lineTo(px + 0.5, area.bottom);
        ctx.stroke();
        ctx.fillStyle = this.palette.focus;
        for (const row of this.readAt(this.crossS)) {
          if (Number.isNaN(row.value)) continue;
          const py = chart.scales.y!.getPixelForValue(row.value);
          if (py < area.top || py > area.bottom) continue;
          ctx.beginPath();
          ctx.arc(px + 0.5, py, 3, 0, Math.PI * 2);
          ctx.fill();
        }
        ctx.restore();
      },
    };
  }

  private renderReadout(): void {
    const at = this.crossS;
    if (at === undefined) {
      this.readout.replaceChildren(el("span", { class: "muted" }, s("timeline.pointAt")));
      return;
    }
    const rows = this.readAt(at);
    const table = el("table", { class: "readout-table" });
    const multi = this.buffers.size > 1;
    for (const row of rows) {
      const process = this.processes.find((p) => p.pid === row.pid);
      const swatch = el("span", { class: "swatch", "aria-hidden": "true" });
      swatch.style.backgroundColor = this.palette.readings[row.reading];
      table.append(
        el(
          "tr",
          {},
          el("td", {}, swatch, multi ? `${process?.label ?? row.pid} ` : "", s(`reading.${row.reading}`)),
          el("td", { class: "num" }, Number.isNaN(row.value) ? "—" : formatBytes(row.value, 2)),
        ),
      );
    }
    const open = this.scopesAt(at).map((b) =>
      multi
        ? s("timeline.scopeCallPid", { label: b.label, call: b.call, pid: b.pid })
        : s("timeline.scopeCall", { label: b.label, call: b.call }),
    );
    const chart = this.chart;
    const near = chart
      ? this.markers.filter(
          (m) =>
            Math.abs(chart.scales.x!.getPixelForValue(m.atS) - chart.scales.x!.getPixelForValue(at)) <= 4,
        )
      : [];
    const parts: HTMLElement[] = [
      el("div", { class: "readout-time" }, s("timeline.at", { seconds: at.toFixed(3) })),
      table,
    ];
    if (open.length > 0)
      parts.push(el("div", { class: "readout-scopes" }, s("timeline.inside", { scopes: open.join(" › ") })));
    for (const m of near)
      parts.push(el("div", { class: `readout-marker ${m.kind}` }, `${m.label}: ${m.detail}`));
    this.readout.replaceChildren(...parts);
  }

  private onKey(e: KeyboardEvent): void {
    const chart = this.chart;
    if (!chart) return;
    const x = chart.scales.x!;
    const span = x.max - x.min;
    const step = span * (e.shiftKey ? 0.1 : 0.01);
    switch (e.key) {
      case "ArrowLeft":
      case "ArrowRight": {
        const from = this.crossS ?? (x.min + x.max) / 2;
        const next = Math.min(x.max, Math.max(x.min, from + (e.key === "ArrowLeft" ? -step : step)));
        this.setCrosshair(next);
        break;
      }
      case "+":
      case "=":
        this.zoomBy(1.5);
        break;
      case "-":
        this.zoomBy(1 / 1.5);
        break;
      case "0":
      case "Home":
        this.resetZoom();
        break;
      case "Escape":
        this.setCrosshair(undefined);
        break;
      default:
        return;
    }
    e.preventDefault();
  }
}

function fitText(ctx: CanvasRenderingContext2D, text: string, room: number): string {
  if (ctx.measureText(text).width <= room) return text;
  let lo = 0;
  let hi = text.length;
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1;
    if (ctx.measureText(`${text.slice(0, mid)}…`).width <= room) lo = mid;
    else hi = mid - 1;
  }
  return lo === 0 ? "" : `${text.slice(0, lo)}…`;
}
