import assert from "node:assert/strict";
import * as path from "node:path";
import { test } from "node:test";
import type { EnterEvent, PausedEvent, ProbeEvent, TargetResolvedEvent } from "../../../src/protocol/events";
import {
  createHostPathMapper,
  hostPathOf,
  mapEventPaths,
  mapHostPath,
  moduleRelativeParts,
  planForHost,
  type PathMapContext,
} from "../../../src/runner/pathMap";

// A local workspace described as a set of files; mapHostPath sees nothing else.
const LOCAL_FILES = new Set([
  "/home/me/vllm/vllm/__init__.py",
  "/home/me/vllm/vllm/model_executor/__init__.py",
  "/home/me/vllm/vllm/model_executor/layers/__init__.py",
  "/home/me/vllm/vllm/model_executor/layers/utils.py",
  "/home/me/vllm/vllm/model_executor/layers/quantization/__init__.py",
  "/home/me/vllm/vllm/model_executor/layers/quantization/mxfp4.py",
  "/home/me/proj/train.py",
  "/home/me/other/pkg/__init__.py",
  "/home/me/other/pkg/mod.py",
]);

function context(extra: Partial<PathMapContext> = {}): PathMapContext {
  return {
    sourceRoots: ["/home/me/vllm", "/home/me/other"],
    pathMappings: [],
    fileExists: (file) => LOCAL_FILES.has(file),
    join: (...parts) => path.posix.join(...parts),
    ...extra,
  };
}

void test("site-packages paths map by module name onto a local checkout", () => {
  const host = "/opt/venv/lib/python3.12/site-packages/vllm/model_executor/layers/quantization/mxfp4.py";
  assert.equal(
    mapHostPath(host, context()),
    "/home/me/vllm/vllm/model_executor/layers/quantization/mxfp4.py",
  );
  assert.equal(
    mapHostPath("/usr/lib/python3/dist-packages/vllm/__init__.py", context()),
    "/home/me/vllm/vllm/__init__.py",
    "dist-packages and package __init__ files too",
  );
});

void test("an explicit module name wins over the path's layout", () => {
  assert.equal(
    mapHostPath("/somewhere/odd/utils.py", context(), "vllm.model_executor.layers.utils"),
    "/home/me/vllm/vllm/model_executor/layers/utils.py",
  );
  assert.equal(mapHostPath("/x/pkg/__init__.py", context(), "pkg"), "/home/me/other/pkg/__init__.py");
  assert.deepEqual(
    moduleRelativeParts("/a/b.py", "__main__"),
    undefined,
    "__main__ says nothing about the layout",
  );
});

void test("configured prefixes map what module names cannot (longest prefix wins)", () => {
  const mapped = context({
    pathMappings: [
      { remote: "/srv/work", local: "/home/me/elsewhere" },
      { remote: "/srv/work/proj/", local: "/home/me/proj" },
    ],
  });
  assert.equal(mapHostPath("/srv/work/proj/train.py", mapped), "/home/me/proj/train.py");
  assert.equal(mapHostPath("/srv/work/a/b.py", mapped), "/home/me/elsewhere/a/b.py");
  assert.equal(
    mapHostPath("/srv/workshop/x.py", mapped),
    "/srv/workshop/x.py",
    "prefixes match whole folders only",
  );
});

void test("a remote checkout maps by the longest package tail under a source root", () => {
  assert.equal(
    mapHostPath("/data/users/bob/src/vllm/vllm/model_executor/layers/utils.py", context()),
    "/home/me/vllm/vllm/model_executor/layers/utils.py",
  );
  assert.equal(mapHostPath("/data/pkg/mod.py", context()), "/home/me/other/pkg/mod.py");
});

void test("anything else stays unchanged, including files missing locally", () => {
  assert.equal(
    mapHostPath("/opt/venv/lib/python3.12/site-packages/torch/nn/modules/module.py", context()),
    "/opt/venv/lib/python3.12/site-packages/torch/nn/modules/module.py",
  );
  assert.equal(
    mapHostPath("/tmp/train.py", context()),
    "/tmp/train.py",
    "a bare file name is not enough to match",
  );
  assert.equal(mapHostPath("", context()), "");
});

void test("Windows-style local joins are the caller's choice", () => {
  const windows = context({
    sourceRoots: ["C:\\src\\vllm"],
    fileExists: (file) => file === "C:\\src\\vllm\\vllm\\__init__.py",
    join: (...parts) => path.win32.join(...parts),
  });
  assert.equal(
    mapHostPath("/opt/site-packages/vllm/__init__.py", windows),
    "C:\\src\\vllm\\vllm\\__init__.py",
  );
});

void test("events: file fields are mapped and the host path kept; a module learnt once maps later events", () => {
  const mapper = createHostPathMapper(context());
  const common = { v: 1, ts: 1, pid: 7, rank: null, device: null } as const;
  const resolved: TargetResolvedEvent = {
    ...common,
    type: "target_resolved",
    target: "t1",
    kind: "function",
    spec: "vllm.model_executor.layers.utils:f",
    module: "vllm.model_executor.layers.utils",
    file: "/weird/place/utils.py",
    line: 3,
  };
  const mappedResolved = mapEventPaths(resolved, mapper) as TargetResolvedEvent & { host_file?: string };
  assert.equal(mappedResolved.file, "/home/me/vllm/vllm/model_executor/layers/utils.py");
  assert.equal(mappedResolved.host_file, "/weird/place/utils.py");
  assert.equal(resolved.file, "/weird/place/utils.py", "the input event is not changed");

  const enter: EnterEvent = {
    ...common,
    type: "enter",
    target: "t1",
    scope_id: "7:1",
    parent: null,
    call: 1,
    depth: 0,
    before: {},
    file: "/weird/place/utils.py",
    line: 3,
  };
  assert.equal(
    (mapEventPaths(enter, mapper) as EnterEvent).file,
    "/home/me/vllm/vllm/model_executor/layers/utils.py",
  );

  const paused: PausedEvent = {
    ...common,
    type: "paused",
    target: "t1",
    scope_id: "7:1",
    at: "entry",
    reason: "pause_target",
    stack: [{ target: "t1", scope_id: "7:1", call: 1, file: "/weird/place/utils.py", line: 3 }],
    readings: {},
  };
  const mappedPaused = mapEventPaths(paused, mapper) as PausedEvent;
  assert.equal(mappedPaused.stack[0]?.file, "/home/me/vllm/vllm/model_executor/layers/utils.py");
  const unmappable: EnterEvent = { ...enter, file: "/nowhere/x.py" };
  assert.equal(
    mapEventPaths(unmappable, mapper),
    unmappable,
    "unchanged events are passed through as they are",
  );
});

void test("hostPathOf maps a local file to the host's copy by the longest local prefix", () => {
  const mappings = [
    { remote: "/srv/work", local: "/home/me/proj" },
    { remote: "/srv/vllm/", local: "/home/me/proj/vendor/vllm/" },
  ];
  assert.equal(hostPathOf("/home/me/proj/train.py", mappings), "/srv/work/train.py");
  assert.equal(hostPathOf("/home/me/proj/vendor/vllm/vllm/x.py", mappings), "/srv/vllm/vllm/x.py");
  assert.equal(hostPathOf("/home/me/proj", mappings), "/srv/work");
  assert.equal(hostPathOf("/home/me/projects/a.py", mappings), undefined, "a prefix ends at a separator");
  assert.equal(hostPathOf("/elsewhere/a.py", mappings), undefined);
  assert.equal(
    hostPathOf("C:\\Users\\me\\proj\\pkg\\mod.py", [{ remote: "/srv/work", local: "C:\\Users\\me\\proj" }]),
    "/srv/work/pkg/mod.py",
    "a Windows editor's path becomes a POSIX host path",
  );
  assert.equal(hostPathOf("/home/me/a.py", [{ remote: "/", local: "/home/me" }]), "/a.py");
});

void test("planForHost rewrites line targets covered by a mapping and leaves the rest alone", () => {
  const plan = {
    version: 1 as const,
    targets: [
      { id: "t1", function: "vllm.x:f" },
      { id: "t2", line: "/home/me/proj/train.py:17" },
      { id: "t3", line: "/elsewhere/a.py:3" },
    ],
    sample_interval_ms: 20,
  };
  const mappings = [{ remote: "/srv/work", local: "/home/me/proj" }];
  assert.deepEqual(planForHost(plan, mappings), {
    ...plan,
    targets: [
      { id: "t1", function: "vllm.x:f" },
      { id: "t2", line: "/srv/work/train.py:17" },
      { id: "t3", line: "/elsewhere/a.py:3" },
    ],
  });
  assert.equal(planForHost(plan, []), plan, "no mappings: the plan as it is");
  assert.equal(plan.targets[1]?.line, "/home/me/proj/train.py:17", "the caller's plan is not changed");
});

void test("'..' cannot take a host path out of its mapping: such a path is refused, not opened", () => {
  const mapped = context({ pathMappings: [{ remote: "/srv/vllm", local: "/home/me/vllm" }] });
  assert.equal(mapHostPath("/srv/vllm/../../../root/.ssh/id_ed25519.py", mapped), undefined);
  assert.equal(mapHostPath("/srv/vllm/..", mapped), undefined);
  assert.equal(mapHostPath("/srv/vllm\\..\\..\\etc\\passwd.py", mapped), undefined, "'\\' separates too");
  assert.equal(mapHostPath("../../etc/passwd.py", context()), undefined, "a relative path that climbs out");
  // Inside the mapping after normalisation is fine, and lands inside the local folder.
  assert.equal(mapHostPath("/srv/vllm/a/./b/../c.py", mapped), "/home/me/vllm/a/c.py");
  assert.equal(mapHostPath("/x/../srv/vllm/c.py", mapped), "/home/me/vllm/c.py");
  // Nor by the package tail or the site-packages layout under a source root.
  assert.equal(
    mapHostPath("/data/vllm/../../../../home/me/.ssh/id_rsa.py", context()),
    "/home/me/.ssh/id_rsa.py",
    "normalised first: the tail is no longer under vllm, so the path is only the host's own",
  );
  const escapes = (file: string) => !file.startsWith("/home/me/vllm/") && !file.startsWith("/home/me/other/");
  const seen: string[] = [];
  const spying = context({ fileExists: (file) => (seen.push(file), LOCAL_FILES.has(file)) });
  mapHostPath("/opt/site-packages/vllm/../../../../../etc/shadow.py", spying);
  mapHostPath("/opt/x/vllm/model_executor/../../../../../../etc/shadow.py", spying);
  assert.deepEqual(seen.filter(escapes), [], "no file outside the source roots is even looked at");
});

void test("a refused path leaves the event without a file to open; the host's path is kept", () => {
  const mapper = createHostPathMapper(
    context({ pathMappings: [{ remote: "/srv/vllm", local: "/home/me/vllm" }] }),
  );
  const enter: EnterEvent = {
    v: 1,
    ts: 1,
    pid: 7,
    rank: null,
    device: null,
    type: "enter",
    target: "t1",
    scope_id: "7:1",
    parent: null,
    call: 1,
    depth: 0,
    before: {},
    file: "/srv/vllm/../../../root/.ssh/id_ed25519.py",
    line: 3,
  };
  const mapped = mapEventPaths(enter, mapper) as EnterEvent & { host_file?: string };
  assert.equal(mapped.file, undefined);
  assert.equal("file" in mapped, false);
  assert.equal(mapped.host_file, enter.file);
  const paused: PausedEvent = {
    ...enter,
    type: "paused",
    at: "entry",
    reason: "step",
    stack: [{ target: "t1", scope_id: "7:1", call: 1, file: enter.file, line: 3 }],
    readings: {},
  };
  assert.equal((mapEventPaths(paused, mapper) as PausedEvent).stack[0]?.file, undefined);
});

void test("malformed events never make mapping throw (an oom without stack, a frame that is not an object)", () => {
  const mapper = createHostPathMapper(context());
  const oom = { v: 1, ts: 1, pid: 7, rank: null, device: null, type: "oom", target: "t", scope_id: "7:1" };
  assert.doesNotThrow(() => mapEventPaths(oom as unknown as ProbeEvent, mapper));
  const odd = { ...oom, stack: [null, 3, { file: 5 }] };
  assert.doesNotThrow(() => mapEventPaths(odd as unknown as ProbeEvent, mapper));
  const enter = { ...oom, type: "enter", file: 12 };
  assert.equal(mapEventPaths(enter as unknown as ProbeEvent, mapper), enter);
});

void test("planForHost gives the host's paths of the source roots, keeping those no mapping covers", () => {
  const plan = { version: 1 as const, targets: [], source_roots: ["/home/me/vllm", "/opt/other"] };
  const mapped = planForHost(plan, [{ remote: "/srv/vllm", local: "/home/me/vllm" }]);
  assert.deepEqual(mapped.source_roots, ["/srv/vllm", "/opt/other"]);
});
