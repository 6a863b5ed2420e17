// The drawing of the house (docs/architecture.md) against the code: every import of src/ and
// webview/ between rooms is one the drawing allows, the allowed imports make no cycle, the views
// are downhill of the model, and the model reaches no view, runner or vscode, not even through
// the files it imports.
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import * as path from "node:path";
import { test } from "node:test";
import ts from "typescript";

const REPO = path.resolve(__dirname, "../..");
const DRAWING = path.join(REPO, "docs/architecture.md");
/** Not rooms of the code, but what some rooms may import. */
const OUTSIDE = new Set(["vscode", "package.json"]);
const VIEWS = ["server", "panel", "views", "debug", "cli"];

/** The drawing's table: room -> the rooms it may import ("every room" for the wiring). */
function drawing(): Map<string, Set<string> | "every"> {
  const rooms = new Map<string, Set<string> | "every">();
  for (const line of readFileSync(DRAWING, "utf8").split("\n")) {
    const cells = line.split("|").map((c) => c.trim());
    const room = /^`(src\/[\w.]+|webview)`$/.exec(cells[1] ?? "")?.[1];
    if (!room) continue;
    const allowed = cells[3] ?? "";
    rooms.set(
      roomName(room),
      allowed === "every room" ? "every" : new Set([...allowed.matchAll(/`([\w.]+)`/g)].map((m) => m[1]!)),
    );
  }
  return rooms;
}

/** "src/model" and "src/model/plan.ts" -> "model"; "webview/x.ts" -> "webview"; "src/extension.ts" stays. */
function roomName(file: string): string {
  const parts = file.split("/");
  if (parts[0] === "webview") return "webview";
  return parts.length === 2 && parts[1]!.endsWith(".ts") ? parts[1]! : parts[1]!;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(path.join(REPO, dir), { withFileTypes: true }).flatMap((entry) => {
    const rel = `${dir}/${entry.name}`;
    if (entry.isDirectory()) return sourceFiles(rel);
    return entry.name.endsWith(".ts") ? [rel] : [];
  });
}

interface Import {
  from: string;
  /** Repo-relative file (no extension for TypeScript) or a package name. */
  to: string;
}

function importsOf(file: string): Import[] {
  const info = ts.preProcessFile(readFileSync(path.join(REPO, file), "utf8"), true, true);
  return info.importedFiles.map(({ fileName }) => ({
    from: file,
    to: fileName.startsWith(".")
      ? path
          .relative(REPO, path.resolve(REPO, path.dirname(file), fileName))
          .split(path.sep)
          .join("/")
      : fileName,
  }));
}

/** The room an import lands in, or undefined for a package other than vscode. */
function roomOf(target: string): string | undefined {
  if (target === "package.json" || target === "vscode") return target;
  if (target.startsWith("src/") || target.startsWith("webview/")) return roomName(target);
  return undefined;
}

const files = [...sourceFiles("src"), ...sourceFiles("webview")];
const imports = files.flatMap(importsOf);

void test("every file of src/ and webview/ is in a room of the drawing", () => {
  const rooms = drawing();
  for (const file of files)
    assert.ok(rooms.has(roomName(file)), `${file} is in no room of docs/architecture.md`);
});

void test("every import between rooms is one the drawing allows", () => {
  const rooms = drawing();
  const wrong: string[] = [];
  for (const { from, to } of imports) {
    const source = roomName(from);
    const target = roomOf(to);
    if (target === undefined || target === source) continue;
    const allowed = rooms.get(source);
    if (allowed !== "every" && !allowed?.has(target))
      wrong.push(`${from} imports ${to} (${source} -> ${target})`);
  }
  assert.deepEqual(wrong, []);
});

void test("the drawing's imports make no cycle between rooms", () => {
  const rooms = drawing();
  const state = new Map<string, "visiting" | "done">();
  const visit = (room: string, trail: string[]): void => {
    if (state.get(room) === "done" || OUTSIDE.has(room)) return;
    assert.notEqual(state.get(room), "visiting", `cycle: ${[...trail, room].join(" -> ")}`);
    state.set(room, "visiting");
    const allowed = rooms.get(room);
    for (const next of allowed === "every" ? [] : (allowed ?? [])) visit(next, [...trail, room]);
    state.set(room, "done");
  };
  for (const room of rooms.keys()) visit(room, []);
});

void test("the views are downhill of the model; the model imports no view, runner, host or vscode", () => {
  const rooms = drawing();
  for (const view of VIEWS) {
    const allowed = rooms.get(view);
    assert.ok(allowed === "every" || allowed?.has("model"), `${view} may import model`);
  }
  const model = rooms.get("model");
  assert.ok(model !== "every" && model !== undefined);
  for (const forbidden of [...VIEWS, "runner", "host", "commands", "vscode"]) {
    assert.equal(model.has(forbidden), false, `model may not import ${forbidden}`);
  }
});

void test("no file the model reaches, directly or not, imports vscode or a view, the runner or the host", () => {
  const byFile = new Map<string, Import[]>();
  for (const imp of imports) byFile.set(imp.from, [...(byFile.get(imp.from) ?? []), imp]);
  const forbidden = new Set(["vscode", ...VIEWS, "runner", "host", "commands"]);
  const seen = new Set<string>();
  const pending = files.filter((f) => roomName(f) === "model");
  while (pending.length > 0) {
    const file = pending.pop()!;
    if (seen.has(file)) continue;
    seen.add(file);
    for (const { to } of byFile.get(file) ?? []) {
      const room = roomOf(to);
      assert.ok(room === undefined || !forbidden.has(room), `${file} (reached from src/model) imports ${to}`);
      if (room !== undefined && !OUTSIDE.has(room) && !to.endsWith(".json")) pending.push(`${to}.ts`);
    }
  }
  assert.ok(seen.size > 5, "the model's files were found");
});
