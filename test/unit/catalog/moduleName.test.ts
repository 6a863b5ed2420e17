import assert from "node:assert/strict";
import * as path from "node:path";
import { describe, test } from "node:test";
import {
  moduleNameFromPackages,
  moduleNameFromRelativePath,
  moduleNameFromSourceRoots,
  moduleNameInInstallDir,
  resolveModuleName,
  resolveModuleNameOnDisk,
} from "../../../src/catalog/moduleName";

const FIXTURES = path.resolve(__dirname, "../../fixtures/python");

void describe("pure rules", () => {
  void test("relative paths", () => {
    assert.equal(moduleNameFromRelativePath("vllm/x/y.py"), "vllm.x.y");
    assert.equal(moduleNameFromRelativePath("vllm/x/__init__.py"), "vllm.x");
    assert.equal(moduleNameFromRelativePath("./script.py"), "script");
    assert.equal(moduleNameFromRelativePath("stubs/mod.pyi"), "stubs.mod");
    assert.equal(moduleNameFromRelativePath("vllm\\x\\y.py"), "vllm.x.y");
    assert.equal(moduleNameFromRelativePath("README.md"), undefined);
    assert.equal(moduleNameFromRelativePath("../outside.py"), undefined);
    assert.equal(moduleNameFromRelativePath("__init__.py"), undefined);
  });

  void test("site-packages and dist-packages", () => {
    assert.equal(
      moduleNameInInstallDir("/opt/venv/lib/python3.12/site-packages/vllm/v1/worker/gpu_worker.py"),
      "vllm.v1.worker.gpu_worker",
    );
    assert.equal(moduleNameInInstallDir("/usr/lib/python3/dist-packages/torch/__init__.py"), "torch");
    assert.equal(moduleNameInInstallDir("C:\\Python312\\Lib\\site-packages\\vllm\\x.py"), "vllm.x");
    // A venv inside a project inside site-packages: the innermost wins.
    assert.equal(moduleNameInInstallDir("/a/site-packages/b/site-packages/c/d.py"), "c.d");
    assert.equal(moduleNameInInstallDir("/home/me/vllm/x.py"), undefined);
  });

  void test("source roots: the deepest one that holds the file", () => {
    const roots = ["/work", "/work/src", "/elsewhere"];
    assert.equal(moduleNameFromSourceRoots("/work/src/pkg/mod.py", roots), "pkg.mod");
    assert.equal(moduleNameFromSourceRoots("/work/tools/run.py", roots), "tools.run");
    assert.equal(moduleNameFromSourceRoots("/workspace/x.py", roots), undefined, "a prefix is not a parent");
    assert.equal(moduleNameFromSourceRoots("/work/src/pkg/mod.py", ["/work/src/"]), "pkg.mod");
  });

  void test("packages: walk up while __init__.py exists", () => {
    const files = new Set(["/repo/vllm/__init__.py", "/repo/vllm/v1/__init__.py"]);
    const isFile = (p: string) => files.has(p);
    assert.equal(moduleNameFromPackages("/repo/vllm/v1/engine.py", isFile), "vllm.v1.engine");
    assert.equal(moduleNameFromPackages("/repo/vllm/v1/__init__.py", isFile), "vllm.v1");
    assert.equal(moduleNameFromPackages("/repo/scripts/tool.py", isFile), undefined);
  });

  void test("resolveModuleName: install dir, then packages, then roots, then the file name", () => {
    const files = new Set(["/repo/checkout/vllm/__init__.py"]);
    const options = { sourceRoots: ["/repo"], isFile: (p: string) => files.has(p) };
    // The package walk wins over a workspace root above the checkout.
    assert.equal(resolveModuleName("/repo/checkout/vllm/config.py", options), "vllm.config");
    assert.equal(resolveModuleName("/repo/notebooks/try.py", options), "notebooks.try");
    assert.equal(resolveModuleName("/tmp/scratch.py", options), "scratch");
    assert.equal(resolveModuleName("/x/site-packages/vllm/config.py", options), "vllm.config");
  });
});

void test("on disk: the fixture tree is a package tree", () => {
  assert.equal(
    resolveModuleNameOnDisk(
      path.join(FIXTURES, "vllm/model_executor/layers/quantization/utils/marlin_utils_fp4.py"),
      [],
    ),
    "vllm.model_executor.layers.quantization.utils.marlin_utils_fp4",
  );
  assert.equal(resolveModuleNameOnDisk(path.join(FIXTURES, "vllm/__init__.py"), []), "vllm");
  assert.equal(resolveModuleNameOnDisk(path.join(FIXTURES, "defs/nesting.py"), [FIXTURES]), "defs.nesting");
});
