// The known model's facts live in three places (bundled budget, shipped config, test fixture);
// a drift between them would make the budget and a real run disagree without any error.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import * as path from "node:path";
import known from "../../../src/budget/known/gpt-oss-20b.json";
import { GPT_OSS_DIR, REPO_ROOT, readGptOssInventory } from "./sparseCheckpoint";

function readJson(file: string): unknown {
  return JSON.parse(readFileSync(file, "utf8")) as unknown;
}

void test("gpt-oss-20b: the bundled budget, the shipped config and the test fixture agree", () => {
  const { config, inventory } = readGptOssInventory();
  assert.deepEqual(known.config, config);
  assert.deepEqual(known.tensors, inventory.tensors);
  assert.deepEqual(readJson(path.join(REPO_ROOT, "media/models/gpt-oss-20b/config.json")), config);
  assert.deepEqual(readJson(path.join(REPO_ROOT, "test/fixtures/budget/gpu/config.json")), config);
});

void test("the fixture lies inside the repository, so a bare clone has it", () => {
  assert.ok(!path.relative(REPO_ROOT, GPT_OSS_DIR).startsWith(".."), GPT_OSS_DIR);
});
