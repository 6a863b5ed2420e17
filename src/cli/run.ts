// `memlens run`: the same runner and launcher as "Measure here", from a terminal or a batch job on
// a GPU host (no editor needed). Probes every catalog hotspot by default, plus any --probe.
import * as path from "node:path";
import { parseArgs } from "node:util";
import { loadBundledCatalog } from "../catalog/catalog";
import { formatDelta, formatDuration, sourceLabel, summaryLine } from "../model/format";
import { buildPlan, hotspotTargets, type PlannedTarget } from "../model/plan";
import { callDelta, RunModel } from "../model/runModel";
import { specLabel } from "../model/targets";
import { isFunctionSpec, parseLineSpec } from "../protocol/specs";
import type { ProbeEvent } from "../protocol/events";
import { RunnerError } from "../runner/errors";
import { startRun } from "../runner/launch";
import type { RunDescription } from "../runner/types";
import { SETTING_DEFAULTS } from "../settings/settings";

export const RUN_USAGE = `Usage:
  memlens run [options] -- COMMAND [ARG...]

Runs COMMAND (e.g. python3 load.py, or vllm serve …) under the probe, with every hotspot of the
catalog probed, and keeps the run in RUNS_DIR/<id>/ (events.jsonl, plan.json, meta.json). Progress
goes to stderr; the last line on stdout is the run folder. Exits with the target's exit code.

Options:
  --probe SPEC          also measure module:qualname or /abs/file.py:LINE (repeatable)
  --no-catalog          probe only the --probe targets
  --sites SPEC          also measure SPEC and record where its memory goes, line by line (repeatable;
                        the catalog's weight-conversion hotspots record it by default)
  --no-sites            record no allocation sites (not even the catalog's defaults)
  --sites-calls N       allocation sites for the first N calls of each target per process
                        (default ${SETTING_DEFAULTS.sitesCalls}; 0: every call)
  --runs-dir DIR        parent folder of runs (default .memlens/runs)
  --python PY           Python that runs the probe launcher (default ${SETTING_DEFAULTS.python})
  --label TEXT          the run's label (default: the command)
  --emulate-gib N       cap torch allocations at N GiB, as on a smaller card
  --sample-ms N         timeline sample interval in ms (default ${SETTING_DEFAULTS.sampleIntervalMs}; 0 turns sampling off)
  --cwd DIR             the target's working directory
  --env KEY=VALUE       extra environment for the target (repeatable)
  --quiet               no progress lines
`;

class RunUsageError extends Error {
  override name = "RunUsageError";
}

/** A --probe, under the id the debugger gives its extra probes. */
function userTarget(spec: string, index: number): PlannedTarget {
  const id = `probe${index + 1}`;
  const line = parseLineSpec(spec);
  if (line) {
    if (!path.isAbsolute(line.file) || line.line < 1)
      throw new RunUsageError(`--probe ${spec}: a line probe needs an absolute file path and a line from 1.`);
    return { id, kind: "line", spec, file: line.file, line: line.line };
  }
  if (!isFunctionSpec(spec)) {
    throw new RunUsageError(
      `--probe ${spec}: expected module:qualname (e.g. vllm.v1.worker.gpu_worker:Worker.load_model) or /abs/file.py:LINE.`,
    );
  }
  return { id, kind: "function", spec };
}

function parseEnv(pairs: readonly string[]): Record<string, string> {
  const env: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf("=");
    if (eq <= 0) throw new RunUsageError(`--env ${pair}: expected KEY=VALUE.`);
    env[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return env;
}

function positiveNumber(value: string | undefined, name: string, allowZero: boolean): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0 || (!allowZero && n === 0))
    throw new RunUsageError(
      `--${name} ${value}: expected a ${allowZero ? "non-negative" : "positive"} number.`,
    );
  return n;
}

/** --sites-calls N: a whole number from 0 (0: every call). */
function sitesCalls(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(Number(value)))
    throw new RunUsageError(
      `--sites-calls ${value}: expected a whole number of calls from 0 (0: every call).`,
    );
  return Number(value);
}

/** Progress for a long load: outermost probed scopes as they finish, facts, OOMs. Nested scopes
 * (768 per-expert calls) would drown the terminal; the record has them all. */
function progressLine(event: ProbeEvent, model: RunModel, labels: Map<string, string>): string | undefined {
  const who = `pid ${event.pid}${event.rank !== null ? ` rank ${event.rank}` : ""}`;
  switch (event.type) {
    case "exit": {
      if (event.depth > 0) return undefined;
      const call = model.scope(event.pid, event.scope_id);
      const d = call ? callDelta(call) : undefined;
      const delta = d?.retained !== undefined ? ` ${formatDelta(d.retained)} ${sourceLabel(d.source)}` : "";
      return `${who} ${labels.get(event.target) ?? event.target}:${delta} in ${formatDuration(event.duration_ns)}`;
    }
    case "fact":
      return `${who} vLLM says: ${event.line.trim()}`;
    case "oom":
      return `${who} OUT OF MEMORY in ${labels.get(event.target) ?? event.target}: ${event.message}`;
    default:
      return undefined;
  }
}

export async function runMain(
  argv: string[],
  out: (text: string) => void,
  err: (text: string) => void,
  probePath: string,
): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        help: { type: "boolean", short: "h" },
        probe: { type: "string", multiple: true },
        "no-catalog": { type: "boolean" },
        sites: { type: "string", multiple: true },
        "no-sites": { type: "boolean" },
        "sites-calls": { type: "string" },
        "runs-dir": { type: "string" },
        python: { type: "string" },
        label: { type: "string" },
        "emulate-gib": { type: "string" },
        "sample-ms": { type: "string" },
        cwd: { type: "string" },
        env: { type: "string", multiple: true },
        quiet: { type: "boolean" },
      },
    });
  } catch (e) {
    err(`memlens run: ${(e as Error).message}\n\n${RUN_USAGE}`);
    return 2;
  }
  const { values, positionals: command } = parsed;
  if (values.help) {
    out(RUN_USAGE);
    return 0;
  }
  let description: RunDescription;
  let targets: PlannedTarget[];
  try {
    if (command.length === 0) throw new RunUsageError("no command given: put it after --.");
    // Every catalog hotspot under its own name and each alias, as the debugger probes them.
    const probes = values.probe ?? [];
    targets = [
      ...(values["no-catalog"] ? [] : hotspotTargets(loadBundledCatalog().hotspots)),
      ...probes.map(userTarget),
      ...(values.sites ?? []).map((spec, i) => ({ ...userTarget(spec, probes.length + i), sites: true })),
    ];
    if (values["no-sites"]) targets = targets.map((target) => ({ ...target, sites: false }));
    description = {
      python: values.python ?? SETTING_DEFAULTS.python,
      command,
      env: parseEnv(values.env ?? []),
      cwd: values.cwd,
      sampleIntervalMs:
        positiveNumber(values["sample-ms"], "sample-ms", true) ?? SETTING_DEFAULTS.sampleIntervalMs,
      emulateGpuGiB: positiveNumber(values["emulate-gib"], "emulate-gib", false) ?? null,
      sitesCalls: sitesCalls(values["sites-calls"]) ?? SETTING_DEFAULTS.sitesCalls,
    };
  } catch (e) {
    if (e instanceof RunUsageError) {
      err(`memlens run: ${e.message}\n\n${RUN_USAGE}`);
      return 2;
    }
    throw e;
  }
  const { plan, targets: metaTargets } = buildPlan(targets);
  const labels = new Map(metaTargets.map((t) => [t.id, specLabel(t.spec)]));
  const runsDir = path.resolve(values["runs-dir"] ?? path.join(".memlens", "runs"));
  const say = (line: string) => {
    if (!values.quiet) err(`memlens: ${line}\n`);
  };
  let handle;
  try {
    handle = await startRun(
      { description, plan, label: values.label ?? command.join(" "), runsDir, targets: metaTargets },
      { probePath, onProgress: say },
    );
  } catch (e) {
    if (e instanceof RunnerError) {
      err(`memlens run: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
  say(`run ${handle.id} in ${handle.dir} (${metaTargets.length} probe targets)`);
  const model = new RunModel();
  handle.onEvent((event) => {
    model.add(event);
    const line = progressLine(event, model, labels);
    if (line) say(line);
  });
  handle.onStderr((line) => say(`launcher: ${line}`));
  // Ctrl-C and a batch system's SIGTERM end the whole target tree, and the record keeps what was measured.
  const onSignal = () => void handle.stop();
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  const outcome = await handle.done;
  process.off("SIGINT", onSignal);
  process.off("SIGTERM", onSignal);
  for (const summary of model.summaries()) {
    if (summary.calls > 0) say(`${labels.get(summary.target) ?? summary.target}: ${summaryLine(summary)}`);
  }
  say(
    `run ${outcome.meta.status}` +
      (outcome.meta.exitCode !== undefined && outcome.meta.exitCode !== null
        ? `, exit ${outcome.meta.exitCode}`
        : "") +
      (outcome.meta.error ? `: ${outcome.meta.error}` : ""),
  );
  out(`${handle.dir}\n`);
  const code = outcome.meta.exitCode;
  return typeof code === "number" ? code : outcome.meta.status === "finished" ? 0 : 1;
}
