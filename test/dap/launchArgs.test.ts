// The launch configuration: package.json's debugger contribution mirrors the launch-argument
// type field for field, and the shipped adapter refuses bad configurations with clear errors.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { loadBundledCatalog } from "../../src/catalog/catalog";
import {
  launchArgsSchema,
  parseLaunchArgs,
  PHASE_IDS,
  STARTER_CONFIGURATION,
} from "../../src/debug/launchArgs";
import { launchArgs, REPO_ROOT, startAdapter, suiteRunsFolder } from "./support";

interface DebuggerContribution {
  type: string;
  program: string;
  runtime: string;
  languages: string[];
  configurationAttributes: {
    launch: { properties: Record<string, { type?: string | string[]; items?: { enum?: string[] } }> };
  };
  initialConfigurations: Record<string, unknown>[];
  configurationSnippets: { label: string; body: Record<string, unknown> }[];
}

/** package.json as VS Code reads it in English: each "%key%" replaced from package.nls.json. */
const nls = JSON.parse(readFileSync(path.join(REPO_ROOT, "package.nls.json"), "utf8")) as Record<
  string,
  string
>;
const manifest = JSON.parse(
  readFileSync(path.join(REPO_ROOT, "package.json"), "utf8"),
  (_key, value: unknown) =>
    typeof value === "string" && /^%[\w.]+%$/.test(value) ? (nls[value.slice(1, -1)] ?? value) : value,
) as {
  contributes: { debuggers: DebuggerContribution[]; breakpoints: { language: string }[] };
};
const contribution = manifest.contributes.debuggers.find((d) => d.type === "memlens")!;
const DAP_KEYS = new Set(["type", "request", "name"]);

/** The JSON-schema type a field of the zod schema corresponds to. */
function jsonType(field: unknown): string {
  let def = (field as { _def: { typeName: string; innerType?: unknown; type?: unknown } })._def;
  const nullable =
    def.typeName === "ZodNullable" ||
    (def.typeName === "ZodOptional" &&
      (def.innerType as { _def: { typeName: string } })._def.typeName === "ZodNullable");
  while (def.typeName === "ZodOptional" || def.typeName === "ZodNullable" || def.typeName === "ZodEffects") {
    const inner =
      (def as { innerType?: unknown; schema?: unknown }).innerType ?? (def as { schema?: unknown }).schema;
    def = (inner as { _def: typeof def })._def;
  }
  // z.number().int() is JSON schema's "integer".
  const isInt = (def as { checks?: { kind: string }[] }).checks?.some((check) => check.kind === "int");
  const base = {
    ZodString: "string",
    ZodNumber: isInt ? "integer" : "number",
    ZodArray: "array",
    ZodRecord: "object",
    ZodObject: "object",
  }[def.typeName];
  assert.ok(base, `no JSON type for ${def.typeName}`);
  return nullable ? `${base}|null` : base;
}

void test("package.json declares the memlens debugger with the shipped adapter and Python breakpoints", () => {
  assert.equal(contribution.program, "./dist/debugAdapter.js");
  assert.equal(contribution.runtime, "node");
  assert.deepEqual(contribution.languages, ["python"]);
  assert.deepEqual(manifest.contributes.breakpoints, [{ language: "python" }]);
});

void test("configurationAttributes.launch mirrors the launch-argument type field for field", () => {
  const properties = contribution.configurationAttributes.launch.properties;
  assert.deepEqual(Object.keys(properties).sort(), Object.keys(launchArgsSchema.shape).sort());
  for (const [key, field] of Object.entries(launchArgsSchema.shape)) {
    const declared = properties[key]!.type;
    const declaredText = Array.isArray(declared) ? declared.join("|") : declared;
    assert.equal(declaredText, jsonType(field), `type of ${key}`);
  }
  assert.deepEqual(properties.stopAtPhases!.items!.enum, [...PHASE_IDS]);
  assert.deepEqual(
    [...PHASE_IDS].sort(),
    loadBundledCatalog()
      .phases.map((p) => p.id)
      .sort(),
    "the phases a configuration may name are the catalog's",
  );
});

void test("the starter configuration and every snippet are valid launch arguments", () => {
  assert.deepEqual(contribution.initialConfigurations, [STARTER_CONFIGURATION]);
  for (const config of [
    ...contribution.initialConfigurations,
    ...contribution.configurationSnippets.map((s) => s.body),
  ]) {
    const fields = Object.fromEntries(Object.entries(config).filter(([k]) => !DAP_KEYS.has(k)));
    assert.doesNotThrow(() => parseLaunchArgs(fields), JSON.stringify(config));
  }
});

void test("parseLaunchArgs names every bad field and what it should be", () => {
  assert.throws(
    () => parseLaunchArgs({ stopAtPhases: ["weights"], probes: ["not a spec"], gpuMemoryUtilization: 2 }),
    (error: Error) => {
      assert.match(error.message, /stopAtPhases\.0: Invalid enum value.*'load_weights'/);
      assert.match(error.message, /probes\.0: "not a spec" is neither module:qualname/);
      assert.match(error.message, /gpuMemoryUtilization: Number must be less than or equal to 1/);
      return true;
    },
  );
});

const runs = suiteRunsFolder("launch");

void test("the adapter refuses a bad configuration with a message for the user", async () => {
  const session = await startAdapter();
  try {
    await assert.rejects(
      session.client.launchRequest({
        ...launchArgs("run_steps.py", runs.dir),
        stopAtPhases: ["weights"],
      } as never),
      /The memlens launch configuration is not valid\. stopAtPhases\.0/,
    );
  } finally {
    await session.client.stop();
  }
});

void test("a Python that cannot be started fails the launch with what to do", async () => {
  const session = await startAdapter();
  try {
    const launched = session.client.launchRequest(
      launchArgs("run_steps.py", runs.dir, { python: "/nonexistent/python3" }) as never,
    );
    await session.events.next("initialized");
    await session.client.configurationDoneRequest();
    await assert.rejects(
      launched,
      /MemLens could not start the target: .*\/nonexistent\/python3.*memlens\.python/s,
    );
  } finally {
    await session.client.stop();
  }
});
