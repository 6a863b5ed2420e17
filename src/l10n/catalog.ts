// The hotspot catalog in the user's language: each hotspot's question and each load phase's title
// (catalog.zh-CN.json beside this file; hotspots.json holds the English). A hotspot's notes stay in
// English: they quote vLLM's code and versions.
import type { Catalog, Hotspot, Phase } from "../catalog/types";
import type { Lang } from "./lang";
import zhCN from "./catalog.zh-CN.json";

export const CATALOG_ZH_CN: { phases: Record<string, string>; questions: Record<string, string> } = zhCN;

export function localizedPhase(phase: Phase, lang: Lang): Phase {
  if (lang === "en") return phase;
  return { ...phase, title: CATALOG_ZH_CN.phases[phase.id] ?? phase.title };
}

export function localizedHotspot(hotspot: Hotspot, lang: Lang): Hotspot {
  if (lang === "en") return hotspot;
  return { ...hotspot, question: CATALOG_ZH_CN.questions[hotspot.id] ?? hotspot.question };
}

/** The whole catalog with questions and phase titles in `lang` (the debug adapter's stop descriptions). */
export function localizedCatalog(catalog: Catalog, lang: Lang): Catalog {
  if (lang === "en") return catalog;
  return {
    ...catalog,
    phases: catalog.phases.map((p) => localizedPhase(p, lang)),
    hotspots: catalog.hotspots.map((h) => localizedHotspot(h, lang)),
  };
}
