// The checklist's items (items.json: the seed document's questions, in its own words, with their
// gloss and the probes that answer them) and what answering one gives.
import itemsData from "./items.json";
import type { RunModel } from "../model/runModel";
import type { Lang } from "../l10n/lang";
import type { ModelBudget } from "../budget/modelBudget";
import type { RunMeasurements } from "../budget/measured";
import type { MetaTargets, NeedName, ProbeNeed } from "../budget/targets";

export type NeedKey = NeedName;
export type ItemKind = "question" | "table_row" | "note";

export interface ChecklistSection {
  id: string;
  title: string;
  gloss: string;
}

export interface ChecklistItem {
  id: string;
  section: string;
  kind: ItemKind;
  /** The seed document's own text (Chinese), exactly as in the file, so export can find it. */
  seed: string;
  gloss: string;
  probes: NeedKey[];
}

export type ChecklistState = "answered" | "needs_probe" | "needs_run";

export interface Evidence {
  text: string;
  bytes?: number;
  target?: string;
  hotspot?: string;
  call?: number;
  pid?: number;
  fact?: string;
}

export interface ChecklistResult {
  item: ChecklistItem;
  state: ChecklistState;
  /** One sentence; for answered items it is what goes beside the tick in the log. */
  answer: string;
  /** The yes/no the question asks, where it asks one (for quantities: is there such memory at all). */
  verdict?: "yes" | "no";
  evidence: Evidence[];
  codeLink?: { file: string; line: number };
  /** What to probe so a run can answer (needs_probe), or that a run would measure (needs_run). */
  nextProbes: ProbeNeed[];
  /** Section 4 rows: the saving a run measured. */
  saving?: { bytes: number; text: string };
}

export interface ChecklistContext {
  run?: RunModel;
  meta?: MetaTargets;
  model?: ModelBudget;
  /** config.json when no checkpoint budget is at hand. */
  config?: Record<string, unknown>;
  lineText?: (file: string, line: number) => string | undefined;
  /** The language of answers, evidence and next probes (default English). */
  lang?: Lang;
  /** The run's measurements, when the caller has them already (the budget computed them). */
  measurements?: RunMeasurements;
}

const data = itemsData as { sections: ChecklistSection[]; items: ChecklistItem[] };
export const CHECKLIST_SECTIONS: readonly ChecklistSection[] = data.sections;
export const CHECKLIST_ITEMS: readonly ChecklistItem[] = data.items;
