// Runs over a real OpenSSH server on loopback with the real probe: full run, hostile arguments,
// the failures of each preflight step, upload once, the remote tree ending with the connection,
// and a wrapper prefix inside ssh.
import assert from "node:assert/strict";
import { cpSync, existsSync, mkdirSync, readFileSync, statSync } from "node:fs";
import * as path from "node:path";
import { after, before, describe, test } from "node:test";
import type { HelloEvent, LogEvent, ProbeEvent, TargetResolvedEvent } from "../../src/protocol/events";
import { parseEventsText } from "../../src/protocol/reader";
import { RunnerError } from "../../src/runner/errors";
import { loadExeca } from "../../src/runner/exec";
import { startRun } from "../../src/runner/launch";
import { placeOf } from "../../src/runner/place";
import { preflightPlace } from "../../src/runner/preflight";
import { RunnerSession } from "../../src/runner/remote";
import { loadRun } from "../../src/runner/store";
import type { RunDescription, RunRequest } from "../../src/runner/types";
import { freePort, startSshdHost, type SshdHost } from "./sshdHost";
import {
  collectEvents,
  FAKE_DOCKER,
  FIXTURES,
  LOADER,
  nextEvent,
  pidAlive,
  probeZipapp,
  tempDir,
  waitUntil,
  waitUntilAsync,
  WORKLOAD,
} from "./helpers";

let sshd: SshdHost;
let work: string;
let cacheDir: string;

before(async () => {
  sshd = await startSshdHost();
  work = tempDir("ssh-test");
  cacheDir = path.join(work, "host-cache");
});

after(async () => {
  await sshd?.stop();
});

function remote(extra: Partial<RunDescription> = {}): RunDescription {
  return { python: "python3", host: sshd.host, sshArgs: sshd.sshArgs, remoteCacheDir: cacheDir, ...extra };
}

function request(
  description: RunDescription,
  plan: RunRequest["plan"] = { version: 1, targets: [] },
): RunRequest {
  return { description, plan, label: "test", runsDir: path.join(work, "runs") };
}

function isHelloMain(event: ProbeEvent): event is HelloEvent {
  return event.type === "hello" && event.origin === "main";
}

function logLine(prefix: string) {
  return (event: ProbeEvent): event is LogEvent => event.type === "log" && event.line.startsWith(prefix);
}

const HOSTILE = [
  "two words",
  "it's",
  'say "hi"',
  "$(touch MARKER)",
  "`touch MARKER`",
  "; touch MARKER",
  "&& touch MARKER #",
  "| touch MARKER",
  "line one\nline two; touch MARKER",
  "",
  "  ",
  "ünïcødé ✓ 日本語",
  "back\\slash",
  "$HOME ${HOME} ~ *",
  "-n",
  "--",
  "'",
  "\\'",
  "A=B",
];

void describe("runs over ssh (real sshd on loopback, real probe)", () => {
  void test("a full run: events arrive, the local events.jsonl is complete, paths map, exit code 0", async () => {
    // The "host" runs its own copy of the workload; the local workspace has the original.
    const hostTree = path.join(work, "host-checkout");
    cpSync(FIXTURES, hostTree, { recursive: true });
    const progress: string[] = [];
    const handle = await startRun(
      request(
        remote({ command: ["python3", path.join(hostTree, "run_workload.py"), "steps"], cwd: hostTree }),
        {
          version: 1,
          targets: [{ id: "alloc", function: "rtwork.steps:allocate_buffers" }],
          sample_interval_ms: 0,
        },
      ),
      {
        probePath: probeZipapp(),
        sourceRoots: [FIXTURES],
        session: new RunnerSession(),
        onProgress: (m) => progress.push(m),
      },
    );
    const events = collectEvents(handle);
    const outcome = await handle.done;

    assert.equal(outcome.meta.status, "finished", outcome.meta.error);
    assert.equal(outcome.meta.exitCode, 0);
    assert.equal(outcome.meta.host, sshd.host);
    const types = new Set(events.map((e) => e.type));
    for (const type of ["start", "hello", "target_resolved", "enter", "exit", "end"])
      assert.ok(types.has(type as ProbeEvent["type"]), type);
    assert.equal(events.filter((e) => e.type === "exit").length, 2, "allocate_buffers ran twice");
    const firstExit = events.find((e) => e.type === "exit");
    assert.ok(firstExit && firstExit.type === "exit");
    assert.ok(
      (firstExit.after.host_rss ?? 0) - (firstExit.before.host_rss ?? 0) >= 24 << 20,
      "4 x 8 MiB show in host RSS",
    );

    // Paths: the host's file maps onto the local fixture by module name; the host path is kept.
    const resolved = events.find((e): e is TargetResolvedEvent => e.type === "target_resolved");
    assert.ok(resolved);
    assert.equal(resolved.file, path.join(FIXTURES, "rtwork", "steps.py"));
    assert.equal(
      (resolved as TargetResolvedEvent & { host_file?: string }).host_file,
      path.join(hostTree, "rtwork", "steps.py"),
    );

    // The local copy is the record: same events, in order, with a final end.
    const stored = parseEventsText(readFileSync(path.join(handle.dir, "events.jsonl"), "utf8"));
    assert.equal(stored.malformed.length, 0);
    assert.deepEqual(stored.events, events);
    const end = stored.events[stored.events.length - 1];
    assert.ok(end && end.type === "end" && end.counts.events === stored.events.length);
    const loaded = await loadRun(handle.dir);
    assert.equal(loaded.meta.status, "finished");
    assert.ok(loaded.meta.hostRunDir?.startsWith(cacheDir));
    assert.ok(
      progress.some((m) => m.includes(sshd.host)),
      progress.join("\n"),
    );
  });

  void test("hostile arguments, environment and cwd arrive intact and run nothing", async () => {
    const marker = path.join(work, "MARKER");
    const strangeCwd = path.join(work, "it's a $(dir) `x` ; dir");
    mkdirSync(strangeCwd, { recursive: true });
    const env = {
      MEMLENS_TEST_HOSTILE: "$(touch MARKER); `touch MARKER` 'q' \"dq\" \n end",
      MEMLENS_TEST_EMPTY: "",
    };
    const handle = await startRun(
      request(remote({ command: ["python3", WORKLOAD, "argv", ...HOSTILE], cwd: strangeCwd, env })),
      { probePath: probeZipapp(), session: new RunnerSession() },
    );
    const hello = nextEvent(handle, isHelloMain);
    const report = nextEvent(handle, logLine("ARGV_REPORT "));
    const outcome = await handle.done;
    assert.equal(outcome.meta.status, "finished", outcome.meta.error);
    assert.deepEqual((await hello).argv.slice(2), HOSTILE, "sys.argv of the target");
    const printed = JSON.parse((await report).line.slice("ARGV_REPORT ".length)) as {
      argv: string[];
      cwd: string;
      env: Record<string, string>;
    };
    assert.deepEqual(printed.argv, HOSTILE);
    assert.equal(printed.cwd, strangeCwd);
    assert.deepEqual(printed.env, env);
    assert.equal(existsSync(marker), false, "no word was run by a shell");
    assert.equal(existsSync(path.join(strangeCwd, "MARKER")), false);
  });

  void test("authentication refused (wrong key) says so, naming the host and the step", async () => {
    await assert.rejects(
      startRun(request(remote({ sshArgs: sshd.wrongKeySshArgs, command: ["python3", WORKLOAD] })), {
        probePath: probeZipapp(),
        session: new RunnerSession(),
      }),
      (error: unknown) => {
        assert.ok(error instanceof RunnerError, String(error));
        assert.equal(error.problem, "auth-refused");
        assert.equal(error.step, "authenticate");
        assert.match(error.message, new RegExp(`host ${sshd.host.replace(".", "\\.")}`));
        assert.match(error.message, /authentication refused .*Permission denied/);
        assert.match(error.message, /ssh-agent|IdentityFile/);
        return true;
      },
    );
  });

  void test("an unreachable host (closed port) says so", async () => {
    const closed = await freePort();
    const sshArgs = [...sshd.sshArgs.slice(0, -1), String(closed)];
    await assert.rejects(
      startRun(request(remote({ sshArgs, command: ["python3", WORKLOAD] })), {
        probePath: probeZipapp(),
        session: new RunnerSession(),
      }),
      (error: unknown) => {
        assert.ok(error instanceof RunnerError, String(error));
        assert.equal(error.problem, "unreachable");
        assert.equal(error.step, "connect");
        assert.match(error.message, /host unreachable: connection refused/);
        assert.match(error.message, /Connection refused/);
        return true;
      },
    );
  });

  void test("a missing python on the host says so, naming the path", async () => {
    const runsBefore = Date.now();
    await assert.rejects(
      startRun(request(remote({ python: "/nonexistent/python3", command: ["python3", WORKLOAD] })), {
        probePath: probeZipapp(),
        session: new RunnerSession(),
      }),
      (error: unknown) => {
        assert.ok(error instanceof RunnerError, String(error));
        assert.equal(error.problem, "no-python");
        assert.equal(error.step, "python");
        assert.match(error.message, /no Python at "\/nonexistent\/python3"/);
        assert.match(error.message, /memlens\.python/);
        return true;
      },
    );
    assert.ok(Date.now() - runsBefore < 30_000);
  });

  void test("the probe and the loader are uploaded once per content hash; a second session uploads nothing", async () => {
    const ownCache = path.join(work, "cache-upload-once");
    const runOnce = async () => {
      const progress: string[] = [];
      const handle = await startRun(request(remote({ remoteCacheDir: ownCache })), {
        probePath: probeZipapp(),
        loaderPath: LOADER,
        session: new RunnerSession(),
        onProgress: (message) => progress.push(message),
      });
      const outcome = await handle.done;
      assert.equal(outcome.meta.status, "finished", outcome.meta.error);
      return progress;
    };
    const first = await runOnce();
    assert.ok(
      first.some((m) => /^Uploading memlens_probe\.pyz to host .*: \d+ KiB of \d+ KiB$/.test(m)),
      first.join("\n"),
    );
    assert.ok(
      first.some((m) => m.startsWith("Uploaded load_model.py")),
      first.join("\n"),
    );
    const probeOnHost = (await import("node:fs"))
      .readdirSync(ownCache)
      .map((d) => path.join(ownCache, d, "memlens_probe.pyz"));
    const uploadedProbe = probeOnHost.find((p) => existsSync(p));
    assert.ok(uploadedProbe, "the probe sits in <cache>/<hash>/memlens_probe.pyz");
    assert.deepEqual(readFileSync(uploadedProbe), readFileSync(probeZipapp()));
    const before = statSync(uploadedProbe);

    const second = await runOnce();
    assert.ok(!second.some((m) => m.includes("Upload")), second.join("\n"));
    const afterwards = statSync(uploadedProbe);
    assert.equal(afterwards.ino, before.ino, "same file: not rewritten");
    assert.equal(afterwards.mtimeMs, before.mtimeMs);
  });

  void test("killing the local ssh client ends the target and its child on the host", async () => {
    const handle = await startRun(request(remote({ command: ["python3", WORKLOAD, "hold"] })), {
      probePath: probeZipapp(),
      session: new RunnerSession(),
    });
    const hold = await nextEvent(handle, logLine("HOLD_PIDS "));
    const [targetPid, childPid] = hold.line.split(" ").slice(1).map(Number) as [number, number];
    assert.ok(pidAlive(targetPid) && pidAlive(childPid), "both run on the host");
    const sshPid = (await loadRun(handle.dir, { isLive: () => true })).meta.pid;
    assert.ok(sshPid);
    const started = Date.now();
    process.kill(sshPid, "SIGKILL");
    const outcome = await handle.done;
    assert.equal(outcome.meta.status, "failed");
    assert.match(outcome.meta.error ?? "", /the ssh client was killed by SIGKILL before the run ended/);
    await waitUntil(
      "the host's target and child to end",
      () => (!pidAlive(targetPid) && !pidAlive(childPid) ? true : undefined),
      10_000,
    );
    console.log(`remote tree gone ${Date.now() - started} ms after the ssh client was killed`);
    // Nothing measured is lost: the local record has every event up to the kill.
    const stored = await loadRun(handle.dir);
    assert.ok(stored.events.some((e) => e.type === "log" && e.line.startsWith("HOLD_PIDS ")));
  });

  void test("a crash of the process that started the run keeps every event; the run loads as interrupted", async () => {
    const execa = await loadExeca();
    const runner = execa(
      process.execPath,
      [
        "--import",
        "tsx",
        path.join(__dirname, "crashingRunner.ts"),
        JSON.stringify({
          request: request(remote({ command: ["python3", WORKLOAD, "hold"] })),
          probePath: probeZipapp(),
        }),
      ],
      { reject: false, buffer: false, stdin: "ignore" },
    );
    const ended = runner.then(() => undefined);
    const line = await new Promise<string>((resolve, reject) => {
      let text = "";
      runner.stdout?.setEncoding("utf8");
      runner.stdout?.on("data", (chunk: string) => {
        text += chunk;
        const found = /^RUN_DIR .*$/m.exec(text);
        if (found) resolve(found[0]);
      });
      void ended.then(() => reject(new Error(`the runner ended early: ${text}`)));
    });
    const [, runDir, , target, child] = line.split(" ") as [string, string, string, string, string];
    runner.kill("SIGKILL");
    await ended;
    await waitUntil(
      "the host's tree to end",
      () => (!pidAlive(Number(target)) && !pidAlive(Number(child)) ? true : undefined),
      10_000,
    );
    // The orphaned ssh client exits once the host side has closed; then the run reads as interrupted.
    const stored = await waitUntilAsync("the run to load as interrupted", async () => {
      const run = await loadRun(runDir);
      return run.meta.status === "interrupted" ? run : undefined;
    });
    assert.ok(stored.events.some((e) => e.type === "hello"));
    assert.ok(
      stored.events.some((e) => e.type === "log" && e.line.startsWith("HOLD_PIDS ")),
      "events up to the crash are on disk",
    );
  });

  void test("stop() ends the remote tree and marks the run stopped", async () => {
    const handle = await startRun(request(remote({ command: ["python3", WORKLOAD, "hold"] })), {
      probePath: probeZipapp(),
      session: new RunnerSession(),
    });
    const hold = await nextEvent(handle, logLine("HOLD_PIDS "));
    const [targetPid, childPid] = hold.line.split(" ").slice(1).map(Number) as [number, number];
    const started = Date.now();
    const outcome = await handle.stop();
    console.log(`stop() over ssh took ${Date.now() - started} ms`);
    assert.equal(outcome.meta.status, "stopped");
    await waitUntil(
      "the host's target and child to end",
      () => (!pidAlive(targetPid) && !pidAlive(childPid) ? true : undefined),
      10_000,
    );
    const stored = await loadRun(handle.dir);
    const end = stored.events.find((e) => e.type === "end");
    assert.ok(end && end.type === "end" && end.stopped, "the launcher reports a stop");
  });

  void test("a wrapper prefix (docker exec -i NAME stand-in) runs inside ssh", async () => {
    const handle = await startRun(
      request(
        remote({
          wrapper: [FAKE_DOCKER, "exec", "-i", "memlens-box"],
          command: ["python3", WORKLOAD, "argv", "a b"],
        }),
      ),
      { probePath: probeZipapp(), session: new RunnerSession() },
    );
    const report = nextEvent(handle, logLine("ARGV_REPORT "));
    const outcome = await handle.done;
    assert.equal(outcome.meta.status, "finished", outcome.meta.error);
    assert.deepEqual(outcome.meta.wrapper, [FAKE_DOCKER, "exec", "-i", "memlens-box"]);
    const printed = JSON.parse((await report).line.slice("ARGV_REPORT ".length)) as {
      argv: string[];
      env: Record<string, string>;
    };
    assert.deepEqual(printed.argv, ["a b"]);
    assert.equal(printed.env.MEMLENS_TEST_CONTAINER, "memlens-box", "the command ran inside the wrapper");
  });

  void test("a wrapper that fails (no such container) names the wrapper and its message", async () => {
    await assert.rejects(
      startRun(
        request(remote({ wrapper: [FAKE_DOCKER, "exek", "-i", "box"], command: ["python3", WORKLOAD] })),
        {
          probePath: probeZipapp(),
          session: new RunnerSession(),
        },
      ),
      (error: unknown) => {
        assert.ok(error instanceof RunnerError, String(error));
        assert.equal(error.problem, "wrapper-failed");
        assert.match(error.message, /fake-docker-exec: expected 'exec -i NAME CMD/);
        assert.match(error.message, /memlens\.wrapper/);
        return true;
      },
    );
  });

  void test("a failing command over ssh reports its exit code and stderr tail", async () => {
    const handle = await startRun(request(remote({ command: ["python3", WORKLOAD, "fail"] })), {
      probePath: probeZipapp(),
      session: new RunnerSession(),
    });
    const outcome = await handle.done;
    assert.equal(outcome.meta.status, "failed");
    assert.equal(outcome.meta.exitCode, 3);
    assert.match(outcome.meta.error ?? "", /exited with code 3/);
    assert.match(outcome.meta.error ?? "", /the thing went wrong on purpose/);
    assert.ok(outcome.stderrTail.some((line) => line.includes("the thing went wrong on purpose")));
  });

  void test("preflight reports python, torch and GPUs of the host, once per session", async () => {
    const session = new RunnerSession();
    const place = placeOf(remote());
    const first = await preflightPlace(place, "python3", cacheDir, { session, probePath: probeZipapp() });
    assert.equal(first.fresh, true);
    assert.ok(first.python.version[0] === 3 && first.python.version[1] >= 9);
    assert.match(first.lines[0] ?? "", new RegExp(`^host ${sshd.host.replace(".", "\\.")}: Python 3\\.`));
    // This machine has no GPU (and no torch): both are reported, each with what to do.
    if (first.gpus.length === 0) {
      const noGpu = first.problems.find((p) => p.problem === "no-gpu");
      assert.ok(noGpu);
      assert.match(noGpu.message, /no GPU visible .*nvidia-smi/);
    }
    if (first.torch === null)
      assert.match(
        first.problems.find((p) => p.problem === "no-torch")?.message ?? "",
        /torch is not installed/,
      );
    // The probe's fast path: where it is, or the command that builds it with the uploaded probe.
    const fastLine = first.lines.find((line) => line.includes("the probe's fast path")) ?? "";
    if (first.raw.fast_path?.available)
      assert.match(fastLine, /\(host readings and event lines in C\): \/.+\.so$/);
    else {
      const probeThere = first.files.get(probeZipapp()) ?? "";
      assert.ok(probeThere.endsWith("memlens_probe.pyz"), probeThere);
      assert.ok(
        fastLine.endsWith(`python3 ${probeThere} build-fast-${first.torch === null ? "path" : "stats"}`),
        fastLine,
      );
    }
    const second = await preflightPlace(place, "python3", cacheDir, { session, probePath: probeZipapp() });
    assert.equal(second.fresh, false);
  });
});

void describe("a wrapper without ssh", () => {
  void test("runs the command locally inside the wrapper, with the probe from the cache", async () => {
    const dir = tempDir("wrapper-local");
    const handle = await startRun(
      {
        description: {
          python: "python3",
          wrapper: [FAKE_DOCKER, "exec", "-i", "local-box"],
          remoteCacheDir: path.join(dir, "cache"),
          command: ["python3", WORKLOAD, "argv", "x"],
        },
        plan: { version: 1, targets: [] },
        label: "wrapped",
        runsDir: path.join(dir, "runs"),
      },
      { probePath: probeZipapp(), session: new RunnerSession() },
    );
    const report = nextEvent(handle, logLine("ARGV_REPORT "));
    const outcome = await handle.done;
    assert.equal(outcome.meta.status, "finished", outcome.meta.error);
    assert.equal(outcome.meta.host, null);
    const printed = JSON.parse((await report).line.slice("ARGV_REPORT ".length)) as {
      env: Record<string, string>;
    };
    assert.equal(printed.env.MEMLENS_TEST_CONTAINER, "local-box");
    assert.ok(existsSync(path.join(handle.dir, "events.jsonl")));
  });
});
