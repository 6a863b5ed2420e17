// How the live memory reading is worded in the progress notification and the status bar: the
// device figure when the target has initialised CUDA, else host RSS, always with its source named.
import type { Readings } from "../protocol/events";
import type { RunModel } from "../model/runModel";
import { formatBytes } from "../model/format";
import { lastSamples, lastScopeReadings, latestReadings } from "../model/readings";
import { FORMAT_TEXT } from "../l10n/format";
import { translator, type Lang } from "../l10n/lang";

export interface MemoryText {
  /** "device 12.3 / 79.2 GiB" or "host RSS 512.0 MiB". */
  short: string;
  /** Which reading of which API, for a tooltip. */
  source: string;
}

export function memoryText(readings: Readings | undefined, lang: Lang = "en"): MemoryText | undefined {
  if (!readings) return undefined;
  const t = translator(FORMAT_TEXT, lang);
  if (readings.device_used !== undefined) {
    const total =
      readings.device_total !== undefined
        ? t("memory.deviceTotal", { total: formatBytes(readings.device_total) })
        : "";
    return {
      short: t("memory.device", { used: formatBytes(readings.device_used), total }),
      source: t("memory.deviceSource"),
    };
  }
  if (readings.host_rss !== undefined) {
    return {
      short: t("memory.hostRss", { bytes: formatBytes(readings.host_rss) }),
      source: t("memory.hostRssSource"),
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
export function latestMemory(model: RunModel, lang: Lang = "en"): MemoryText | undefined {
  const t = translator(FORMAT_TEXT, lang);
  const samples = lastSamples(model).sort((a, b) => b.ts - a.ts);
  const device = samples.find((s) => s.readings.device_used !== undefined);
  if (device) return memoryText(device.readings, lang);
  const scoped = lastScopeReadings(model, "device_used");
  if (scoped) {
    const text = memoryText(scoped, lang)!;
    return { short: text.short, source: t("memory.atScope", { source: text.source }) };
  }
  const rss = samples.filter((s) => s.readings.host_rss !== undefined);
  if (rss.length > 1) {
    const total = rss.reduce((sum, s) => sum + s.readings.host_rss!, 0);
    return {
      short: t("memory.hostRssProcesses", { bytes: formatBytes(total), n: rss.length }),
      source: t("memory.hostRssSummedSource"),
    };
  }
  return memoryText(rss[0]?.readings ?? latestReadings(model), lang);
}
