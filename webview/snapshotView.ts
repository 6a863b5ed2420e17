// An allocator snapshot the user opened (MemLens: Open Allocator Snapshot): its requested bytes
// over the recorded history as a line, and its allocation sites in a Sites table. The host read
// the pickle with the probe's restricted unpickler; this only draws numbers.
import { Chart, LinearScale, LineController, LineElement, PointElement, type Scale } from "chart.js";
import { formatBytes, formatDuration } from "../src/model/format";
import { byId } from "./dom";
import { binaryTicks, tickBytes } from "./format";
import type { AllocatorSnapshotView, SiteRow } from "./protocol";
import { SitesTable, type SiteSort } from "./sitesTable";
import type { Palette } from "./theme";
import { s } from "./text";

Chart.register(LineController, LineElement, PointElement, LinearScale);

export class SnapshotView {
  private chart: Chart<"line"> | undefined;
  private view: AllocatorSnapshotView | undefined;
  private sort: SiteSort = { column: "allocated", descending: true };
  private readonly table: SitesTable;

  constructor(
    private palette: Palette,
    onOpen: (row: SiteRow) => void,
  ) {
    this.table = new SitesTable(
      byId("snapshot-sites"),
      {
        onOpen,
        onSort: (sort) => {
          this.sort = sort;
          if (this.view) this.table.render(this.view.sites, this.sort);
        },
      },
      "snapshot",
    );
    byId("close-snapshot").addEventListener("click", () => this.show(null));
  }

  get chartInstance(): Chart<"line"> | undefined {
    return this.chart;
  }

  show(view: AllocatorSnapshotView | null): void {
    this.view = view ?? undefined;
    const section = byId("snapshot-section");
    section.hidden = view === null;
    this.chart?.destroy();
    this.chart = undefined;
    if (!view) return;
    const name = view.file.slice(Math.max(view.file.lastIndexOf("/"), view.file.lastIndexOf("\\")) + 1);
    const summary = byId("snapshot-summary");
    summary.textContent = s("snapshot.summary", {
      file: name,
      peak: formatBytes(view.peakBytes),
      n: view.sites.length,
    });
    summary.title = view.file;
    this.table.render(view.sites, this.sort);
    this.draw(view);
    section.scrollIntoView({ block: "start" });
  }

  applyTheme(palette: Palette): void {
    this.palette = palette;
    if (this.view) this.draw(this.view);
  }

  private draw(view: AllocatorSnapshotView): void {
    this.chart?.destroy();
    const p = this.palette;
    const t0 = view.timeline[0]?.[0] ?? 0;
    this.chart = new Chart(byId<HTMLCanvasElement>("snapshot-chart"), {
      type: "line",
      data: {
        datasets: [
          {
            label: s("snapshot.heading"),
            data: view.timeline.map(([us, bytes]) => ({ x: (us - t0) / 1e6, y: bytes })),
            borderColor: p.readings.allocated,
            backgroundColor: p.readings.allocated,
            borderWidth: 1.5,
            pointRadius: 0,
            stepped: "before",
          },
        ],
      },
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        parsing: false,
        normalized: true,
        plugins: { legend: { display: false } },
        scales: {
          x: {
            type: "linear",
            ticks: { color: p.foreground, callback: (v) => formatDuration(Number(v) * 1e9) },
            grid: { color: p.grid },
          },
          y: {
            type: "linear",
            min: 0,
            ticks: { color: p.foreground, callback: (v) => tickBytes(Number(v)) },
            afterBuildTicks: (scale: Scale) => {
              scale.ticks = binaryTicks(scale.min, scale.max, 5);
            },
            grid: { color: p.grid },
          },
        },
      },
    });
  }
}
