// Everything a report or a log export says about one run, computed once: the budget view, the
// checklist answers and the measurement rows. Plain TypeScript, shared by the CLI and VS Code.
import type { RunModel } from "../model/runModel";
import { formatBytes, summaryLine } from "../model/format";
import { escapeMarkdown, markdownCodeBlock } from "../model/markdown";
import type { RunMeta } from "../runner/types";
import type { ModelBudget } from "../budget/modelBudget";
import { computeBudget, type BudgetComputation } from "../budget/view";
import { evaluateChecklist, type ChecklistResult } from "../checklist/rules";
import type { FindingsInput, MeasurementRow } from "./logExport";

export interface RunFindings {
  budget: BudgetComputation;
  results: ChecklistResult[];
  measurements: MeasurementRow[];
  runLabel: string;
}

export interface FindingsOptions {
  meta?: RunMeta;
  model?: ModelBudget;
  config?: Record<string, unknown>;
  targetBytes: number;
  gpuMemoryUtilization: number;
  lineText?: (file: string, line: number) => string | undefined;
}

function shortSpec(spec: string | undefined, target: string): string {
  if (!spec) return target;
  const colon = spec.lastIndexOf(":");
  const tail = spec.slice(colon + 1);
  // Line specs are /path/file.py:123 → file.py:123.
  if (/^\d+$/.test(tail)) return `${spec.slice(0, colon).split(/[\\/]/).pop()}:${tail}`;
  return tail;
}

export function runLabelOf(run: RunModel, meta?: RunMeta): string {
  const id = meta?.id ?? run.start?.run_id ?? "run";
  const status = meta?.status ?? (run.finished ? "finished" : "running");
  const where = meta?.host ? ` on ${meta.host}` : run.start?.hostname ? ` on ${run.start.hostname}` : "";
  const label = meta?.label && meta.label !== id ? `${meta.label}, ` : "";
  return `MemLens run ${label}${id}${where} (${status})`;
}

export function computeFindings(run: RunModel, opts: FindingsOptions): RunFindings {
  const metaTargets = opts.meta?.targets;
  const budget = computeBudget(run, {
    checkpoint: opts.model,
    config: opts.config,
    targetBytes: opts.targetBytes,
    gpuMemoryUtilization: opts.gpuMemoryUtilization,
    meta: metaTargets,
  });
  const results = evaluateChecklist({
    run,
    meta: metaTargets,
    model: opts.model,
    config: opts.config,
    lineText: opts.lineText,
  });
  const measurements: MeasurementRow[] = [];
  for (const row of budget.view.rows) {
    if (row.measuredBytes === undefined) continue;
    measurements.push({ label: row.label, value: formatBytes(row.measuredBytes, 2), source: row.source });
  }
  if (budget.measurements?.kvTokens) {
    measurements.push({
      label: "KV cache tokens",
      value: budget.measurements.kvTokens.tokens.toLocaleString("en-US"),
      source: budget.measurements.kvTokens.source,
    });
  }
  for (const s of run.summaries()) {
    const meta = metaTargets?.find((t) => t.id === s.target);
    measurements.push({
      label: shortSpec(s.spec ?? meta?.spec, s.target),
      value: summaryLine(s),
      source: `probe ${s.spec ?? meta?.spec ?? s.target}${meta?.hotspot ? ` (hotspot ${meta.hotspot})` : ""}`,
    });
  }
  return { budget, results, measurements, runLabel: runLabelOf(run, opts.meta) };
}

export function findingsInput(findings: RunFindings, date: string): FindingsInput {
  return {
    date,
    runLabel: findings.runLabel,
    measurements: findings.measurements,
    results: findings.results,
    verdict: findings.budget.view.verdict,
  };
}

/** Markdown report of a run (`memlens report`). */
export function reportMarkdown(findings: RunFindings): string {
  const lines = [
    `# ${findings.runLabel}`,
    "",
    `**${findings.budget.view.verdict}**`,
    "",
    "## Measurements",
    "",
  ];
  lines.push("| what | value | source |", "|---|---|---|");
  for (const m of findings.measurements) {
    lines.push(`| ${escapeMarkdown(m.label)} | ${escapeMarkdown(m.value)} | ${escapeMarkdown(m.source)} |`);
  }
  lines.push("", "## Checklist", "");
  for (const r of findings.results) {
    const box = r.state === "answered" ? "[x]" : "[ ]";
    const state = r.state === "answered" ? "" : ` _(${r.state.replace("_", " ")})_`;
    lines.push(`- ${box} ${r.item.seed} — ${r.item.gloss}${state}`, `  - ${escapeMarkdown(r.answer)}`);
    for (const e of r.evidence) {
      const bits = [
        e.bytes !== undefined
          ? `${formatBytes(e.bytes, 2)} (${e.bytes.toLocaleString("en-US")} B)`
          : undefined,
        e.target ? `target ${escapeMarkdown(e.target)}` : undefined,
        e.call !== undefined ? `${e.call} call${e.call === 1 ? "" : "s"}` : undefined,
        e.pid !== undefined ? `pid ${e.pid}` : undefined,
      ].filter(Boolean);
      lines.push(`  - evidence: ${escapeMarkdown(e.text)}${bits.length ? ` — ${bits.join(", ")}` : ""}`);
    }
    if (r.codeLink) lines.push(`  - code: ${r.codeLink.file}:${r.codeLink.line}`);
    for (const p of r.state === "answered" ? [] : r.nextProbes) {
      const where = p.function ?? (p.line ? `line of ${p.line.file} containing \`${p.line.contains}\`` : "");
      lines.push(`  - probe next: ${where} — ${p.what}`);
    }
  }
  lines.push(
    "",
    "## Budget arithmetic",
    "",
    ...markdownCodeBlock(findings.budget.view.arithmetic, "text"),
    "",
  );
  return lines.join("\n");
}

/** JSON report (`memlens report --json`): plain data, no class instances. */
export function reportJson(findings: RunFindings): unknown {
  return {
    run: findings.runLabel,
    verdict: findings.budget.view.verdict,
    fits: findings.budget.fit.fits,
    budget: findings.budget.view,
    measurements: findings.measurements,
    checklist: findings.results.map((r) => ({
      id: r.item.id,
      section: r.item.section,
      seed: r.item.seed,
      gloss: r.item.gloss,
      state: r.state,
      verdict: r.verdict,
      answer: r.answer,
      evidence: r.evidence,
      codeLink: r.codeLink,
      nextProbes: r.state === "answered" ? [] : r.nextProbes,
      saving: r.saving,
    })),
  };
}
