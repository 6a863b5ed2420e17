// Everything a report or a log export says about one run, computed once: the budget view, the
// checklist answers and the measurement rows. Plain TypeScript, shared by the CLI and VS Code.
import type { RunModel } from "../model/runModel";
import { callsText, formatBytes, summaryLine } from "../model/format";
import { FINDINGS_TEXT } from "../l10n/findings";
import { CHECKLIST_TEXT } from "../l10n/checklist";
import { translator, type Lang } from "../l10n/lang";
import { escapeMarkdown, markdownCodeBlock } from "../model/markdown";
import { targetLabel } from "../model/targets";
import type { RunMeta } from "../runner/types";
import type { ModelBudget } from "../budget/modelBudget";
import { computeBudget, type BudgetComputation } from "../budget/view";
import type { ChecklistResult } from "../checklist/items";
import { evaluateChecklist } from "../checklist/rules";
import type { FindingsInput, MeasurementRow } from "./logExport";

export interface RunFindings {
  budget: BudgetComputation;
  results: ChecklistResult[];
  measurements: MeasurementRow[];
  runLabel: string;
  /** The language answers, labels and the verdict are in. */
  lang: Lang;
}

export interface FindingsOptions {
  meta?: RunMeta;
  model?: ModelBudget;
  config?: Record<string, unknown>;
  targetBytes: number;
  gpuMemoryUtilization: number;
  lineText?: (file: string, line: number) => string | undefined;
  /** Default English. For a log export: the log's language (see logLanguage). */
  lang?: Lang;
}

export function runLabelOf(run: RunModel, meta?: RunMeta, lang: Lang = "en"): string {
  const t = translator(FINDINGS_TEXT, lang);
  const id = meta?.id ?? run.start?.run_id ?? "run";
  const status = meta?.status ?? (run.finished ? "finished" : "running");
  const host = meta?.host ?? run.start?.hostname;
  const where = host ? t("run.where", { host }) : "";
  const label = meta?.label && meta.label !== id ? `${meta.label}, ` : "";
  return t("run.label", { label, id, where, status: t(`status.${status}`) });
}

export function computeFindings(run: RunModel, opts: FindingsOptions): RunFindings {
  const lang = opts.lang ?? "en";
  const t = translator(FINDINGS_TEXT, lang);
  const metaTargets = opts.meta?.targets;
  const budget = computeBudget(run, {
    checkpoint: opts.model,
    config: opts.config,
    targetBytes: opts.targetBytes,
    gpuMemoryUtilization: opts.gpuMemoryUtilization,
    meta: metaTargets,
    lang,
  });
  const results = evaluateChecklist({
    run,
    meta: metaTargets,
    model: opts.model,
    config: opts.config,
    lineText: opts.lineText,
    lang,
    measurements: budget.measurements,
  });
  const measurements: MeasurementRow[] = [];
  for (const row of budget.view.rows) {
    if (row.measuredBytes === undefined) continue;
    measurements.push({ label: row.label, value: formatBytes(row.measuredBytes, 2), source: row.source });
  }
  if (budget.measurements?.kvTokens) {
    measurements.push({
      label: t("m.kvTokens"),
      value: budget.measurements.kvTokens.tokens.toLocaleString("en-US"),
      source: budget.measurements.kvTokens.source,
    });
  }
  for (const s of run.summaries()) {
    const meta = metaTargets?.find((t) => t.id === s.target);
    measurements.push({
      label: targetLabel(run, s.target, s.spec ?? meta?.spec),
      value: summaryLine(s, lang),
      source: t("m.probe", {
        spec: s.spec ?? meta?.spec ?? s.target,
        hotspot: meta?.hotspot ? t("m.hotspot", { id: meta.hotspot }) : "",
      }),
    });
  }
  return { budget, results, measurements, runLabel: runLabelOf(run, opts.meta, lang), lang };
}

export function findingsInput(findings: RunFindings, date: string): FindingsInput {
  return {
    lang: findings.lang,
    date,
    runLabel: findings.runLabel,
    measurements: findings.measurements,
    results: findings.results,
    verdict: findings.budget.view.verdict,
  };
}

/** Markdown report of a run (`memlens report`). */
export function reportMarkdown(findings: RunFindings): string {
  const lang = findings.lang;
  const t = translator(FINDINGS_TEXT, lang);
  const states = translator(CHECKLIST_TEXT, lang);
  const lines = [
    `# ${findings.runLabel}`,
    "",
    `**${findings.budget.view.verdict}**`,
    "",
    // Tensor parallelism: each rank's own verdict under the deciding one.
    ...(findings.budget.view.rankVerdicts ?? []).flatMap((line, i, all) =>
      i === all.length - 1 ? [`- ${escapeMarkdown(line)}`, ""] : [`- ${escapeMarkdown(line)}`],
    ),
    t("report.measurements"),
    "",
  ];
  lines.push(t("report.columns"), "|---|---|---|");
  for (const m of findings.measurements) {
    lines.push(`| ${escapeMarkdown(m.label)} | ${escapeMarkdown(m.value)} | ${escapeMarkdown(m.source)} |`);
  }
  lines.push("", t("report.checklist"), "");
  for (const r of findings.results) {
    const box = r.state === "answered" ? "[x]" : "[ ]";
    const state = r.state === "answered" ? "" : t("report.state", { state: states(`state.${r.state}`) });
    // Chinese: the checklist's own wording; English: its meaning beside it.
    const item = lang === "zh-CN" ? r.item.seed : `${r.item.seed} — ${r.item.gloss}`;
    lines.push(`- ${box} ${item}${state}`, `  - ${escapeMarkdown(r.answer)}`);
    for (const e of r.evidence) {
      const bits = [
        e.bytes !== undefined
          ? `${formatBytes(e.bytes, 2)} (${e.bytes.toLocaleString("en-US")} B)`
          : undefined,
        e.target ? t("report.target", { target: escapeMarkdown(e.target) }) : undefined,
        e.call !== undefined ? callsText(e.call, lang) : undefined,
        e.pid !== undefined ? `pid ${e.pid}` : undefined,
      ].filter(Boolean);
      const evidence = t("report.evidence", {
        text: escapeMarkdown(e.text),
        bits: bits.length ? ` — ${bits.join(", ")}` : "",
      });
      lines.push(`  - ${evidence}`);
    }
    if (r.codeLink) lines.push(`  - ${t("report.code", { file: r.codeLink.file, line: r.codeLink.line })}`);
    for (const p of r.state === "answered" ? [] : r.nextProbes) {
      const where =
        p.function ?? (p.line ? t("report.lineOf", { file: p.line.file, contains: p.line.contains }) : "");
      lines.push(`  - ${t("report.probeNext", { where, what: p.what })}`);
    }
  }
  lines.push(
    "",
    t("report.arithmetic"),
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
