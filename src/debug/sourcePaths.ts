// Local -> host paths, for a line breakpoint's file on a GPU host. The runner maps the other way
// (host paths in events); only the configured prefixes can be reversed without asking the host.
import path from "node:path";
import type { PathMapping } from "../runner/types";

/** The host's path for a local file: the longest matching `local` prefix swapped for its `remote`. */
export function hostPathOf(localPath: string, pathMappings: readonly PathMapping[]): string {
  let best: PathMapping | undefined;
  for (const mapping of pathMappings) {
    const local = mapping.local.replace(/[\\/]+$/, "");
    const inside =
      localPath === local || localPath.startsWith(local + path.sep) || localPath.startsWith(local + "/");
    if (inside && (!best || local.length > best.local.replace(/[\\/]+$/, "").length)) best = mapping;
  }
  if (!best) return localPath;
  const rest = path.relative(best.local, localPath).split(path.sep).join("/");
  const remote = best.remote.replace(/\/+$/, "");
  return rest === "" ? remote : `${remote}/${rest}`;
}
