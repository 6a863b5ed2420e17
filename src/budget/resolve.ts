// Finds the checkpoint behind memlens.model (or the CLI's MODEL): a local folder, the local Hugging
// Face cache, a folder on the GPU host (through the runner's ssh/wrapper place), or a bundled
// inventory. The panel, the checklist and the CLI all resolve a model here.
import { existsSync, readdirSync, statSync } from "node:fs";
import { homedir } from "node:os";
import * as path from "node:path";
import type { ExecutionPlace } from "../runner/place";
import { knownModelBudget, knownModelNames, loadModelBudget, type ModelBudget } from "./modelBudget";
import { RemoteByteSource } from "./remoteSource";
import { LocalByteSource } from "./safetensors";

export interface ResolveOptions {
  /** What the spec is called in messages: "memlens.model" (the default) or the CLI's "model". */
  name?: string;
  /** Relative paths resolve against it. */
  workspaceFolder?: string;
  /** Where runs go; a remote place makes absolute model paths remote ones. */
  place?: ExecutionPlace;
  python: string;
  env?: NodeJS.ProcessEnv;
  /** Why no process may run (an untrusted workspace): a host path is then not read, and why says so. */
  processesRefused?: string;
}

function isDir(p: string): boolean {
  try {
    return statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/** `org/name` in the local Hugging Face cache: the newest snapshot that has config.json. */
export function huggingFaceSnapshot(name: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (!/^[\w.-]+\/[\w.-]+$/.test(name)) return undefined;
  const hubRoots = [
    env.HF_HUB_CACHE,
    env.HF_HOME ? path.join(env.HF_HOME, "hub") : undefined,
    path.join(homedir(), ".cache", "huggingface", "hub"),
  ].filter((p): p is string => !!p);
  for (const hub of hubRoots) {
    const snapshots = path.join(hub, `models--${name.replace("/", "--")}`, "snapshots");
    if (!isDir(snapshots)) continue;
    const found = readdirSync(snapshots)
      .map((rev) => path.join(snapshots, rev))
      .filter((dir) => existsSync(path.join(dir, "config.json")))
      .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs)[0];
    if (found) return found;
  }
  return undefined;
}

/** The budget of memlens.model, or undefined with why. Errors of a found checkpoint are thrown. */
export async function resolveModelBudget(
  spec: string,
  options: ResolveOptions,
): Promise<{ budget?: ModelBudget; why?: string }> {
  const name = options.name ?? "memlens.model";
  const trimmed = spec.trim();
  if (!trimmed) return { why: `${name} is empty.` };
  const remote = options.place && options.place.host !== null;
  if (!remote) {
    const local = path.isAbsolute(trimmed)
      ? trimmed
      : options.workspaceFolder
        ? path.join(options.workspaceFolder, trimmed)
        : trimmed;
    if (isDir(local)) return { budget: await loadModelBudget(new LocalByteSource(), local) };
    if (existsSync(local)) return { why: `${local} is a file; give the model folder (with config.json).` };
  }
  if (remote && (trimmed.startsWith("/") || trimmed.startsWith("~"))) {
    // Reading on the host runs ssh (and the wrapper) with the workspace's arguments.
    if (options.processesRefused !== undefined)
      return { why: `${trimmed} is on the host and was not read: ${options.processesRefused}` };
    return { budget: await loadModelBudget(new RemoteByteSource(options.place!, options.python), trimmed) };
  }
  const cached = huggingFaceSnapshot(trimmed, options.env);
  if (cached) return { budget: await loadModelBudget(new LocalByteSource(), cached) };
  const known = knownModelBudget(trimmed);
  if (known) return { budget: known };
  return {
    why:
      `${name} "${trimmed}" is neither a folder${remote ? " path on the host" : " here"} nor in the local Hugging Face cache ` +
      `nor a model MemLens knows (${knownModelNames().join(", ")}). Give the folder that holds config.json and the .safetensors files.`,
  };
}
