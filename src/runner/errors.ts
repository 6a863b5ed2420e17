// Errors of the runner name where (this machine, a host, a wrapper) and which step failed, and say
// what to do about it.
import type { EndedCommand } from "./exec";
import { tailLines } from "./exec";
import { describePlace, type ExecutionPlace } from "./place";

export type RunnerStep = "connect" | "authenticate" | "python" | "upload" | "preflight" | "start" | "run";

export type RunnerProblem =
  | "unreachable"
  | "auth-refused"
  | "host-key"
  | "ssh-missing"
  | "ssh-failed"
  | "wrapper-failed"
  | "no-python"
  | "python-too-old"
  | "python-failed"
  | "no-torch"
  | "no-gpu"
  | "upload-failed"
  | "preflight-failed"
  | "spawn-failed"
  | "bad-config";

export class RunnerError extends Error {
  override name = "RunnerError";
  constructor(
    readonly problem: RunnerProblem,
    readonly step: RunnerStep,
    /** describePlace() of where it happened. */
    readonly where: string,
    message: string,
    /** The last lines of stderr that led to it, for the output channel. */
    readonly stderrTail: string[] = [],
  ) {
    super(`${where}, ${step}: ${message}`);
  }
}

const UNREACHABLE_PATTERNS: { pattern: RegExp; reason: string }[] = [
  { pattern: /Could not resolve hostname/i, reason: "the host name does not resolve" },
  { pattern: /Connection refused/i, reason: "connection refused (no sshd on that address and port)" },
  { pattern: /timed out/i, reason: "the connection timed out" },
  { pattern: /No route to host/i, reason: "no route to host" },
  { pattern: /Network is unreachable/i, reason: "the network is unreachable" },
  {
    pattern: /Connection closed by .* port|kex_exchange_identification/i,
    reason: "the server closed the connection",
  },
];

/**
 * Explains a failed ssh invocation when the failure is ssh's own (exit 255 and a message from the
 * client), not the remote command's. Returns undefined when ssh itself was fine.
 */
export function sshFailure(
  place: ExecutionPlace,
  step: RunnerStep,
  ended: EndedCommand,
): RunnerError | undefined {
  if (place.host === null) return undefined;
  const where = describePlace(place);
  const host = place.host;
  const tail = tailLines(ended.stderr, 8);
  if (ended.spawnError) {
    return new RunnerError(
      "ssh-missing",
      "connect",
      where,
      `the OpenSSH client "ssh" could not be started (${ended.spawnError.code ?? ended.spawnError.message}). Install OpenSSH (on Windows: the "OpenSSH Client" optional feature) so that "ssh" is on PATH.`,
    );
  }
  if (ended.exitCode !== 255) return undefined;
  const text = ended.stderr;
  if (/Permission denied/i.test(text) || /Too many authentication failures/i.test(text)) {
    return new RunnerError(
      "auth-refused",
      "authenticate",
      where,
      `authentication refused by ${host} (${firstMatchingLine(text, /Permission denied|Too many authentication/i)}). ` +
        `MemLens runs ssh with BatchMode=yes, so it cannot ask for a password or passphrase: load your key into ssh-agent (ssh-add) ` +
        `or set IdentityFile for this host in ~/.ssh/config (or "-i", "KEY" in memlens.sshArgs), then check that "ssh ${host} true" works in a terminal without a prompt.`,
      tail,
    );
  }
  if (/Host key verification failed|REMOTE HOST IDENTIFICATION HAS CHANGED/i.test(text)) {
    return new RunnerError(
      "host-key",
      "connect",
      where,
      `the host key of ${host} is unknown or has changed. Connect once in a terminal ("ssh ${host}") to check and accept it; MemLens never accepts host keys on its own.`,
      tail,
    );
  }
  for (const { pattern, reason } of UNREACHABLE_PATTERNS) {
    if (pattern.test(text)) {
      return new RunnerError(
        "unreachable",
        "connect",
        where,
        `host unreachable: ${reason} (${firstMatchingLine(text, pattern)}). Check memlens.host and the port/ProxyJump in memlens.sshArgs or ~/.ssh/config, and that "ssh ${host} true" works in a terminal.`,
        tail,
      );
    }
  }
  return new RunnerError(
    "ssh-failed",
    step,
    where,
    `ssh exited with 255${tail.length ? `: ${tail[tail.length - 1]}` : ""}. Check that "ssh ${host} true" works in a terminal.`,
    tail,
  );
}

function firstMatchingLine(text: string, pattern: RegExp): string {
  const line = text.split(/\r?\n/).find((candidate) => pattern.test(candidate));
  return (line ?? "").trim();
}
