// The weight loading phase (checklist 2.1): the contiguous copy, repacking in place, whether the
// original weights are freed.
import { findTargets, NEEDS } from "../../budget/targets";
import { callDelta } from "../../model/runModel";
import { siteTotals, type SiteTotal } from "../../model/sites";
import {
  firstMeasured,
  finished,
  callEvidence,
  codeLinkOf,
  missing,
  originalExpertBytesPerLayer,
  b,
  n,
  type Rule,
  type RuleInput,
} from "../rule";

/** The conversion functions whose allocation sites answer 2.1 without a line probe. */
const CONVERSION_NEEDS = ["prepareMarlin", "processWeights"] as const;

/** Sites of the first conversion target that has any, with the number of its calls that sent them. */
function conversionSites(
  input: RuleInput,
): { target: string; sites: SiteTotal[]; calls: number } | undefined {
  for (const key of CONVERSION_NEEDS) {
    for (const target of findTargets(input.ctx, NEEDS[key], input.item.id)) {
      const events = input.run.sites.filter((e) => e.target === target);
      if (events.length > 0) return { target, sites: siteTotals(events), calls: events.length };
    }
  }
  return undefined;
}

const baseName = (file: string): string =>
  file.slice(Math.max(file.lastIndexOf("/"), file.lastIndexOf("\\")) + 1);

/**
 * The `.contiguous()` copy among a conversion's sites: the site on the line the line probe would
 * go on (by its text, where the source is readable), else the one the function makes itself (no
 * deeper root) and frees before returning, as a temporary copy is.
 */
function contiguousSite(input: RuleInput, sites: SiteTotal[]): SiteTotal | undefined {
  const wanted = NEEDS.contiguousLine.line!;
  const lineText = input.ctx.lineText;
  const byText = sites.find(
    (s) => baseName(s.file) === wanted.file && lineText?.(s.file, s.line)?.includes(wanted.contains) === true,
  );
  if (byText || lineText?.(sites[0]?.file ?? "", sites[0]?.line ?? 0) !== undefined) return byText;
  return sites.find(
    (s) =>
      baseName(s.file) === wanted.file &&
      COPY_FUNCTIONS.includes(s.function) &&
      s.root === undefined &&
      s.count > 1 &&
      s.liveAtExitBytes === 0 &&
      allocatesOnItsOwnLine(s),
  );
}

/** Where the per-expert loop with the copy lives: vLLM 0.26 moved it from
 * prepare_moe_fp4_layer_for_marlin into _repack_marlin_experts. */
const COPY_FUNCTIONS = [NEEDS.contiguousLine.line!.insideFunction, "_repack_marlin_experts"];

/** The line's own expression allocates (its stacks start at that line), rather than a Python
 * function it calls (the repack call on the next line allocates inside gptq_marlin_repack). */
function allocatesOnItsOwnLine(site: SiteTotal): boolean {
  const here = `${site.function} (${baseName(site.file)}:${site.line})`;
  return site.stacks.length === 0 || site.stacks.every((s) => s.stack.startsWith(here));
}

/** gptq_marlin_repack's allocations among a conversion's sites (its own frames, or the root of a line's). */
function repackSites(sites: SiteTotal[]): SiteTotal[] {
  const name = NEEDS.repack.function!.slice(NEEDS.repack.function!.lastIndexOf(":") + 1);
  return sites.filter((s) => s.function === name || s.root?.function === name);
}

function siteLink(site: SiteTotal): { file: string; line: number } {
  return { file: site.file, line: site.line };
}

/** The rules of section 2.1, by item id. */
export const rules: Record<string, Rule> = {
  "load.contiguous_copy": (input) => {
    const { item, run, ctx, t } = input;
    const found = firstMeasured(ctx, item, ["contiguousLine"]);
    if (!found) {
      const conversion = conversionSites(input);
      const site = conversion && contiguousSite(input, conversion.sites);
      if (conversion && site) {
        const each = Math.round(site.allocatedBytes / Math.max(1, site.count));
        return {
          state: "answered",
          verdict: site.allocatedBytes > 0 ? "yes" : "no",
          answer: t("contig.sites", {
            bytes: b(each),
            exact: n(each),
            count: n(site.count),
            calls: input.callsN(conversion.calls),
            perCall: n(Math.round(site.count / Math.max(1, conversion.calls))),
            freed: b(site.freedBytes),
            file: baseName(site.file),
            line: site.line,
          }),
          evidence: [
            {
              text: t("ev.site", { file: baseName(site.file), line: site.line, count: n(site.count) }),
              bytes: each,
              target: conversion.target,
              call: conversion.calls,
            },
          ],
          codeLink: siteLink(site),
        };
      }
      return missing(input, ["contiguousLine"], "what.repacked");
    }
    const calls = finished(found.calls);
    const sizes = calls.map((c) => Math.max(callDelta(c).peakAboveBefore ?? 0, callDelta(c).retained ?? 0));
    const max = Math.max(0, ...sizes);
    const first = calls[0]!;
    return {
      state: "answered",
      verdict: max > 0 ? "yes" : "no",
      answer:
        max > 0
          ? t("contig.yes", { bytes: b(max), exact: n(max), count: calls.length })
          : t("contig.no", { count: calls.length }),
      evidence: [
        {
          text: t("ev.linePeak", { count: calls.length }),
          bytes: max,
          target: found.summary!.target,
          call: calls.length,
          pid: first.pid,
        },
      ],
      codeLink:
        codeLinkOf(run, found.targets) ??
        (first.file && first.line ? { file: first.file, line: first.line } : undefined),
    };
  },
  "load.repack_inplace": (input) => {
    const { item, run, ctx, t, callsN } = input;
    const conversion = conversionSites(input);
    const repack = conversion ? repackSites(conversion.sites) : [];
    if (conversion && repack.length > 0) {
      const count = repack.reduce((sum, s) => sum + s.count, 0);
      const allocated = repack.reduce((sum, s) => sum + s.allocatedBytes, 0);
      const live = repack.reduce((sum, s) => sum + s.liveAtExitBytes, 0);
      const freed = repack.reduce((sum, s) => sum + s.freedBytes, 0);
      const each = Math.round(allocated / Math.max(1, count));
      const inPlace = allocated === 0;
      return {
        state: "answered",
        verdict: inPlace ? "yes" : "no",
        answer: inPlace
          ? t("repack.yes", { calls: callsN(count) })
          : t("repack.sites", {
              bytes: b(each),
              count: n(count),
              calls: callsN(conversion.calls),
              live: b(live),
              freed: b(freed),
            }),
        evidence: [
          {
            text: t("ev.repackSites", { count: n(count) }),
            bytes: allocated,
            target: conversion.target,
            call: conversion.calls,
          },
        ],
        codeLink: siteLink(repack[0]!),
      };
    }
    const found = firstMeasured(ctx, item, ["repack"]);
    if (!found) return missing(input, ["repack"], "what.repacked");
    const calls = finished(found.calls);
    const retained = calls.map((c) => callDelta(c).retained ?? 0);
    const peaks = calls.map((c) => callDelta(c).peakAboveBefore ?? 0);
    const newTensor = Math.max(0, ...retained, ...peaks);
    const inPlace = newTensor === 0;
    return {
      state: "answered",
      verdict: inPlace ? "yes" : "no",
      answer: inPlace
        ? t("repack.yes", { calls: callsN(calls.length) })
        : t("repack.no", { bytes: b(newTensor), calls: callsN(calls.length) }),
      evidence: [callEvidence(found.summary!, t("ev.largestCall"), newTensor)],
      codeLink: codeLinkOf(run, found.targets),
    };
  },
  "load.original_freed": (input) => {
    const { item, run, ctx, t } = input;
    // The enclosing conversion first: in vLLM 0.26 the originals go when process_weights_after_loading
    // replaces the layer's parameters, after prepare_moe_mxfp4_layer_for_marlin returned.
    const found = firstMeasured(ctx, item, ["processWeights", "prepareMarlin"]);
    if (!found) return missing(input, ["processWeights", "prepareMarlin"], "what.moeConverted");
    const s = found.summary!;
    // Sites answer only "yes" (a conversion freed blocks older than itself); no such frees inside
    // the function with sites says nothing of its caller, which may free them afterwards.
    const bySites = originalsFreedFromSites(input);
    if (bySites?.verdict === "yes") return { ...bySites, codeLink: codeLinkOf(run, found.targets) };
    const calls = finished(found.calls);
    const perCall = Math.max(...calls.map((c) => callDelta(c).retained ?? 0));
    const original = originalExpertBytesPerLayer(input);
    if (!original) {
      return {
        state: "needs_run",
        answer: t("freed.needConfig", { bytes: b(perCall) }),
        evidence: [callEvidence(s, t("ev.retainedPerCall", { spec: s.spec ?? s.target }), perCall)],
        nextProbes: [],
      };
    }
    const freed = perCall < original.bytes / 2;
    return {
      state: "answered",
      verdict: freed ? "yes" : "no",
      answer: t(freed ? "freed.yes" : "freed.no", { kept: b(perCall), original: b(original.bytes) }),
      evidence: [
        callEvidence(
          s,
          t("ev.retainedPerCallMax", { spec: s.spec ?? s.target, count: calls.length }),
          perCall,
        ),
        { text: t("ev.originalBytes", { source: original.source }), bytes: original.bytes },
      ],
      codeLink: codeLinkOf(run, found.targets),
    };
  },
};

/**
 * Whether a conversion freed what existed before it (the original weights) and what it keeps of
 * its own, from its calls' sites: frees of older blocks are `freed_earlier_bytes`, its own blocks
 * still live at exit are the new layout.
 */
function originalsFreedFromSites(input: RuleInput): Omit<ReturnType<Rule>, "codeLink"> | undefined {
  const { t } = input;
  for (const key of CONVERSION_NEEDS) {
    for (const target of findTargets(input.ctx, NEEDS[key], input.item.id)) {
      // A call that raised (an OOM halfway) did not finish converting: its frees say nothing.
      const events = input.run.sites.filter(
        (e) => e.target === target && !input.run.scope(e.pid, e.scope_id)?.raised,
      );
      if (events.length === 0) continue;
      const freedEarlier = Math.max(...events.map((e) => e.freed_earlier_bytes));
      const kept = Math.max(
        ...events.map((e) => e.sites.reduce((sum, site) => sum + site.live_at_exit_bytes, 0)),
      );
      const temporary = Math.max(
        ...events.map((e) => e.sites.reduce((sum, site) => sum + site.freed_bytes, 0)),
      );
      const freed = freedEarlier > 0;
      return {
        state: "answered",
        verdict: freed ? "yes" : "no",
        answer: t(freed ? "freed.sitesYes" : "freed.sitesNo", {
          freed: b(freedEarlier),
          kept: b(kept),
          temporary: b(temporary),
          calls: input.callsN(events.length),
        }),
        evidence: [
          {
            text: t("ev.freedEarlier", { count: events.length }),
            bytes: freedEarlier,
            target,
            call: events.length,
          },
          { text: t("ev.keptBySites", { count: events.length }), bytes: kept, target, call: events.length },
        ],
      };
    }
  }
  return undefined;
}
