// Maps source paths as a GPU host (or container) saw them onto files of the local workspace, so that
// lenses and hovers land on the right local lines. mapHostPath is pure: the file system is reached
// only through the fileExists it is given.
import * as path from "node:path";
import type { PathMapping } from "./types";
import type { Plan, ProbeEvent, StackFrame } from "../protocol/events";

export interface PathMapContext {
  /** Local folders whose layout gives module names (a checkout root: ROOT/vllm/x.py is vllm.x). */
  sourceRoots: readonly string[];
  /** Host path prefix -> local folder, for trees not found by module name. */
  pathMappings: readonly PathMapping[];
  fileExists: (localPath: string) => boolean;
  /** Joins local path parts; node's path.join by default (the local OS's separators). */
  join?: (this: void, ...parts: string[]) => string;
}

const PACKAGE_DIRS = new Set(["site-packages", "dist-packages"]);

function hostParts(hostPath: string): string[] {
  return hostPath.split(/[\\/]+/).filter((part) => part !== "" && part !== ".");
}

/**
 * The module-relative path of a host file (["vllm", "x.py"] for vllm.x), from the module name
 * when known, else from the part after the last site-packages/dist-packages folder.
 */
export function moduleRelativeParts(hostPath: string, moduleName?: string): string[] | undefined {
  const parts = hostParts(hostPath);
  const basename = parts[parts.length - 1];
  if (basename === undefined || !/\.pyw?$/.test(basename)) return undefined;
  if (moduleName && moduleName !== "__main__" && /^[\w.]+$/.test(moduleName)) {
    const names = moduleName.split(".");
    if (basename === "__init__.py") return [...names, "__init__.py"];
    const last = names.pop();
    return [...names, `${last}${path.posix.extname(basename)}`];
  }
  for (let index = parts.length - 2; index >= 0; index--) {
    if (PACKAGE_DIRS.has(parts[index]!)) {
      const rest = parts.slice(index + 1);
      return rest.length > 0 ? rest : undefined;
    }
  }
  return undefined;
}

function matchesPrefix(hostPath: string, prefix: string): string | undefined {
  const trimmed = prefix.replace(/[\\/]+$/, "");
  if (trimmed === "") return undefined;
  if (hostPath === trimmed) return "";
  if (
    hostPath.startsWith(trimmed) &&
    (hostPath[trimmed.length] === "/" || hostPath[trimmed.length] === "\\")
  ) {
    return hostPath.slice(trimmed.length + 1);
  }
  return undefined;
}

/**
 * A host path with "." and ".." resolved the way the host's kernel does (hosts are POSIX; "\\" is
 * a separator here as in hostParts): "/srv/vllm/../../root/x.py" is "/root/x.py". A path with
 * neither comes back unchanged; a relative one that climbs above its start gives undefined.
 */
export function normalizeHostPath(hostPath: string): string | undefined {
  const raw = hostPath.split(/[\\/]+/);
  if (!raw.some((part) => part === "." || part === "..")) return hostPath;
  const absolute = /^[\\/]/.test(hostPath);
  const parts: string[] = [];
  for (const part of raw) {
    if (part === "" || part === ".") continue;
    if (part !== "..") parts.push(part);
    else if (parts.length > 0) parts.pop();
    else if (!absolute) return undefined;
  }
  return `${absolute ? "/" : ""}${parts.join("/")}`;
}

/**
 * The local file for a host path: (1) by module name under a source root, (2) by the longest
 * configured prefix, (3) by the longest tail of the path that is a package (has __init__.py) under a
 * source root, else (4) the path unchanged (normalised). Undefined, refused, for a path that ".."
 * takes out of the mapping it is written under, or out of its start: an event must not make the
 * editor open a local file outside the trees the user mapped (~/.ssh by way of /srv/vllm/../..).
 */
export function mapHostPath(
  hostPath: string,
  context: PathMapContext,
  moduleName?: string,
): string | undefined {
  const join = context.join ?? ((...parts: string[]) => path.join(...parts));
  const normal = normalizeHostPath(hostPath);
  if (normal === undefined) return undefined;
  const remotes = context.pathMappings.map((mapping) => normalizeHostPath(mapping.remote) ?? mapping.remote);
  if (normal !== hostPath) {
    for (const remote of remotes) {
      if (matchesPrefix(hostPath, remote) !== undefined && matchesPrefix(normal, remote) === undefined) {
        return undefined;
      }
    }
  }

  const moduleParts = moduleRelativeParts(normal, moduleName);
  if (moduleParts) {
    for (const root of context.sourceRoots) {
      const candidate = join(root, ...moduleParts);
      if (context.fileExists(candidate)) return candidate;
    }
  }

  let best: { rest: string; local: string; length: number } | undefined;
  context.pathMappings.forEach((mapping, index) => {
    const remote = remotes[index]!;
    const rest = matchesPrefix(normal, remote);
    if (rest !== undefined && (!best || remote.length > best.length)) {
      best = { rest, local: mapping.local, length: remote.length };
    }
  });
  if (best) return best.rest === "" ? best.local : join(best.local, ...hostParts(best.rest));

  const parts = hostParts(normal);
  for (let start = 0; start <= parts.length - 2; start++) {
    const tail = parts.slice(start);
    for (const root of context.sourceRoots) {
      if (!context.fileExists(join(root, tail[0]!, "__init__.py"))) continue;
      const candidate = join(root, ...tail);
      if (context.fileExists(candidate)) return candidate;
    }
  }
  return normal;
}

/**
 * The other direction, for what goes to the host: the host's path of a local file by the longest
 * memlens.pathMappings local prefix, undefined when none covers it. Hosts are POSIX (the runner
 * needs sh there), so the parts are joined with "/".
 */
export function hostPathOf(localPath: string, pathMappings: readonly PathMapping[]): string | undefined {
  let best: { rest: string; remote: string; length: number } | undefined;
  for (const mapping of pathMappings) {
    const rest = matchesPrefix(localPath, mapping.local);
    if (rest !== undefined && (!best || mapping.local.length > best.length)) {
      best = { rest, remote: mapping.remote, length: mapping.local.length };
    }
  }
  if (!best) return undefined;
  const remote = best.remote.replace(/[\\/]+$/, "");
  const parts = hostParts(best.rest);
  if (parts.length === 0) return remote === "" ? "/" : remote;
  return `${remote}/${parts.join("/")}`;
}

/**
 * The plan as the host must see it: line targets name files by path, and the editor's path is the
 * local one, so each becomes the host's copy where a path mapping covers it (else it is kept: the
 * host may share the local layout). Function targets are module names and need nothing.
 */
export function planForHost(plan: Plan, pathMappings: readonly PathMapping[]): Plan {
  if (pathMappings.length === 0) return plan;
  return {
    ...plan,
    targets: plan.targets.map((target) => {
      if (!("line" in target)) return target;
      const match = /^(.*):(\d+)$/.exec(target.line);
      const hostFile = match ? hostPathOf(match[1]!, pathMappings) : undefined;
      return hostFile === undefined ? target : { ...target, line: `${hostFile}:${match![2]}` };
    }),
    // The host's own paths of the source roots (a root no mapping covers is kept: it matches nothing there).
    ...(plan.source_roots
      ? { source_roots: plan.source_roots.map((root) => hostPathOf(root, pathMappings) ?? root) }
      : {}),
  };
}

/** The local path of a host path; undefined where mapHostPath refuses it. */
export type HostPathMapper = (hostPath: string, moduleName?: string) => string | undefined;

/** A memoizing mapper: a file mapped once by module name maps the same way in later events. */
export function createHostPathMapper(context: PathMapContext): HostPathMapper {
  const known = new Map<string, string | undefined>();
  return (hostPath, moduleName) => {
    if (known.has(hostPath)) return known.get(hostPath);
    const mapped = mapHostPath(hostPath, context, moduleName);
    // Without a module name a miss may still be found later by one; remember only sure answers.
    if (mapped !== hostPath || moduleName !== undefined) known.set(hostPath, mapped);
    return mapped;
  };
}

/**
 * An event with its file paths mapped; the host's path stays in `host_file` where it changed, and
 * a refused path leaves the event without `file` (nothing local to open). Never throws: the events
 * come from the host, and one that is odd must not stop the ones after it.
 */
export function mapEventPaths(event: ProbeEvent, mapper: HostPathMapper): ProbeEvent {
  switch (event.type) {
    case "target_resolved":
    case "enter":
    case "exit": {
      if (typeof event.file !== "string" || event.file === "") return event;
      const file = mapper(event.file, event.type === "target_resolved" ? event.module : undefined);
      return withFile(event, file);
    }
    case "paused": {
      if (!Array.isArray(event.stack)) return event;
      const stack = event.stack.map((frame) => mapFrame(frame, mapper));
      return stack.every((frame, index) => frame === event.stack[index]) ? event : { ...event, stack };
    }
    case "oom": {
      const stack = Array.isArray(event.stack)
        ? event.stack.map((frame) => mapFrame(frame, mapper))
        : event.stack;
      // Newer probes name the largest live blocks by allocation site: those lines open locally too.
      const blocks = (event as { largest_blocks?: unknown }).largest_blocks;
      const largest: unknown[] = Array.isArray(blocks)
        ? blocks.map((block: unknown) => mapFile(block, mapper))
        : [];
      const same = stack === event.stack || stack.every((frame, index) => frame === event.stack[index]);
      const sameBlocks = !Array.isArray(blocks) || largest.every((b, i) => b === (blocks as unknown[])[i]);
      if (same && sameBlocks) return event;
      // Object.assign keeps the event's own type for largest_blocks (unknown[] here: read defensively).
      return Object.assign({}, event, { stack }, Array.isArray(blocks) ? { largest_blocks: largest } : {});
    }
    case "sites": {
      if (!Array.isArray(event.sites)) return event;
      const sites = event.sites.map((site) => {
        const mapped = mapFile(site, mapper);
        if (typeof mapped.root_file !== "string" || mapped.root_file === "") return mapped;
        const root = mapper(mapped.root_file);
        return root === undefined || root === mapped.root_file ? mapped : { ...mapped, root_file: root };
      });
      return sites.every((site, index) => site === event.sites[index]) ? event : { ...event, sites };
    }
    default:
      return event;
  }
}

/** The object with `file` set to the mapped path (or removed where refused), `host_file` keeping the host's. */
function withFile<T extends { file?: string }>(item: T, file: string | undefined): T {
  if (file === item.file) return item;
  const copy: T & { host_file?: string } = Object.assign({}, item, { host_file: item.file });
  if (file === undefined) delete copy.file;
  else copy.file = file;
  return copy;
}

/** An object with a `file` (a site, a block) with it mapped; anything else as it is. */
function mapFile<T>(item: T, mapper: HostPathMapper): T {
  const file = (item as { file?: unknown } | null)?.file;
  if (typeof item !== "object" || item === null || typeof file !== "string" || file === "") return item;
  return withFile(item as T & { file?: string }, mapper(file));
}

function mapFrame(frame: StackFrame, mapper: HostPathMapper): StackFrame {
  if (typeof frame !== "object" || frame === null || typeof frame.file !== "string" || frame.file === "") {
    return frame;
  }
  return withFile(frame, mapper(frame.file));
}
