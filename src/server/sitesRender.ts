// Text of the allocation sites (the lines inside a probed function where its memory went) and of
// an OOM's forensic fields: the inlay label of a line, its hover, and the lines added to the OOM
// diagnostic. Pure functions, so each string is tested without a server.
import * as path from "node:path";
import { formatBytes, formatDelta } from "../model/format";
import { escapeMarkdown, markdownCode } from "../model/markdown";
import {
  isPartialCoverage,
  siteFate,
  type LineSite,
  type OomDetails,
  type SiteCoverage,
} from "../model/sites";
import { translator, type Lang } from "../l10n/lang";
import { SERVER_TEXT } from "../l10n/server";

const LINE_BREAKS = /[\r\n\u2028\u2029]+/g;
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f]/g;

/** Counts as written in a label: 1,536 rather than 1536. */
const count = (n: number): string => n.toLocaleString("en-US");

/** Bytes per block, on average: a line's sites add up its blocks, not their sizes one by one. */
function perBlock(bytes: number, blocks: number): number {
  return blocks > 0 ? Math.round(bytes / blocks) : bytes;
}

/**
 * "+7.9 MiB ×768 · freed" (768 blocks of 7.9 MiB, all freed before the function returned),
 * "retains 2.5 KiB ×24" (each block still allocated), "+128.0 MiB ×7 · retains 768.0 MiB" (some
 * kept: the amount kept). The size is per block, averaged over the line's blocks.
 */
export function siteInlayLabel(site: LineSite, lang: Lang = "en"): string {
  const t = translator(SERVER_TEXT, lang);
  const fate = siteFate(site);
  const args = {
    delta: formatDelta(perBlock(site.allocatedBytes, site.count)),
    bytes: formatBytes(
      fate === "retained" ? perBlock(site.liveAtExitBytes, site.count) : site.liveAtExitBytes,
    ),
    count: count(site.count),
  };
  const label =
    fate === "freed"
      ? t("sites.freed", args)
      : fate === "retained"
        ? t("sites.retained", args)
        : t("sites.partly", args);
  return site.rank ? `${label}${t("sites.onRank", { rank: site.rank.rank, of: site.rank.of })}` : label;
}

export interface SiteHoverContext {
  runLabel: string;
  /** The target's label (its qualname or spec). */
  target: string;
  /** Labels of the other targets whose sites hold this line. */
  alsoIn: string[];
  /** How many of the target's calls sent sites (the probe records the first ones only). */
  coverage?: SiteCoverage;
  lang?: Lang;
}

/** Markdown for a line with allocation sites: its totals and its most frequent stacks. */
export function siteHover(site: LineSite, ctx: SiteHoverContext): string {
  const lang = ctx.lang ?? "en";
  const t = translator(SERVER_TEXT, lang);
  const lines = [
    t("sites.hoverTitle", { run: escapeMarkdown(ctx.runLabel), target: markdownCode(ctx.target) }),
    "",
    escapeMarkdown(siteInlayLabel(site, lang)),
    "",
    escapeMarkdown(
      t("sites.hoverTotals", {
        allocated: formatBytes(site.allocatedBytes),
        count: count(site.count),
        each: formatBytes(perBlock(site.allocatedBytes, site.count)),
        calls: site.calls,
        freed: formatBytes(site.freedBytes),
        live: formatBytes(site.liveAtExitBytes),
        atPeak: formatBytes(site.atPeakBytes),
      }),
    ),
  ];
  const coverage = ctx.coverage;
  if (coverage && isPartialCoverage(coverage)) {
    lines.push(
      "",
      escapeMarkdown(
        t(coverage.limited ? "sites.coverageFirst" : "sites.coverage", {
          recorded: coverage.recordedCalls,
          calls: coverage.calls,
        }),
      ),
    );
  }
  const root = site.root;
  if (root && (root.file !== site.file || root.line !== site.line)) {
    lines.push(
      "",
      t("sites.root", {
        function: markdownCode(root.function),
        file: escapeMarkdown(path.basename(root.file)),
        line: root.line,
      }),
    );
  }
  if (site.stacks.length > 0) {
    lines.push("", t("sites.stacks"), "");
    for (const stack of site.stacks) lines.push(`- ${count(stack.count)} · ${markdownCode(stack.stack)}`);
  }
  if (ctx.alsoIn.length > 0) {
    lines.push("", t("sites.alsoIn", { targets: ctx.alsoIn.map((label) => markdownCode(label)).join(", ") }));
  }
  return lines.join("\n");
}

/**
 * The lines an OOM diagnostic adds when the probe sent its forensic fields: where in the probed
 * scopes and phase, the request, the allocator's free / reserved / fragmentation, the largest live
 * blocks by allocation site, the snapshot file. Plain text (diagnostics are not markdown).
 */
export interface OomContext {
  /** The phase of the hotspot the OOM was raised in, in the editor's language. */
  phase?: string;
  /** Labels of the probed scopes open at the OOM (scope_stack's target ids), outermost first. */
  scopes: string[];
  /** The snapshot's path; `local`: on this machine, so it can be opened here. */
  snapshot?: { path: string; local: boolean };
}

export function oomDetailLines(details: OomDetails, ctx: OomContext, lang: Lang = "en"): string[] {
  const { phase, snapshot } = ctx;
  const t = translator(SERVER_TEXT, lang);
  const out: string[] = [];
  const forensic =
    details.scopeStack.length > 0 ||
    details.requestBytes !== undefined ||
    details.allocator !== undefined ||
    details.largestBlocks.length > 0 ||
    snapshot !== undefined;
  // An older probe's OOM stays one line, as it always was.
  if (!forensic) return out;
  if (ctx.scopes.length > 0 || phase !== undefined) {
    const scopes = ctx.scopes.join(" › ");
    out.push(
      (scopes ? t("oom.scopes", { scopes }) : "") + (phase !== undefined ? t("oom.phase", { phase }) : ""),
    );
  }
  const state: string[] = [];
  if (details.requestBytes !== undefined)
    state.push(t("oom.request", { bytes: formatBytes(details.requestBytes) }));
  const a = details.allocator;
  if (a?.free_bytes !== undefined) {
    state.push(
      t("oom.free", {
        free: formatBytes(a.free_bytes),
        total: a.total_bytes === undefined ? "?" : formatBytes(a.total_bytes),
      }),
    );
  }
  if (a?.reserved_bytes !== undefined)
    state.push(t("oom.reserved", { reserved: formatBytes(a.reserved_bytes) }));
  if (a?.allocated_bytes !== undefined)
    state.push(t("oom.allocated", { allocated: formatBytes(a.allocated_bytes) }));
  if (a?.inactive_split_bytes !== undefined)
    state.push(t("oom.split", { bytes: formatBytes(a.inactive_split_bytes) }));
  if (state.length > 0) out.push(state.join("; "));
  if (details.largestBlocks.length > 0) {
    const blocks = details.largestBlocks.slice(0, 5).map((b) =>
      t("oom.block", {
        bytes: formatBytes(b.bytes),
        file: path.basename(b.file),
        line: b.line,
        function: b.function,
      }),
    );
    out.push(t("oom.largest", { blocks: blocks.join("; ") }));
  }
  if (snapshot !== undefined) {
    out.push(t(snapshot.local ? "oom.snapshot" : "oom.snapshotRemote", { file: snapshot.path }));
  }
  // Text from the event: one line each, control characters out.
  return out.map((line) => line.replace(LINE_BREAKS, " ").replace(CONTROL, ""));
}
