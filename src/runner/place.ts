// Where a command runs: this machine, a host through the system ssh client, and/or inside a wrapper
// (docker exec, kubectl exec, srun). The three differ only in the argv prefix built here.
import type { RunDescription } from "./types";
import type { CommandLine } from "./exec";
import { quoteShellCommand } from "./quote";

export interface ExecutionPlace {
  /** ssh destination (`user@host` or an ssh_config alias); null: this machine. */
  host: string | null;
  sshArgs: string[];
  /** Command prefix the program runs inside; empty: none. */
  wrapper: string[];
}

/**
 * Options MemLens adds after the user's sshArgs (ssh keeps the first value it sees for an option,
 * so the user's own win). BatchMode: never prompt (there is no terminal to answer); the
 * keep-alives end the session, and so the remote run, when the connection is lost; -T: no
 * terminal, so stdin EOF reaches the launcher; -e none: no escape character on the event stream.
 */
export const SSH_DEFAULT_ARGS: readonly string[] = [
  "-o",
  "BatchMode=yes",
  "-o",
  "ConnectTimeout=15",
  "-o",
  "ServerAliveInterval=5",
  "-o",
  "ServerAliveCountMax=3",
  "-T",
  "-x",
  "-e",
  "none",
];

export class PlaceConfigError extends Error {
  override name = "PlaceConfigError";
}

export function placeOf(description: Pick<RunDescription, "host" | "sshArgs" | "wrapper">): ExecutionPlace {
  const host = description.host?.trim() ? description.host.trim() : null;
  if (host !== null) {
    // A destination starting with "-" would be read by ssh as an option (e.g. -oProxyCommand=…).
    if (host.startsWith("-") || /[\s\0]/.test(host)) {
      throw new PlaceConfigError(
        `memlens.host "${host}" is not a valid ssh destination: use user@host or an alias from ~/.ssh/config (no spaces, not starting with "-"); put ssh options in memlens.sshArgs.`,
      );
    }
  }
  const sshArgs = description.sshArgs ?? [];
  const wrapper = description.wrapper ?? [];
  if (wrapper.some((word) => word === "")) {
    throw new PlaceConfigError(
      `memlens.wrapper ${JSON.stringify(wrapper)} has an empty word; remove it (each array item is one argument).`,
    );
  }
  return { host, sshArgs: [...sshArgs], wrapper: [...wrapper] };
}

/** True when the target runs right here, with the local probe file and run folder. */
export function isDirect(place: ExecutionPlace): boolean {
  return place.host === null && place.wrapper.length === 0;
}

/** The local command line that runs `argv` at `place`. */
export function commandAt(place: ExecutionPlace, argv: readonly string[]): CommandLine {
  const inner = [...place.wrapper, ...argv];
  if (place.host === null) {
    const [file, ...args] = inner;
    if (file === undefined) throw new Error("commandAt: empty command");
    return { file, args };
  }
  return {
    file: "ssh",
    args: [...place.sshArgs, ...SSH_DEFAULT_ARGS, place.host, "--", quoteShellCommand(inner)],
  };
}

/** How messages name the place: "host gpu1", "docker exec -i vllm on host gpu1", "this machine". */
export function describePlace(place: ExecutionPlace): string {
  const where = place.host === null ? "this machine" : `host ${place.host}`;
  if (place.wrapper.length === 0) return where;
  return `${place.wrapper.join(" ")} on ${where}`;
}

/** One key per place and interpreter, for per-session caches (preflight, upload). */
export function placeKey(place: ExecutionPlace, ...extra: string[]): string {
  return JSON.stringify([place.host, place.sshArgs, place.wrapper, ...extra]);
}
