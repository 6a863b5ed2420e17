// How the live memory reading is worded in the progress notification and the status bar: the
// device figure when the target has initialised CUDA, else host RSS, always with its source named.
import type { Readings } from "../protocol/events";
import type { RunModel } from "../model/runModel";
import { formatBytes } from "../model/format";
import { lastSamples, lastScopeReadings, latestReadings } from "../model/readings";

export interface MemoryText {
  /** "device 12.3 / 79.2 GiB" or "host RSS 512.0 MiB". */
  short: string;
  /** Which reading of which API, for a tooltip. */
  source: string;
}

export function memoryText(readings: Readings | undefined): MemoryText | undefined {
  if (!readings) return undefined;
  if (readings.device_used !== undefined) {
    const total = readings.device_total !== undefined ? ` / ${formatBytes(readings.device_total)}` : "";
    return {
      short: `device ${formatBytes(readings.device_used)}${total}`,
      source: "device_used: total − free from cudaMemGetInfo (every process on the device)",
    };
  }
  if (readings.host_rss !== undefined) {
    return {
      short: `host RSS ${formatBytes(readings.host_rss)}`,
      source: "host_rss: VmRSS of the target from /proc (no CUDA in use)",
    };
  }
  return undefined;
}

/**
 * The run's memory as the status bar and the progress notification word it. Device memory wins
 * when the target uses CUDA (device-wide, so the newest figure of any process): from the samples,
 * or, when they carry no device figure, from the last probed scope boundary (the source says
 * which). Otherwise host RSS, summed over the target's processes (vLLM runs several).
 */
export function latestMemory(model: RunModel): MemoryText | undefined {
  const samples = lastSamples(model).sort((a, b) => b.ts - a.ts);
  const device = samples.find((s) => s.readings.device_used !== undefined);
  if (device) return memoryText(device.readings);
  const scoped = lastScopeReadings(model, "device_used");
  if (scoped) {
    const text = memoryText(scoped)!;
    return { short: text.short, source: `${text.source}, at the last probed scope boundary` };
  }
  const rss = samples.filter((s) => s.readings.host_rss !== undefined);
  if (rss.length > 1) {
    const total = rss.reduce((sum, s) => sum + s.readings.host_rss!, 0);
    return {
      short: `host RSS ${formatBytes(total)} (${rss.length} processes)`,
      source: "host_rss: VmRSS from /proc, summed over the target's processes (no CUDA in use)",
    };
  }
  return memoryText(rss[0]?.readings ?? latestReadings(model));
}
