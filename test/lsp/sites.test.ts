// Allocation sites and OOM forensics over the language server's real transport: a run folder of
// `sites` and `oom` events (test/fixtures/events/sites_oom.jsonl, recorded at host paths under
// site-packages) decorates the local fixture checkout with inlay hints on the lines that
// allocated, hovers with their stacks, and an OOM diagnostic with the allocator's state.
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import * as path from "node:path";
import { afterEach, test } from "node:test";
import { pathToFileURL } from "node:url";
import type { ProbeEvent } from "../../src/protocol/events";
import { parseEventsText } from "../../src/protocol/reader";
import { FIXTURE_ROOT, LspTestClient, REPO_ROOT, fileUri, runFolder } from "./lspTestClient";

const FP4_FILE = path.join(FIXTURE_ROOT, "vllm/model_executor/layers/quantization/utils/marlin_utils_fp4.py");
const EVENTS = path.join(REPO_ROOT, "test/fixtures/events/sites_oom.jsonl");
const SOURCE_LINES = readFileSync(FP4_FILE, "utf8").split("\n");

function fixtureEvents(): ProbeEvent[] {
  const parsed = parseEventsText(readFileSync(EVENTS, "utf8"));
  assert.equal(parsed.malformed.length, 0);
  return parsed.events;
}

let client: LspTestClient | undefined;
afterEach(async () => {
  await client?.stop();
  client = undefined;
});

async function withRun(
  events: ProbeEvent[] = fixtureEvents(),
  locale?: string,
  dir = runFolder(events),
): Promise<{ c: LspTestClient; uri: string; dir: string }> {
  client = await LspTestClient.start({ locale });
  const result = await client.setRun({ run: { id: "run-sites", label: "sites <b>run</b>", dir } });
  assert.equal(result.error, undefined);
  const uri = fileUri(FP4_FILE);
  await client.open(uri, readFileSync(FP4_FILE, "utf8"));
  return { c: client, uri, dir };
}

void test("inlay hints on the lines that allocated, summed over calls, one rank's at the local lines", async () => {
  const { c, uri } = await withRun();
  const hints = await c.inlayHints(uri);
  const byLine = new Map(hints.map((h) => [h.position.line + 1, h]));
  // The two processes are ranks 0 and 1, each a card of its own: a line shows the rank that
  // allocated most there, named. Rank 0: 2 calls × 64 copies of 4 MiB, all freed before the exit.
  assert.equal(byLine.get(29)?.label, "+4.0 MiB ×128 · freed · on rank 0 of 2");
  assert.equal(byLine.get(29)?.position.character, SOURCE_LINES[28]!.length);
  // The workspace: 2.5 KiB per call, kept, over rank 0's 2 calls.
  assert.equal(byLine.get(24)?.label, "retains 2.5 KiB ×2 · on rank 0 of 2");
  // The stack: 256 MiB kept per finished call, both of rank 0's (rank 1's second ran out halfway
  // and allocated less).
  assert.equal(byLine.get(34)?.label, "retains 128.0 MiB ×4 · on rank 0 of 2");
  // repack's clone is in repack's own sites and in the caller's: shown once, from the caller's
  // (2 calls × 64 × 4 MiB), not added to repack's (4 × 4 MiB).
  assert.equal(byLine.get(12)?.label, "+4.0 MiB ×128 · freed · on rank 0 of 2");
  assert.deepEqual(
    hints.map((h) => h.position.line + 1),
    [12, 24, 29, 34],
  );
  // Only the asked range.
  const some = await c.inlayHints(uri, 23, 28);
  assert.deepEqual(
    some.map((h) => h.position.line + 1),
    [24, 29],
  );
});

void test("hover on a site line: totals, the root of the bytes, the top stacks, escaped", async () => {
  const { c, uri } = await withRun();
  const hover = await c.hover(uri, 11, 8);
  const text = (hover?.contents as { value: string }).value;
  assert.match(
    text,
    /\*\*MemLens allocation site\*\* · sites \\<b\\>run\\<\/b\\> · `prepare_moe_fp4_layer_for_marlin`/,
  );
  assert.match(
    text,
    /allocated 512\.0 MiB in 128 blocks \(4\.0 MiB each on average\) over 2 calls · freed 512\.0 MiB · live at exit 0 B · at a call's peak 256\.0 MiB/,
  );
  assert.match(
    text,
    /- 128 · `repack \(marlin_utils_fp4\.py:12\) <- prepare_moe_fp4_layer_for_marlin \(marlin_utils_fp4\.py:30\)`/,
  );
  // The bytes themselves come from deeper code: its frame, escaped.
  assert.match(
    text,
    /The bytes come from `gptq_marlin_repack` \(\\_custom\\_ops\.py:1021\), called from this line\./,
  );
  assert.match(text, /Also among the sites of `repack`, which called it: counted once here\./);
  // No raw HTML from the run's label reaches the markdown.
  assert.doesNotMatch(text, /<b>/);

  const copy = (await c.hover(uri, 28, 12))?.contents as { value: string };
  assert.match(copy.value, /\+4\.0 MiB ×128 · freed/);
  assert.match(copy.value, /process_weights_after_loading \(mxfp4\.py:301\)/);
  // A line without sites and outside any def header has no hover.
  assert.equal(await c.hover(uri, 26, 4), null);
});

void test("hover on a site line says how many of the function's calls its sites add up", async () => {
  // The probe's sites_calls limit: pid 300 calls prepare_moe_fp4_layer_for_marlin 10 more times,
  // measured but without sites, and says so once. 4 calls with sites (2 per process) of 14.
  const events = fixtureEvents();
  const enter = events.find((e) => e.type === "enter" && e.pid === 300 && e.scope_id === "300:2")!;
  const exit = events.find((e) => e.type === "exit" && e.pid === 300 && e.scope_id === "300:2")!;
  let ts = Math.max(...events.map((e) => e.ts));
  const more: ProbeEvent[] = [];
  for (let call = 3; call <= 12; call++) {
    const scope = { scope_id: `300:${call}`, call };
    more.push({ ...enter, ...scope, ts: (ts += 1_000_000) } as ProbeEvent);
    if (call === 3) {
      more.push({
        v: 1,
        type: "note",
        ts: (ts += 1_000),
        pid: 300,
        rank: enter.rank,
        device: enter.device,
        kind: "sites_limited",
        message: "allocation sites of … are recorded for its first 2 calls in this process",
        target: "t1",
      } as ProbeEvent);
    }
    more.push({ ...exit, ...scope, ts: (ts += 1_000_000) } as ProbeEvent);
  }
  const { c, uri } = await withRun([...events, ...more]);
  const text = ((await c.hover(uri, 11, 8))?.contents as { value: string }).value;
  assert.match(
    text,
    /These add up the first 4 of the function's 14 calls: sites are recorded for the first calls of each function in each process \(memlens\.sitesCalls; 0 records every call\)\./,
  );
  // Every call recorded (the fixture as it is): no such line.
  await client?.stop();
  const full = await withRun();
  const fullText = ((await full.c.hover(full.uri, 11, 8))?.contents as { value: string }).value;
  assert.doesNotMatch(fullText, /These add up/);
});

void test("OOM diagnostic: scope stack and phase, request, free / reserved / fragmentation, largest blocks, snapshot", async () => {
  const dir = runFolder(fixtureEvents());
  // The probe wrote the snapshot into the run folder (its name in the event is relative to it).
  writeFileSync(path.join(dir, "oom-301-2.pickle"), "");
  const { c, uri } = await withRun(undefined, undefined, dir);
  const diagnostics = await c.waitForDiagnostics(uri, (d) => d.some((x) => x.code === "oom"));
  const oom = diagnostics.find((d) => d.code === "oom")!;
  const lines = oom.message.split("\n");
  assert.match(
    lines[0]!,
    /^OOM here \(pid 301\): torch\.OutOfMemoryError: CUDA out of memory\. Tried to allocate 128\.00 MiB/,
  );
  assert.equal(
    lines[1],
    "in BaseModelLoader.load_model › prepare_moe_fp4_layer_for_marlin · phase: Converting weights for the kernels",
  );
  assert.equal(
    lines[2],
    "asked for 128.0 MiB; free 20.0 MiB of 15.6 GiB; reserved 15.3 GiB; allocated 15.0 GiB; fragmentation (inactive split blocks) 180.0 MiB",
  );
  assert.equal(
    lines[3],
    "largest live blocks: 128.0 MiB at marlin_utils_fp4.py:34 (prepare_moe_fp4_layer_for_marlin); 4.0 MiB at marlin_utils_fp4.py:12 (repack)",
  );
  const snapshot = path.join(dir, "oom-301-2.pickle");
  assert.equal(
    lines[4],
    `allocator snapshot: ${snapshot} (open it with the lens above the function, or MemLens: Open Allocator Snapshot)`,
  );
  // The blocks' host paths map to the local checkout, so each opens at its line.
  assert.deepEqual(
    oom.relatedInformation?.map((r) => [r.location.uri, r.location.range.start.line]),
    [
      [pathToFileURL(FP4_FILE).href, 33],
      [pathToFileURL(FP4_FILE).href, 11],
    ],
  );
  // The lens above the function opens the snapshot.
  const lenses = await c.codeLenses(uri);
  const open = lenses.find((l) => l.command?.command === "memlens.openAllocatorSnapshot");
  assert.equal(open?.command?.title, "$(file-binary) Open the allocator snapshot of the OOM (pid 301)");
  assert.deepEqual(open?.command?.arguments, [snapshot]);
  assert.equal(
    open?.range.start.line,
    SOURCE_LINES.findIndex((l) => l.startsWith("def prepare_moe_fp4_layer_for_marlin")),
  );
});

void test("without the new fields (an older probe) the OOM diagnostic and lenses are as before", async () => {
  const events = fixtureEvents()
    .filter((e) => e.type !== "sites")
    .map((e) => {
      if (e.type !== "oom") return e;
      const { target, scope_id, stack, readings, message, v, ts, pid, rank, device, type } = e;
      return { target, scope_id, stack, readings, message, v, ts, pid, rank, device, type };
    });
  const { c, uri } = await withRun(events);
  const diagnostics = await c.waitForDiagnostics(uri, (d) => d.some((x) => x.code === "oom"));
  const oom = diagnostics.find((d) => d.code === "oom")!;
  assert.equal(oom.message.split("\n").length, 1);
  assert.equal(oom.relatedInformation, undefined);
  assert.equal(
    (await c.codeLenses(uri)).filter((l) => l.command?.command === "memlens.openAllocatorSnapshot").length,
    0,
  );
  assert.deepEqual(await c.inlayHints(uri), []);
});

void test("a snapshot name that climbs out of the run folder gets no lens", async () => {
  const events = fixtureEvents().map((e) =>
    e.type === "oom" ? ({ ...e, snapshot_file: "../../home/me/.ssh/id_rsa" } as ProbeEvent) : e,
  );
  const { c, uri } = await withRun(events);
  await c.waitForDiagnostics(uri, (d) => d.some((x) => x.code === "oom"));
  assert.equal(
    (await c.codeLenses(uri)).filter((l) => l.command?.command === "memlens.openAllocatorSnapshot").length,
    0,
  );
  assert.doesNotMatch(c.diagnostics.get(uri)!.find((d) => d.code === "oom")!.message, /id_rsa/);
});

void test("zh-CN: the site labels and OOM lines in Chinese", async () => {
  const { c, uri } = await withRun(fixtureEvents(), "zh-cn");
  const hints = await c.inlayHints(uri);
  assert.equal(
    hints.find((h) => h.position.line === 28)?.label,
    "+4.0 MiB ×128 · 已释放 · rank 0（共 2 个）",
  );
  assert.equal(hints.find((h) => h.position.line === 23)?.label, "保留 2.5 KiB ×2 · rank 0（共 2 个）");
  const diagnostics = await c.waitForDiagnostics(uri, (d) => d.some((x) => x.code === "oom"));
  assert.match(
    diagnostics.find((d) => d.code === "oom")!.message,
    /请求 128\.0 MiB; 空闲 20\.0 MiB，总量 15\.6 GiB/,
  );
});

void test("a snapshot left on the GPU host (an absolute host path): named in the diagnostic, no lens", async () => {
  const events = fixtureEvents().map((e) =>
    e.type === "oom" ? ({ ...e, snapshot_file: "/srv/runs/r1/oom-301-2.pickle" } as ProbeEvent) : e,
  );
  const { c, uri } = await withRun(events);
  const diagnostics = await c.waitForDiagnostics(uri, (d) => d.some((x) => x.code === "oom"));
  assert.equal(
    diagnostics.find((d) => d.code === "oom")!.message.split("\n")[4],
    "allocator snapshot on the GPU host: /srv/runs/r1/oom-301-2.pickle (copy it into the run folder to open it here)",
  );
  assert.equal(
    (await c.codeLenses(uri)).filter((l) => l.command?.command === "memlens.openAllocatorSnapshot").length,
    0,
  );
});
