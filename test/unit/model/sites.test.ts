// The site and OOM models the editor draws from: lines counted once across nested targets, how a
// site's bytes ended, the OOM's forensic fields read defensively, and the host paths of sites and
// blocks mapped onto local files (a path that climbs out of its mapping is refused).
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { lineSites, oomDetails, siteFate, siteTotals } from "../../../src/model/sites";
import type { OomEvent, ProbeEvent, SitesEvent } from "../../../src/protocol/events";
import { parseEventsText } from "../../../src/protocol/reader";
import { createHostPathMapper, mapEventPaths } from "../../../src/runner/pathMap";

const REPO = path.resolve(__dirname, "..", "..", "..");
const MiB = 1024 * 1024;

function events(): ProbeEvent[] {
  return parseEventsText(readFileSync(path.join(REPO, "test/fixtures/events/sites_oom.jsonl"), "utf8"))
    .events;
}

void test("lineSites: per file and line, a line in two targets' sites shown once, from the one that saw most", () => {
  const byFile = lineSites(events());
  assert.equal(byFile.size, 1);
  const lines = [...byFile.values()][0]!;
  assert.deepEqual(
    [...lines.keys()].sort((a, b) => a - b),
    [12, 24, 29, 34],
  );
  // The fixture has two ranks of equal work: a line shows one rank's numbers (each rank is a card
  // of its own), the rank that allocated most there, never the sum over ranks.
  const clone = lines.get(12)!;
  assert.equal(clone.target, "t1");
  assert.equal(clone.allocatedBytes, 2 * 64 * 4 * MiB);
  assert.deepEqual(clone.rank, { rank: 0, of: 2 });
  assert.deepEqual(clone.alsoIn, ["t5"]);
  // Without the caller's sites, the callee's own.
  const own = lineSites(events().filter((e) => !(e.type === "sites" && e.target === "t1")));
  const only = [...own.values()][0]!.get(12)!;
  assert.equal(only.target, "t5");
  assert.equal(only.allocatedBytes, 4 * 4 * MiB);
  assert.deepEqual(only.alsoIn, []);
  // Sums match siteTotals for the same target and rank.
  const t1 = siteTotals(
    events().filter((e) => e.type !== "sites" || e.rank === 0),
    "t1",
  );
  for (const total of t1) assert.equal(lines.get(total.line)!.allocatedBytes, total.allocatedBytes);
  // One rank alone: no rank named.
  const single = lineSites(events().filter((e) => e.type !== "sites" || e.rank === 1));
  assert.equal([...single.values()][0]!.get(12)!.rank, undefined);
});

void test("siteFate: freed, retained, or partly", () => {
  assert.equal(siteFate({ allocatedBytes: 10, liveAtExitBytes: 0 }), "freed");
  assert.equal(siteFate({ allocatedBytes: 10, liveAtExitBytes: 10 }), "retained");
  assert.equal(siteFate({ allocatedBytes: 10, liveAtExitBytes: 4 }), "partly");
});

void test("oomDetails: the fields present and well formed; malformed ones left out; none from older probes", () => {
  const oom = events().find((e): e is OomEvent => e.type === "oom")!;
  const details = oomDetails(oom);
  assert.equal(details.snapshotFile, "oom-301-2.pickle");
  assert.equal(details.requestBytes, 128 * MiB);
  assert.equal(details.allocator?.inactive_split_bytes, 180 * MiB);
  assert.deepEqual(
    details.largestBlocks.map((b) => [b.bytes, b.line, b.function]),
    [
      [128 * MiB, 34, "prepare_moe_fp4_layer_for_marlin"],
      [4 * MiB, 12, "repack"],
    ],
  );
  assert.equal(details.scopeStack.length, 2);

  const odd = oomDetails({
    ...oom,
    snapshot_file: 42,
    request_bytes: "big",
    allocator: { free_bytes: "none", total_bytes: 7 },
    largest_blocks: [null, { bytes: 1, line: "x", function: "f" }, { bytes: 2, line: 3, function: "g" }],
    scope_stack: ["a", 1, "b"],
  } as unknown as OomEvent);
  assert.equal(odd.snapshotFile, undefined);
  assert.equal(odd.requestBytes, undefined);
  assert.deepEqual(odd.allocator, { total_bytes: 7 });
  assert.deepEqual(odd.largestBlocks, [{ bytes: 2, file: "?", line: 3, function: "g" }]);
  assert.deepEqual(odd.scopeStack, ["a", "b"]);

  const { target, scope_id, stack, readings, message, v, ts, pid, rank, device, type } = oom;
  assert.deepEqual(
    oomDetails({ target, scope_id, stack, readings, message, v, ts, pid, rank, device, type }),
    {
      largestBlocks: [],
      scopeStack: [],
    },
  );
});

void test("mapEventPaths maps sites (and their roots) and OOM blocks; a path climbing out of its mapping is dropped", () => {
  const mapper = createHostPathMapper({
    sourceRoots: [],
    pathMappings: [{ remote: "/opt/venv/lib/python3.12/site-packages", local: "/home/me/src" }],
    fileExists: () => false,
    join: (...parts) => parts.join("/"),
  });
  const sites = events().find((e): e is SitesEvent => e.type === "sites" && e.target === "t1")!;
  const mapped = mapEventPaths(sites, mapper) as SitesEvent;
  assert.equal(
    mapped.sites[0]!.file,
    "/home/me/src/vllm/model_executor/layers/quantization/utils/marlin_utils_fp4.py",
  );
  const clone = mapped.sites.find((s) => s.line === 12)!;
  assert.equal(clone.root_file, "/home/me/src/vllm/_custom_ops.py");
  assert.equal((clone as { host_file?: string }).host_file, sites.sites.find((s) => s.line === 12)!.file);

  const oom = events().find((e): e is OomEvent => e.type === "oom")!;
  const evil = {
    ...oom,
    largest_blocks: [
      {
        bytes: 1,
        file: "/opt/venv/lib/python3.12/site-packages/../../../../home/me/.ssh/id_rsa",
        line: 1,
        function: "f",
      },
      { bytes: 2, file: "/opt/venv/lib/python3.12/site-packages/vllm/x.py", line: 2, function: "g" },
    ],
  } as OomEvent;
  const blocks = oomDetails(mapEventPaths(evil, mapper) as OomEvent).largestBlocks;
  assert.deepEqual(
    blocks.map((b) => b.file),
    ["/home/me/src/vllm/x.py", "?"],
  );
  // An event without sites or blocks comes back as it was.
  const plain = events().find((e) => e.type === "enter")!;
  assert.equal(
    mapEventPaths(
      plain,
      createHostPathMapper({ sourceRoots: [], pathMappings: [], fileExists: () => false }),
    ),
    plain,
  );
});
