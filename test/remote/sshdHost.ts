// A throwaway OpenSSH server on 127.0.0.1 for tests: its own host key, one authorized client key,
// keys only, on a free port. Needs openssh-server and openssh-client (apt) and root (or a user
// sshd may run as). Run this file directly to keep one up for manual tries:
//   node --import tsx test/remote/sshdHost.ts     (prints host and sshArgs as JSON; Ctrl+C stops it)
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { createServer } from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { loadExeca } from "../../src/runner/exec";

export const SSHD = "/usr/sbin/sshd";

export interface SshdHost {
  /** ssh destination: root@127.0.0.1 (or the current user). */
  host: string;
  port: number;
  /** Arguments that log in without prompts: key, batch mode, no host key checks, port. */
  sshArgs: string[];
  /** The same but with a key the server does not accept. */
  wrongKeySshArgs: string[];
  dir: string;
  stop(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** A port nothing listens on (for "unreachable" tests): free now, and nobody is told to use it. */
export { freePort };

function keygen(file: string): void {
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "memlens-test", "-f", file], {
    stdio: "ignore",
  });
}

function clientArgs(key: string, port: number): string[] {
  return [
    "-i",
    key,
    "-o",
    "IdentitiesOnly=yes",
    "-o",
    "BatchMode=yes",
    "-o",
    "StrictHostKeyChecking=no",
    "-o",
    "UserKnownHostsFile=/dev/null",
    "-o",
    "LogLevel=ERROR",
    "-p",
    String(port),
  ];
}

export async function startSshdHost(): Promise<SshdHost> {
  if (!existsSync(SSHD)) {
    throw new Error(`${SSHD} is missing: apt-get install -y openssh-server openssh-client`);
  }
  const dir = mkdtempSync(path.join(os.tmpdir(), "memlens-sshd-"));
  keygen(path.join(dir, "host_key"));
  keygen(path.join(dir, "client_key"));
  keygen(path.join(dir, "wrong_key"));
  execFileSync("cp", [path.join(dir, "client_key.pub"), path.join(dir, "authorized_keys")]);
  // sshd's privilege-separation directory; Debian creates it only when the service starts.
  mkdirSync("/run/sshd", { recursive: true });
  const user = os.userInfo().username;
  const execa = await loadExeca();

  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const config = path.join(dir, "sshd_config");
    writeFileSync(
      config,
      [
        `Port ${port}`,
        "ListenAddress 127.0.0.1",
        `HostKey ${path.join(dir, "host_key")}`,
        `AuthorizedKeysFile ${path.join(dir, "authorized_keys")}`,
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "StrictModes no",
        "UsePAM no",
        "PermitRootLogin prohibit-password",
        `PidFile ${path.join(dir, "sshd.pid")}`,
        "LogLevel INFO",
        "",
      ].join("\n"),
    );
    // -D: stay in the foreground so this process owns it; -e: log to stderr, where we wait for "listening".
    const sshd = execa(SSHD, ["-D", "-e", "-f", config], {
      reject: false,
      buffer: false,
      stdin: "ignore",
      stdout: "ignore",
    });
    const exited = sshd.then(() => undefined);
    const ready = await new Promise<{ ok: boolean; log: string }>((resolve) => {
      let log = "";
      sshd.stderr?.setEncoding("utf8");
      sshd.stderr?.on("data", (chunk: string) => {
        log += chunk;
        if (log.includes(`Server listening on 127.0.0.1 port ${port}`)) resolve({ ok: true, log });
      });
      void exited.then(() => resolve({ ok: false, log }));
    });
    if (!ready.ok) {
      if (attempt < 5 && /Address already in use|Cannot bind/i.test(ready.log)) continue;
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`sshd did not start (${SSHD} -D -e -f ${config}):\n${ready.log}`);
    }
    sshd.stderr?.resume();
    return {
      host: `${user}@127.0.0.1`,
      port,
      sshArgs: clientArgs(path.join(dir, "client_key"), port),
      wrongKeySshArgs: clientArgs(path.join(dir, "wrong_key"), port),
      dir,
      async stop() {
        sshd.kill("SIGTERM");
        await exited;
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }
}

if (require.main === module) {
  void startSshdHost().then((host) => {
    console.log(JSON.stringify({ host: host.host, port: host.port, sshArgs: host.sshArgs }, null, 2));
    const stop = () => void host.stop().then(() => process.exit(0));
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
  });
}
