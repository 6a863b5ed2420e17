// What the editor shows of a real run's allocation sites and OOM forensics, for a run recorded on a
// GPU (the probe's `sites` and `oom` events): the inlay label of every line that allocated, the
// Sites table of each probed function, the OOM diagnostic's lines, and the checklist's 2.1 answers.
// The same code the language server, the panel and the checklist run; no editor needed.
//   node --import tsx scripts/check-sites-display.ts RUN_DIR [OUT_DIR] [--root LOCAL_SOURCE_ROOT]...
// Writes OUT_DIR/sites-display.txt and OUT_DIR/sites-display.json (OUT_DIR defaults to RUN_DIR).
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { evaluateChecklist } from "../src/checklist/rules";
import { RunModel } from "../src/model/runModel";
import { lineSites, oomDetails, siteTotals } from "../src/model/sites";
import { targetLabel } from "../src/model/targets";
import { siteRows } from "../src/panel/viewModel";
import { readEventsFile } from "../src/runner/eventsFile";
import { createHostPathMapper, mapEventPaths } from "../src/runner/pathMap";
import { eventsFileOf } from "../src/runner/store";
import { oomDetailLines, siteInlayLabel } from "../src/server/sitesRender";

async function main(): Promise<number> {
  const args = process.argv.slice(2);
  const roots: string[] = [];
  const positional: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === "--root") roots.push(args[++i] ?? "");
    else positional.push(args[i]!);
  }
  const [runDir, outDir = runDir] = positional;
  if (!runDir) {
    console.error("usage: check-sites-display.ts RUN_DIR [OUT_DIR] [--root LOCAL_SOURCE_ROOT]...");
    return 2;
  }
  const mapper = createHostPathMapper({ sourceRoots: roots, pathMappings: [], fileExists: existsSync });
  const model = new RunModel();
  const report = await readEventsFile(eventsFileOf(runDir), (e) => model.add(mapEventPaths(e, mapper)));
  const lines: string[] = [`run ${runDir}: ${model.eventCount} events, ${model.sites.length} sites events`];

  lines.push("", "== inlay hints (file:line  label)");
  const hints: { file: string; line: number; label: string; target: string }[] = [];
  for (const [file, byLine] of lineSites(model.sites)) {
    for (const [line, site] of [...byLine].sort((a, b) => a[0] - b[0])) {
      const label = siteInlayLabel(site);
      hints.push({ file, line, label, target: site.target });
      lines.push(`${path.basename(file)}:${line}  ${label}  (${targetLabel(model, site.target)})`);
    }
  }

  lines.push("", "== Sites table per probed function");
  const table = siteRows(siteTotals(model.sites));
  for (const target of [...new Set(table.map((r) => r.target))]) {
    lines.push(`-- ${targetLabel(model, target)}`);
    for (const r of table.filter((row) => row.target === target)) {
      lines.push(
        `${path.basename(r.file)}:${r.line} ${r.function} | allocated ${r.allocated} B | freed ${r.freed} B | live ${r.liveAtExit} B | at peak ${r.atPeak} B | ×${r.count} over ${r.calls} calls`,
      );
    }
  }

  lines.push("", "== OOMs");
  const ooms = model.ooms.map((oom) => {
    const details = oomDetails(oom);
    const text = oomDetailLines(details, {
      scopes: details.scopeStack.map((id) => targetLabel(model, id)),
      snapshot: details.snapshotFile
        ? {
            path: path.resolve(runDir, details.snapshotFile),
            local: existsSync(path.resolve(runDir, details.snapshotFile)),
          }
        : undefined,
    });
    lines.push(
      `pid ${oom.pid} in ${oom.target || "(no probed scope)"}: ${oom.message.split("\n")[0]}`,
      ...text,
    );
    return { pid: oom.pid, target: oom.target, details, text };
  });

  lines.push("", "== checklist 2.1");
  // The local source of a line (the checklist finds the `.contiguous()` line by its text).
  const lineText = (file: string, line: number): string | undefined => {
    try {
      return readFileSync(file, "utf8").split("\n")[line - 1];
    } catch {
      return undefined;
    }
  };
  const answers = evaluateChecklist({ run: model, lineText })
    .filter((r) => r.item.section === "2.1")
    .map((r) => ({ id: r.item.id, state: r.state, verdict: r.verdict, answer: r.answer }));
  for (const a of answers) lines.push(`${a.id}: [${a.state}${a.verdict ? ` ${a.verdict}` : ""}] ${a.answer}`);

  mkdirSync(outDir!, { recursive: true });
  writeFileSync(path.join(outDir!, "sites-display.txt"), `${lines.join("\n")}\n`);
  writeFileSync(
    path.join(outDir!, "sites-display.json"),
    `${JSON.stringify({ malformed: report.malformed, hints, table, ooms, answers }, null, 2)}\n`,
  );
  console.log(lines.join("\n"));
  return 0;
}

void main().then((code) => (process.exitCode = code));
