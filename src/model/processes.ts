// What a process of the target is called: the panel's legend, the debugger's threads and the
// hovers' tables name it the same way.
import type { ProcessInfo } from "./runModel";

export type ProcessNaming = Pick<ProcessInfo, "pid" | "rank" | "device"> &
  Partial<Pick<ProcessInfo, "origin" | "argv" | "name">>;

function baseName(file: string): string {
  const at = Math.max(file.lastIndexOf("/"), file.lastIndexOf("\\"));
  return at >= 0 ? file.slice(at + 1) : file;
}

/** What the process is to the target: multiprocessing's name (vLLM's "EngineCore_0"), else how it started. */
export function processRole(p: Pick<ProcessNaming, "origin" | "argv" | "name">): string {
  if (p.name) return p.name;
  if (p.origin === "main" || p.origin === undefined) {
    const script = p.argv?.[0];
    return script !== undefined && script !== "-c" && script !== "-m" ? `main (${baseName(script)})` : "main";
  }
  return p.origin === "subprocess" ? "subprocess" : `${p.origin} child`;
}

/** "rank 1 · cuda:1 · VllmWorker-1 · pid 4243": the same, rank first (tensor parallelism's series). */
export function rankFirstLabel(p: ProcessNaming): string {
  const parts: string[] = [];
  if (p.rank !== null) parts.push(`rank ${p.rank}`);
  if (p.device !== null) parts.push(`cuda:${p.device}`);
  parts.push(processRole(p), `pid ${p.pid}`);
  return parts.join(" · ");
}

/** "pid 4242 · rank 0 · cuda:0 · EngineCore_0". */
export function processLabel(p: ProcessNaming): string {
  const parts = [`pid ${p.pid}`];
  if (p.rank !== null) parts.push(`rank ${p.rank}`);
  if (p.device !== null) parts.push(`cuda:${p.device}`);
  parts.push(processRole(p));
  return parts.join(" · ");
}
