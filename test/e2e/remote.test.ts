// "Measure here" against a remote GPU host, end to end: the packaged extension in code-server, a
// real OpenSSH server on loopback as the host, the real probe uploaded into the host's cache and
// run there; "Check Remote GPU Host"; a second run that finds the probe cached; "Measure This Line"
// over ssh. The host runs its own copy of the e2e workload (another folder, another layout) and
// memlens.pathMappings maps its paths onto the local workspace and back, which keeps the sources
// under src/ so that mapping by module name alone would miss them.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { cp, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { ProbeEvent, TargetResolvedEvent } from "../../src/protocol/events";
import { parseEventsText } from "../../src/protocol/reader";
import type { RunMeta } from "../../src/runner/types";
import { startSshdHost, type SshdHost } from "../remote/sshdHost";
import { REPO_ROOT, waitUntil, Workbench } from "./harness";

const FP4_MODULE_PATH = "vllm/model_executor/layers/quantization/utils/marlin_utils_fp4.py";
/** Where the workload's sources sit in the local workspace (the host has them at its checkout's root). */
const LOCAL_SOURCES = "src";
const FP4_FILE = `${LOCAL_SOURCES}/${FP4_MODULE_PATH}`;
const PREPARE_DEF = "def prepare_moe_fp4_layer_for_marlin";
const STAGING_LINE = "staging = bytearray";
/** What the workload allocates (see test/e2e/workspace's marlin_utils_fp4.py): retained by the
 * function, and by the staging line. */
const REPACKED_MIB = 200;
const STAGING_MIB = 96;
/** RSS moves by more than the allocation (allocator, page tables, the sampler): allow this much. */
const RSS_TOLERANCE_MIB = 12;
const DELTA = /[+−-]\d+(\.\d+)? (B|KiB|MiB|GiB) host RSS/;
const PROBE_NAME = "memlens_probe.pyz";

/** "+200.1 MiB host RSS" -> 200.1 (MiB). */
function mibOf(text: string): number {
  const match = /([+−-])(\d+(?:\.\d+)?) (B|KiB|MiB|GiB) host RSS/.exec(text);
  assert.ok(match, `no host-RSS delta in "${text}"`);
  const scale = { B: 1 / 1024 ** 2, KiB: 1 / 1024, MiB: 1, GiB: 1024 }[
    match[3] as "B" | "KiB" | "MiB" | "GiB"
  ];
  return (match[1] === "+" ? 1 : -1) * Number(match[2]) * scale;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

let sshd: SshdHost;
let wb: Workbench;
/** The "host's" side: its checkout of the workload and MemLens's cache folder there. */
let hostRoot: string;
let hostCheckout: string;
let hostCacheDir: string;
/** The folder Workbench.start copies into the workspace it opens. */
let workspaceSource: string;

/** Copies the e2e workload (its Python files, not its settings or leftovers of earlier runs). */
async function copyWorkload(target: string): Promise<void> {
  const source = path.join(REPO_ROOT, "test", "e2e", "workspace");
  await cp(source, target, {
    recursive: true,
    filter: (p) => !/[\\/](\.vscode|__pycache__|\.memlens)([\\/]|$)/.test(p.slice(source.length)),
  });
}

async function runIds(): Promise<string[]> {
  return (await readdir(wb.workspacePath(".memlens/runs")).catch(() => [])).sort();
}

async function runMeta(id: string): Promise<RunMeta> {
  return JSON.parse(await readFile(wb.workspacePath(`.memlens/runs/${id}/meta.json`), "utf8")) as RunMeta;
}

async function runEvents(id: string): Promise<ProbeEvent[]> {
  const parsed = parseEventsText(
    await readFile(wb.workspacePath(`.memlens/runs/${id}/events.jsonl`), "utf8"),
  );
  assert.equal(parsed.malformed.length, 0, "events.jsonl has no malformed line");
  return parsed.events;
}

/** Waits for a run started after `known` to end, and returns its id and meta. */
async function nextFinishedRun(known: readonly string[]): Promise<{ id: string; meta: RunMeta }> {
  return waitUntil("a new run to end", async () => {
    const id = (await runIds()).filter((runId) => !known.includes(runId)).pop();
    if (id === undefined) return false;
    const meta = await runMeta(id);
    return meta.status === "running" ? false : { id, meta };
  });
}

/** The probe files in the host's cache: <cache>/<sha256 prefix>/memlens_probe.pyz. */
async function probesInHostCache(): Promise<string[]> {
  const entries = await readdir(hostCacheDir, { recursive: true });
  return entries
    .filter((entry) => path.basename(entry) === PROBE_NAME)
    .map((entry) => path.join(hostCacheDir, entry));
}

/** The probe the installed extension ships (what "Measure here" uploads). */
async function installedProbe(): Promise<string> {
  const entries = await readdir(wb.extensionsDir, { recursive: true });
  const found = entries.filter((entry) => entry.endsWith(`dist${path.sep}${PROBE_NAME}`));
  assert.equal(found.length, 1, `one installed probe under ${wb.extensionsDir}: ${found.join(", ")}`);
  return path.join(wb.extensionsDir, found[0]!);
}

/**
 * The text of the MemLens output channel as VS Code logs it, one entry per extension host, oldest
 * first (a reload starts a new one).
 */
async function outputChannelLogs(): Promise<string[]> {
  const logsDir = path.join(wb.userDataDir, "logs");
  const files = (await readdir(logsDir, { recursive: true }))
    .filter((entry) => entry.endsWith("-MemLens.log"))
    .map((entry) => ({ entry, host: Number(/exthost(\d+)/.exec(entry)?.[1] ?? 0) }))
    .sort((a, b) => a.host - b.host);
  return Promise.all(files.map(({ entry }) => readFile(path.join(logsDir, entry), "utf8")));
}

/** Waits until the current extension host's output channel log matches. */
async function waitForOutput(text: RegExp): Promise<string> {
  return waitUntil(`the MemLens output to match ${String(text)}`, async () => {
    const current = (await outputChannelLogs()).pop();
    return current !== undefined && text.test(current) ? current : false;
  });
}

async function lineNumberOf(relativePath: string, text: string): Promise<number> {
  const index = (await wb.readFile(relativePath)).split("\n").findIndex((line) => line.includes(text));
  assert.ok(index >= 0, `"${text}" not in ${relativePath}`);
  return index + 1;
}

/** A test on the shared workbench; a failure leaves a screenshot named after it. */
function e2e(title: string, body: () => Promise<void>): void {
  void test(title, () => wb.step(title, body));
}

before(async () => {
  sshd = await startSshdHost();
  hostRoot = await mkdtemp(path.join(tmpdir(), "memlens-e2e-remote-host-"));
  hostCheckout = path.join(hostRoot, "checkout");
  // Not created here: the first upload makes it.
  hostCacheDir = path.join(hostRoot, "cache");
  await copyWorkload(hostCheckout);

  workspaceSource = await mkdtemp(path.join(tmpdir(), "memlens-e2e-remote-src-"));
  await copyWorkload(path.join(workspaceSource, LOCAL_SOURCES));
  await mkdir(path.join(workspaceSource, ".vscode"));
  await writeFile(
    path.join(workspaceSource, ".vscode", "settings.json"),
    JSON.stringify(
      {
        "memlens.host": sshd.host,
        "memlens.sshArgs": sshd.sshArgs,
        "memlens.remoteCacheDir": hostCacheDir,
        "memlens.python": "python3",
        "memlens.command": ["python3", "load_model.py"],
        "memlens.cwd": hostCheckout,
        "memlens.pathMappings": [{ remote: hostCheckout, local: `\${workspaceFolder}/${LOCAL_SOURCES}` }],
        "memlens.sampleIntervalMs": 20,
      },
      null,
      2,
    ),
  );
  wb = await Workbench.start({ name: "remote", workspace: workspaceSource });
});

after(async () => {
  await wb?.stop();
  await sshd?.stop();
  if (!process.env.MEMLENS_E2E_KEEP) {
    for (const dir of [hostRoot, workspaceSource]) if (dir) await rm(dir, { recursive: true, force: true });
  }
});

/** The uploaded probe's identity after the first run, to compare after the second. */
let firstUpload: { file: string; ino: number; mtimeMs: number } | undefined;
let lensAfterFirstRun = "";

e2e("Measure here runs on the host over ssh and the delta lands on the local file", async () => {
  await wb.openFile(FP4_FILE);
  await wb.clickLensAbove(PREPARE_DEF, /Measure here/i);
  await wb.waitForNotification(/MemLens: .*prepare_moe_fp4_layer_for_marlin/);
  await wb.screenshot("measure-here-remote-running");
  const { id, meta } = await nextFinishedRun([]);
  assert.equal(meta.status, "finished", meta.error);
  assert.equal(meta.exitCode, 0);
  assert.equal(meta.host, sshd.host, "meta.json names the host");
  assert.deepEqual(meta.command, ["python3", "load_model.py"]);
  const hostRunDir = meta.hostRunDir ?? "";
  assert.ok(
    hostRunDir.startsWith(`${hostCacheDir}/runs/`),
    `the host's copy of the run is under the cache folder: ${hostRunDir}`,
  );
  // The launcher on the host wrote its own record there, beside the local one.
  assert.ok((await stat(path.join(hostRunDir, "events.jsonl"))).size > 0);

  // The lens on the LOCAL file shows the function's delta, measured on the host.
  lensAfterFirstRun = await wb.waitForLensAbove(PREPARE_DEF, DELTA);
  const retained = mibOf(lensAfterFirstRun);
  assert.ok(
    Math.abs(retained - REPACKED_MIB) <= RSS_TOLERANCE_MIB,
    `expected about +${REPACKED_MIB} MiB retained, the lens says "${lensAfterFirstRun}"`,
  );
  await wb.screenshot("measure-here-remote-delta");

  // The host's path of the function maps onto the local file (through memlens.pathMappings: the
  // local tree is under src/, so mapping by module name under the workspace folder would miss).
  const resolved = (await runEvents(id)).find(
    (event): event is TargetResolvedEvent & { host_file?: string } =>
      event.type === "target_resolved" && event.qualname === "prepare_moe_fp4_layer_for_marlin",
  );
  assert.ok(resolved, "the probe resolved the function on the host");
  assert.equal(resolved.host_file, path.join(hostCheckout, FP4_MODULE_PATH));
  assert.equal(resolved.file, wb.workspacePath(FP4_FILE));

  // The probe went into the host's cache folder, whole, under its content hash.
  const probes = await probesInHostCache();
  assert.equal(probes.length, 1, `one probe in ${hostCacheDir}: ${probes.join(", ")}`);
  const uploaded = probes[0]!;
  assert.deepEqual(await readFile(uploaded), await readFile(await installedProbe()));
  assert.match(path.basename(path.dirname(uploaded)), /^[0-9a-f]{16}$/);
  const uploadedStat = await stat(uploaded);
  firstUpload = { file: uploaded, ino: uploadedStat.ino, mtimeMs: uploadedStat.mtimeMs };
  await waitForOutput(new RegExp(`Uploaded ${escapeRegExp(PROBE_NAME)} to host ${escapeRegExp(sshd.host)}`));
});

e2e("Check Remote GPU Host reports on the host by name", async () => {
  await wb.clearNotifications();
  await wb.runCommand("MemLens: Check Remote GPU Host");
  const hostPattern = escapeRegExp(sshd.host);
  const toast = await wb.waitForNotification(
    new RegExp(`host ${hostPattern} is ready|check of host ${hostPattern}`),
  );
  const message = (await toast.textContent()) ?? "";
  assert.match(message, new RegExp(`MemLens: host ${hostPattern} is ready — Python 3\\.\\d+\\.\\d+, torch `));
  // Whatever this machine has, the summary says it: GPU names, or that none is visible.
  assert.match(message, /GPU \d+ |no GPU/);
  await wb.screenshot("check-remote-host");
  await wb.clickNotificationButton(new RegExp(`host ${hostPattern} is ready`), "Open Output");
  await wb.page
    .locator(".output-view, .panel .monaco-editor", { hasText: `[preflight] host ${sshd.host}: Python 3.` })
    .first()
    .waitFor();
  await waitForOutput(new RegExp(`\\[preflight\\] host ${hostPattern}: Python 3\\.`));
  await wb.screenshot("check-remote-host-output");
  // The check found the probe in the cache: it did not upload it again.
  const probes = await probesInHostCache();
  assert.deepEqual(probes, [firstUpload?.file]);
});

e2e("a second run, from a new extension host, finds the probe cached and uploads nothing", async () => {
  assert.ok(firstUpload, "the first test uploaded the probe");
  const known = await runIds();
  // A new extension host has no memory of the upload: it must find the file on the host by its hash.
  await wb.reloadWindow();
  await wb.openFile(FP4_FILE);
  // The stored run's delta comes back in place of the lens's "Measure here"; the command measures
  // the function around the cursor.
  assert.equal(await wb.waitForLensAbove(PREPARE_DEF, DELTA), lensAfterFirstRun);
  await wb.goToLine(await lineNumberOf(FP4_FILE, STAGING_LINE));
  await wb.runCommand("MemLens: Measure Here");
  const { id, meta } = await nextFinishedRun(known);
  assert.equal(meta.status, "finished", meta.error);
  assert.equal(meta.host, sshd.host);
  const afterwards = await stat(firstUpload.file);
  assert.equal(afterwards.ino, firstUpload.ino, "the same file: not rewritten");
  assert.equal(afterwards.mtimeMs, firstUpload.mtimeMs);
  assert.deepEqual(await probesInHostCache(), [firstUpload.file]);

  // This extension host's output: it connected and ran, and never uploaded.
  const output = await waitForOutput(/── \S*prepare_moe_fp4_layer_for_marlin: finished/);
  assert.match(output, new RegExp(`Connecting to host ${escapeRegExp(sshd.host)}`));
  assert.doesNotMatch(output, /Upload/);

  const lens = await wb.waitForLensAbove(PREPARE_DEF, DELTA);
  assert.ok(Math.abs(mibOf(lens) - REPACKED_MIB) <= RSS_TOLERANCE_MIB, lens);
  const resolved = (await runEvents(id)).find((event) => event.type === "target_resolved");
  assert.ok(resolved && resolved.type === "target_resolved");
  assert.equal(resolved.file, wb.workspacePath(FP4_FILE));
  await wb.screenshot("second-run-no-upload");
});

e2e(
  "Measure This Line on the host probes the host's copy of the line and shows it on the local line",
  async () => {
    const known = await runIds();
    await wb.openFile(FP4_FILE);
    await wb.goToLine(await lineNumberOf(FP4_FILE, STAGING_LINE));
    await wb.runCommand("MemLens: Measure This Line");
    const { id, meta } = await nextFinishedRun(known);
    assert.equal(meta.status, "finished", meta.error);
    const events = await runEvents(id);
    const notFound = events.find((event) => event.type === "target_not_found");
    assert.equal(notFound, undefined, `the host found the line: ${JSON.stringify(notFound)}`);
    const resolved = events.find(
      (event): event is TargetResolvedEvent & { host_file?: string } =>
        event.type === "target_resolved" && event.kind === "line",
    );
    assert.ok(resolved, "the probe resolved the line on the host");
    assert.equal(resolved.host_file, path.join(hostCheckout, FP4_MODULE_PATH));
    assert.equal(resolved.file, wb.workspacePath(FP4_FILE));
    const text = await wb.waitForLineResult(STAGING_LINE, DELTA);
    const delta = mibOf(text.slice(text.search(DELTA)));
    assert.ok(
      Math.abs(delta - STAGING_MIB) <= RSS_TOLERANCE_MIB,
      `expected about +${STAGING_MIB} MiB on the line, the editor shows "${text}"`,
    );
    await wb.screenshot("measure-line-remote-delta");
  },
);
