import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as path from "node:path";
import { DEFAULT_REMOTE_CACHE_DIR } from "../../../src/runner/remote";
import { runDescriptionSchema } from "../../../src/runner/types";
import {
  readSettings,
  resolveRunsDirectory,
  resolveSourceRoots,
  runDescriptionFromSettings,
  type SettingsReader,
} from "../../../src/settings/settings";

function settings(values: Record<string, unknown>): SettingsReader {
  return { get: <T>(key: string) => values[key] as T | undefined };
}

test("package.json's defaults give a local run of the bundled loader in the workspace folder", () => {
  const d = runDescriptionFromSettings(
    settings({
      python: "python3",
      command: [],
      model: "openai/gpt-oss-20b",
      env: {},
      cwd: "",
      host: "",
      sampleIntervalMs: 100,
      sitesCalls: 5,
      gpuMemoryUtilization: 0.98,
      emulateGpuGiB: null,
    }),
    "/ws",
  );
  assert.equal(d.python, "python3");
  assert.equal(d.command, undefined, "an empty command means the bundled loader");
  assert.equal(d.cwd, "/ws");
  assert.equal(d.host, undefined);
  assert.equal(d.model, "openai/gpt-oss-20b");
  assert.equal(d.sampleIntervalMs, 100);
  assert.equal(d.sitesCalls, 5, "a configured memlens.sitesCalls is read");
  assert.equal(runDescriptionFromSettings(settings({ sitesCalls: 0 }), "/ws").sitesCalls, 0, "0: every call");
  assert.equal(d.gpuMemoryUtilization, 0.98);
  assert.equal(d.emulateGpuGiB, null);
});

test("${workspaceFolder} and ${python} are substituted; a relative cwd is under the workspace", () => {
  const d = runDescriptionFromSettings(
    settings({
      python: "${workspaceFolder}/.venv/bin/python",
      command: ["${python}", "-m", "load", "--dir=${workspaceFolder}/models"],
      cwd: "sub dir",
      env: { DATA: "${workspaceFolder}/data" },
    }),
    "/ws",
  );
  assert.equal(d.python, "/ws/.venv/bin/python");
  assert.deepEqual(d.command, ["/ws/.venv/bin/python", "-m", "load", "--dir=/ws/models"]);
  assert.equal(d.cwd, "/ws/sub dir");
  assert.deepEqual(d.env, { DATA: "/ws/data" });
});

test("on a remote host the cwd is the host's: not joined to the local workspace, empty stays empty", () => {
  const remote = runDescriptionFromSettings(settings({ host: "gpu1", cwd: "work" }), "/ws");
  assert.equal(remote.cwd, "work");
  assert.equal(remote.host, "gpu1");
  assert.equal(runDescriptionFromSettings(settings({ host: "gpu1" }), "/ws").cwd, undefined);
});

test("${workspaceFolder} in memlens.pathMappings' local side is the workspace folder", () => {
  const d = runDescriptionFromSettings(
    settings({
      host: "gpu1",
      pathMappings: [
        { remote: "/srv/vllm", local: "${workspaceFolder}/src" },
        { remote: "/opt/site-packages", local: "/home/me/venv/lib" },
      ],
    }),
    "/ws",
  );
  assert.deepEqual(d.pathMappings, [
    { remote: "/srv/vllm", local: "/ws/src" },
    { remote: "/opt/site-packages", local: "/home/me/venv/lib" },
  ]);
});

test("a blank python setting falls back to python3 rather than running nothing", () => {
  assert.equal(runDescriptionFromSettings(settings({ python: "  " }), "/ws").python, "python3");
});

test("runs go to <workspace>/.memlens/runs unless memlens.runsDirectory says otherwise", () => {
  assert.equal(resolveRunsDirectory("", "/ws", "/storage/runs"), "/ws/.memlens/runs");
  assert.equal(resolveRunsDirectory("", undefined, "/storage/runs"), "/storage/runs");
  assert.equal(resolveRunsDirectory("/data/runs", "/ws", "/storage/runs"), "/data/runs");
  assert.equal(resolveRunsDirectory("runs", "/ws", "/storage/runs"), "/ws/runs");
  assert.equal(resolveRunsDirectory("${workspaceFolder}/out", "/ws", "/storage/runs"), "/ws/out");
});

test("every default is package.json's: nothing set reads as the declared defaults", () => {
  const manifest = JSON.parse(readFileSync(path.join(__dirname, "../../../package.json"), "utf8")) as {
    contributes: { configuration: { properties: Record<string, { default: unknown }> } };
  };
  const declared = (name: string) =>
    manifest.contributes.configuration.properties[`memlens.${name}`]!.default;
  const s = readSettings(settings({}), {
    folder: "/ws",
    folders: ["/ws", "/other"],
    storage: "/storage/runs",
  });
  assert.equal(s.description.python, declared("python"));
  assert.equal(s.description.model, declared("model"));
  assert.equal(s.description.sampleIntervalMs, declared("sampleIntervalMs"));
  assert.equal(s.description.sitesCalls, declared("sitesCalls"));
  assert.equal(s.description.sitesCalls, 2, "sites for one first call and one steady-state call");
  assert.equal(s.gpuMemoryUtilization, declared("gpuMemoryUtilization"));
  assert.equal(
    s.description.gpuMemoryUtilization,
    s.gpuMemoryUtilization,
    "the loader and the verdict use one value",
  );
  assert.equal(s.targetGpuGiB, declared("targetGpuGiB"));
  assert.equal(s.targetBytes, (declared("targetGpuGiB") as number) * 1024 ** 3);
  assert.equal(s.description.emulateGpuGiB, declared("emulateGpuGiB"));
  assert.equal(DEFAULT_REMOTE_CACHE_DIR, declared("remoteCacheDir"));
  assert.deepEqual(s.sourceRoots, ["/ws", "/other"], "no memlens.sourceRoots: every workspace folder");
  assert.equal(s.runsDirectory, "/ws/.memlens/runs");
  assert.equal(s.allocationSites, declared("allocationSites"));
  const places = { folder: "/ws", folders: ["/ws"], storage: "/s" };
  assert.equal(readSettings(settings({ allocationSites: true }), places).allocationSites, true);
});

test("memlens.sourceRoots are resolved once: ${workspaceFolder} substituted, relative ones under the workspace", () => {
  const s = readSettings(settings({ sourceRoots: ["${workspaceFolder}/vllm", "third_party", "/abs/src"] }), {
    folder: "/ws",
    folders: ["/ws"],
    storage: "/storage/runs",
  });
  assert.deepEqual(s.sourceRoots, ["/ws/vllm", "/ws/third_party", "/abs/src"]);
  assert.deepEqual(resolveSourceRoots([], "/ws", ["/a", "/b"]), ["/a", "/b"]);
});

test("every field of a run description is a setting of the same name, so launch.json and settings read alike", () => {
  const manifest = JSON.parse(readFileSync(path.join(__dirname, "../../../package.json"), "utf8")) as {
    contributes: { configuration: { properties: Record<string, unknown> } };
  };
  for (const field of Object.keys(runDescriptionSchema.shape)) {
    assert.ok(`memlens.${field}` in manifest.contributes.configuration.properties, field);
  }
});
