#!/usr/bin/env node
// `memlens` on the command line: report a run, budget a model, export findings to a log file.
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { parseArgs } from "node:util";
import { RunModel } from "../model/runModel";
import { loadRun, eventsFileOf, EVENTS_FILE } from "../runner/store";
import { FileReadError, sourceLineReader } from "../files/read";
import type { RunMeta } from "../runner/types";
import { CheckpointError } from "../budget/safetensors";
import { ConfigError } from "../budget/kvcache";
import { knownModelNames, type ModelBudget } from "../budget/modelBudget";
import { resolveModelBudget } from "../budget/resolve";
import { computeBudget } from "../budget/view";
import { budgetMarkdown } from "../budget/markdown";
import { computeFindings, findingsInput, reportJson, reportMarkdown } from "../export/findings";
import { exportFindings, logLanguage, LogFormatError } from "../export/logExport";
import { BUDGET_TEXT } from "../l10n/budget";
import { parseLang, translator, type Lang } from "../l10n/lang";
import { SETTING_DEFAULTS } from "../settings/settings";
import { runMain } from "./run";
import { isPartialCoverage, siteCoverage, siteTotals } from "../model/sites";
import { formatBytes } from "../model/format";

const GIB = 1024 ** 3;

const USAGE = `memlens — GPU memory of model loading, from MemLens runs and checkpoints

Usage:
  memlens run [options] -- COMMAND [ARG...]   (memlens run --help for its options)
  memlens report RUN_DIR [--json] [--model DIR|NAME] [--target-gib N] [--gpu-memory-utilization U] [--lang L]
  memlens budget MODEL [--target-gib N] [--gpu-memory-utilization U] [--run RUN_DIR] [--json] [--lang L]
  memlens export RUN_DIR --log FILE [--date YYYY-MM-DD] [--model DIR|NAME] [--target-gib N] [--lang L]
  memlens sites RUN_DIR [--target ID] [--json]   allocation sites (the lines where probed functions allocated)

  RUN_DIR   a run folder (events.jsonl, meta.json, plan.json), e.g. .memlens/runs/20251126-…
  MODEL     a model folder with config.json and *.safetensors (only the headers are read), or a
            model MemLens knows by name (${knownModelNames().join(", ")})

Options:
  --target-gib N                 usable size of the card to fit, GiB (default ${SETTING_DEFAULTS.targetGpuGiB}; 16 GB cards give 15.5–15.9)
  --gpu-memory-utilization U     vLLM's gpu_memory_utilization for the verdict (default ${SETTING_DEFAULTS.gpuMemoryUtilization}, as memlens.gpuMemoryUtilization)
  --model DIR|NAME               model for report/export: exact checkpoint sizes beside the measurements
  --run RUN_DIR                  budget: put a run's measurements beside the theory
  --log FILE                     export: the investigation log to write the Day entry into
  --date YYYY-MM-DD              export: the Day's date (default today)
  --lang zh-CN|en|auto           language of answers, labels and the verdict. export: default auto,
                                 the log's own language (its "- 测量结果:" or "- Measurements:"
                                 labels, else its prose), English when it cannot tell; report and
                                 budget: default en
  --json                         machine-readable output
  -h, --help                     this text
`;

class UsageError extends Error {
  override name = "UsageError";
}

function numberOption(
  value: string | undefined,
  name: string,
  fallback: number,
  check: (n: number) => boolean,
  range: string,
): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || !check(n)) throw new UsageError(`--${name} ${value}: expected ${range}.`);
  return n;
}

async function resolveModel(spec: string): Promise<ModelBudget> {
  const found = await resolveModelBudget(spec, { name: "model", workspaceFolder: process.cwd(), python: "" });
  if (!found.budget) throw new UsageError(found.why ?? `model "${spec}" was not found.`);
  return found.budget;
}

async function readRun(dir: string): Promise<{ run: RunModel; meta?: RunMeta; warnings: string[] }> {
  if (!existsSync(dir) || !statSync(dir).isDirectory())
    throw new UsageError(`run folder ${dir} does not exist.`);
  if (!existsSync(eventsFileOf(dir))) {
    throw new UsageError(
      `${dir} has no ${EVENTS_FILE}: not a MemLens run folder (look under .memlens/runs/).`,
    );
  }
  // Events go straight into the model: a vLLM load's events.jsonl is hundreds of MB.
  const run = new RunModel();
  const stored = await loadRun(path.resolve(dir), { onEvent: (event) => run.add(event) });
  if (stored.versionError)
    throw new UsageError(`${path.join(dir, EVENTS_FILE)}: ${stored.versionError.message}`);
  const warnings = stored.malformed.map((m) => `${EVENTS_FILE} line ${m.lineNumber}: ${m.reason} (skipped)`);
  const unlisted = stored.malformedCount - stored.malformed.length;
  if (unlisted > 0) warnings.push(`${EVENTS_FILE}: ${unlisted} more malformed line(s) (skipped)`);
  if (stored.duplicates > 0) warnings.push(`${EVENTS_FILE}: ${stored.duplicates} repeated line(s) read once`);
  const meta = existsSync(path.join(dir, "meta.json")) ? stored.meta : undefined;
  return { run, meta, warnings };
}

/** --lang: zh-CN, en (any case, "zh" too) or auto. */
function langArgument(value: string | undefined): Lang | "auto" {
  if (value === undefined || value.trim().toLowerCase() === "auto") return "auto";
  const lang = parseLang(value);
  if (!lang) throw new UsageError(`--lang ${value}: expected zh-CN, en or auto.`);
  return lang;
}

function budgetTitle(model: string, gib: number, lang: Lang): string {
  return translator(BUDGET_TEXT, lang)("md.title", { model, gib, run: "" });
}

/** The probe zipapp built next to this bundle (dist/memlens_probe.pyz). */
function bundledProbePath(): string {
  return path.join(__dirname, "memlens_probe.pyz");
}

/** `memlens sites`: one row per line that allocated inside a probed function, largest first; then
 * the targets whose sites cover only some of their calls (the probe's sites_calls limit). */
async function sitesReport(dir: string, target: string | undefined, json: boolean): Promise<string> {
  if (!existsSync(eventsFileOf(dir)))
    throw new UsageError(`${dir} has no ${EVENTS_FILE}: not a MemLens run folder.`);
  // Straight into the model, samples not kept: the sites and calls are all this needs.
  const run = new RunModel({ keepSamples: false });
  await loadRun(path.resolve(dir), { onEvent: (event) => run.add(event) });
  const totals = siteTotals(run.sites, target);
  const coverage = new Map(siteCoverage(run).map((c) => [c.target, c]));
  if (json) {
    return `${JSON.stringify(
      totals.map((s) => {
        const c = coverage.get(s.target);
        return {
          target: s.target,
          file: s.file,
          line: s.line,
          function: s.function,
          allocated_bytes: s.allocatedBytes,
          freed_bytes: s.freedBytes,
          live_at_exit_bytes: s.liveAtExitBytes,
          at_peak_bytes: s.atPeakBytes,
          count: s.count,
          calls: s.calls,
          stacks: s.stacks,
          ...(s.root ? { root: s.root } : {}),
          // The target's, on each of its rows: calls with sites, all its calls, and whether the
          // probe stopped recording sites after the first calls.
          ...(c
            ? {
                target_calls_with_sites: c.recordedCalls,
                target_calls: c.calls,
                target_sites_limited: c.limited,
              }
            : {}),
        };
      }),
      null,
      2,
    )}\n`;
  }
  if (totals.length === 0) {
    return "No allocation sites in this run: probe a function with sites on (the conversion hotspots have them by default) and run on a GPU.\n";
  }
  const rows = totals.map(
    (s) =>
      `| ${s.target} | ${path.basename(s.file)}:${s.line} ${s.function} | ${formatBytes(s.allocatedBytes)} ×${s.count} | ` +
      `${formatBytes(s.freedBytes)} | ${formatBytes(s.liveAtExitBytes)} | ${formatBytes(s.atPeakBytes)} |`,
  );
  const shown = new Set(totals.map((s) => s.target));
  const partial = [...coverage.values()]
    .filter((c) => shown.has(c.target) && isPartialCoverage(c))
    .map((c) =>
      c.limited
        ? `${c.target}: sites of the first ${c.recordedCalls} of ${c.calls} calls (memlens run --sites-calls 0 records every call)`
        : `${c.target}: sites of ${c.recordedCalls} of ${c.calls} calls`,
    );
  return [
    "| target | site | allocated | freed | live at exit | at peak |",
    "|---|---|---|---|---|---|",
    ...rows,
    ...(partial.length > 0 ? ["", ...partial] : []),
    "",
  ].join("\n");
}

function today(): string {
  const d = new Date();
  const pad = (n: number): string => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

export async function main(
  argv: string[],
  out: (text: string) => void,
  err: (text: string) => void,
): Promise<number> {
  // run takes the target's own command line after "--", so it parses its own options.
  if (argv[0] === "run") return runMain(argv.slice(1), out, err, bundledProbePath());
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        help: { type: "boolean", short: "h" },
        json: { type: "boolean" },
        "target-gib": { type: "string" },
        "gpu-memory-utilization": { type: "string" },
        model: { type: "string" },
        run: { type: "string" },
        log: { type: "string" },
        date: { type: "string" },
        lang: { type: "string" },
        target: { type: "string" },
      },
    });
  } catch (e) {
    err(`memlens: ${(e as Error).message}\n\n${USAGE}`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    out(USAGE);
    return 0;
  }
  const [command, target, ...extra] = positionals;
  try {
    if (!command) throw new UsageError("no command given.");
    if (extra.length > 0)
      throw new UsageError(`unexpected argument${extra.length > 1 ? "s" : ""}: ${extra.join(" ")}.`);
    const targetGiB = numberOption(
      values["target-gib"],
      "target-gib",
      SETTING_DEFAULTS.targetGpuGiB,
      (n) => n > 0,
      "a positive number of GiB",
    );
    const util = numberOption(
      values["gpu-memory-utilization"],
      "gpu-memory-utilization",
      SETTING_DEFAULTS.gpuMemoryUtilization,
      (n) => n > 0 && n <= 1,
      "a number in (0, 1]",
    );
    const targetBytes = Math.round(targetGiB * GIB);
    const langOption = langArgument(values.lang);
    const warn = (lines: string[]): void => lines.forEach((l) => err(`memlens: warning: ${l}\n`));
    // report and export answer the checklist from a run the same way.
    const findingsOf = async (runDir: string, lang: Lang) => {
      const { run, meta, warnings } = await readRun(runDir);
      warn(warnings);
      const model = values.model ? await resolveModel(values.model) : undefined;
      return computeFindings(run, {
        meta,
        model,
        targetBytes,
        gpuMemoryUtilization: util,
        lineText: sourceLineReader(),
        lang,
      });
    };
    const fixedLang: Lang = langOption === "auto" ? "en" : langOption;
    switch (command) {
      case "budget": {
        if (!target) throw new UsageError("budget needs a MODEL folder or name.");
        const model = await resolveModel(target);
        const runData = values.run ? await readRun(values.run) : undefined;
        if (runData) warn(runData.warnings);
        const computed = computeBudget(runData?.run, {
          checkpoint: model,
          targetBytes,
          gpuMemoryUtilization: util,
          meta: runData?.meta?.targets,
          lang: fixedLang,
        });
        if (values.json) {
          out(
            `${JSON.stringify(
              {
                model: model.origin,
                totalBytes: model.summary.totalBytes,
                byDtype: model.summary.byDtype,
                byGroup: model.summary.byGroup,
                parameters: model.summary.parameters,
                kv: model.kv,
                marlinEstimate: model.marlin,
                checklistTheory: model.theory,
                fits: computed.fit.fits,
                kvTokens: computed.fit.kvTokens,
                view: computed.view,
                warnings: model.warnings,
              },
              null,
              2,
            )}\n`,
          );
        } else
          out(budgetMarkdown(computed.view, budgetTitle(target, targetGiB, fixedLang), model, fixedLang));
        return 0;
      }
      case "report": {
        if (!target) throw new UsageError("report needs a RUN_DIR.");
        const findings = await findingsOf(target, fixedLang);
        out(values.json ? `${JSON.stringify(reportJson(findings), null, 2)}\n` : reportMarkdown(findings));
        return 0;
      }
      case "sites": {
        if (!target) throw new UsageError("sites needs a RUN_DIR.");
        out(await sitesReport(target, values.target, values.json === true));
        return 0;
      }
      case "export": {
        if (!target) throw new UsageError("export needs a RUN_DIR.");
        if (!values.log)
          throw new UsageError("export needs --log FILE (the investigation log to write into).");
        if (!existsSync(values.log)) {
          throw new UsageError(
            `log file ${values.log} does not exist; create it from media/templates/investigation-log.md.`,
          );
        }
        const date = values.date ?? today();
        if (!/^\d{4}-\d{2}-\d{2}$/.test(date)) throw new UsageError(`--date ${date}: expected YYYY-MM-DD.`);
        const before = readFileSync(values.log, "utf8");
        const lang = logLanguage(before, langOption, "en");
        const findings = await findingsOf(target, lang);
        const result = exportFindings(before, findingsInput(findings, date));
        writeFileSync(values.log, result.text);
        out(
          `Wrote Day ${result.day} (${date}, ${lang}) to ${values.log}: ${result.ticked.length} item(s) ticked, ` +
            `${result.cells.length} 状态 cell(s) filled.\n`,
        );
        return 0;
      }
      default:
        throw new UsageError(`unknown command "${command}".`);
    }
  } catch (e) {
    if (e instanceof UsageError) {
      err(`memlens: ${e.message}\n\nRun memlens --help for usage.\n`);
      return 2;
    }
    if (
      e instanceof CheckpointError ||
      e instanceof ConfigError ||
      e instanceof FileReadError ||
      e instanceof LogFormatError ||
      e instanceof RangeError
    ) {
      err(`memlens: ${e.message}\n`);
      return 2;
    }
    err(`memlens: internal error: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    return 1;
  }
}

if (require.main === module) {
  void main(
    process.argv.slice(2),
    (t) => process.stdout.write(t),
    (t) => process.stderr.write(t),
  ).then((code) => {
    process.exitCode = code;
  });
}
