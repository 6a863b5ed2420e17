// Writes a large events.jsonl (the samples of a long vLLM load, with scopes and log lines among
// them), then reads it the way `memlens report` does, in a child process of its own, and prints
// the time and the peak resident memory (VmHWM) of that read.
//
//   node --import tsx scripts/bench-events.ts [--mb 282] [--keep DIR]
//
// A 564 MB file is past V8's longest string (~512 MB): a reader that holds the file as one text
// fails there with "Invalid string length".
import { execFileSync } from "node:child_process";
import {
  closeSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  rmSync,
  readFileSync,
  statSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import os from "node:os";
import * as path from "node:path";
import { main } from "../src/cli/main";

const MiB = 1024 ** 2;

function argValue(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

/** One run folder whose events.jsonl is about `mb` MiB; returns the folder. */
export function writeLargeRun(parent: string, mb: number): string {
  const dir = path.join(parent, "20251126-101500-000-abc123");
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    path.join(dir, "meta.json"),
    JSON.stringify({
      id: path.basename(dir),
      label: "bench",
      started: "2025-11-26T10:15:00.000Z",
      host: null,
      command: ["python3"],
      status: "finished",
    }),
  );
  const fd = openSync(path.join(dir, "events.jsonl"), "w");
  const t0 = 1_764_150_000_000_000_000;
  const head = (type: string, ts: number) =>
    `{"v":1,"type":"${type}","ts":${t0 + ts},"pid":4242,"rank":0,"device":0`;
  let written = 0;
  let chunk: string[] = [];
  const flush = () => {
    const text = chunk.join("");
    written += writeSync(fd, text);
    chunk = [];
  };
  chunk.push(
    `${head("start", 0)},"run_id":"bench","argv":["python3"],"cwd":"/","plan":{"version":1,"targets":[]},"probe_version":"bench"}\n`,
  );
  const target = Math.round(mb * MiB);
  let i = 0;
  while (written < target) {
    const allocated = 13_958_643_712 + (i % 1000) * 1024;
    chunk.push(
      `${head("sample", i * 1000)},"readings":{"allocated":${allocated},"reserved":15032385536,"device_used":16106127360,"device_total":150754820096,"non_torch":1073741824,"process_used":15837691904,"host_rss":4294967296,"host_hwm":5368709120}}\n`,
    );
    if (i % 1000 === 0) {
      const scope = `"target":"load","scope_id":"4242:${i}","parent":null,"call":${i / 1000 + 1},"depth":0,"before":{"allocated":${allocated}}`;
      chunk.push(`${head("enter", i * 1000 + 1)},${scope}}\n`);
      chunk.push(
        `${head("exit", i * 1000 + 2)},${scope},"after":{"allocated":${allocated + 4096}},"peak":{"allocated":${allocated + 8192}},"duration_ns":1,"raised":null}\n`,
      );
      chunk.push(`${head("log", i * 1000 + 3)},"stream":"stdout","line":"INFO loading shard ${i}"}\n`);
    }
    i++;
    if (chunk.length >= 10_000) flush();
  }
  chunk.push(
    `${head("end", i * 1000)},"exit_code":0,"signal":null,"duration_ns":${i * 1000},"stopped":false,"counts":{}}\n`,
  );
  flush();
  closeSync(fd);
  return dir;
}

/** Run in the child: reads the run as the CLI's report does and prints figures as JSON. */
async function readInChild(dir: string): Promise<void> {
  const started = process.hrtime.bigint();
  let out = "";
  let err = "";
  const code = await main(
    ["report", dir, "--json"],
    (text) => (out += text),
    (text) => (err += text),
  );
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  const status = readFileSync("/proc/self/status", "utf8");
  const hwm = Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? NaN) * 1024;
  process.stdout.write(
    `${JSON.stringify({ code, ms, peakRssBytes: hwm, error: err.slice(0, 300), outBytes: out.length })}\n`,
  );
}

async function run(): Promise<void> {
  if (process.argv[2] === "--child") {
    await readInChild(process.argv[3]!);
    return;
  }
  const mb = Number(argValue("--mb") ?? 282);
  const keep = argValue("--keep");
  const parent = keep ?? mkdtempSync(path.join(os.tmpdir(), "memlens-bench-events-"));
  try {
    const t = Date.now();
    const dir = writeLargeRun(parent, mb);
    const bytes = statSync(path.join(dir, "events.jsonl")).size;
    console.log(
      `wrote ${(bytes / MiB).toFixed(0)} MiB of events in ${Date.now() - t} ms (${os.cpus()[0]?.model ?? "?"})`,
    );
    const result = JSON.parse(
      execFileSync(process.execPath, ["--import", "tsx", __filename, "--child", dir], {
        encoding: "utf8",
        maxBuffer: 16 * MiB,
      }),
    ) as { code: number; ms: number; peakRssBytes: number; error: string };
    console.log(
      `memlens report: exit ${result.code} in ${(result.ms / 1000).toFixed(1)} s, peak RSS ${(result.peakRssBytes / MiB).toFixed(0)} MiB${result.error ? `; stderr: ${result.error}` : ""}`,
    );
  } finally {
    if (!keep) rmSync(parent, { recursive: true, force: true });
  }
}

if (require.main === module) {
  run().catch((error: unknown) => {
    console.error(error);
    process.exit(1);
  });
}
