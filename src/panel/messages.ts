// Messages from the webview are checked before the host acts on them: the webview shows text
// from the target's events, so it is treated as input, not trusted code.
import { z } from "zod";
import {
  ClearCompare,
  OpenSource,
  PickCompare,
  Ready,
  SavePng,
  SORT_COLUMNS,
  TIMELINE_READINGS,
  WebviewError,
  type Envelope,
  type OpenSourceParams,
  type PanelState,
  type SavePngParams,
  type WebviewErrorParams,
  type AllocatorSnapshotView,
} from "../../webview/protocol";
import { siteTotalsOf } from "../model/sites";
import { parseAllocatorSnapshotData } from "../runner/allocatorSnapshot";
import { siteRows } from "./viewModel";

const panelState = z.object({
  version: z.literal(1),
  runId: z.string().optional(),
  pinned: z.boolean().optional(),
  compare: z.object({ a: z.string(), b: z.string() }).optional(),
  hiddenPids: z.array(z.number()),
  hiddenReadings: z.array(z.enum(TIMELINE_READINGS)),
  sort: z.object({ column: z.enum(SORT_COLUMNS), descending: z.boolean() }),
  expanded: z.array(z.string()),
  zoom: z.object({ min: z.number(), max: z.number() }).optional(),
}) satisfies z.ZodType<PanelState>;

/** The webview's saved state as VS Code hands it to the serializer; undefined if unusable. */
export function parsePanelState(raw: unknown): PanelState | undefined {
  const parsed = panelState.safeParse(raw);
  return parsed.success ? parsed.data : undefined;
}

const schemas: Record<string, z.ZodType | undefined> = {
  [Ready.method]: z.object({}),
  [OpenSource.method]: z.object({
    file: z.string().min(1),
    line: z.number().int().min(1),
  }) satisfies z.ZodType<OpenSourceParams>,
  [SavePng.method]: z.object({
    chart: z.enum(["timeline", "budget"]),
    dataUrl: z.string(),
    path: z.string().optional(),
  }) satisfies z.ZodType<SavePngParams>,
  [PickCompare.method]: z.object({}),
  [ClearCompare.method]: z.object({}),
  [WebviewError.method]: z.object({
    message: z.string(),
    stack: z.string().optional(),
  }) satisfies z.ZodType<WebviewErrorParams>,
};

/**
 * The checked message (its params match its method's schema, so `isMessage` narrowing is sound),
 * or why it was refused.
 */
export function parseWebviewMessage(
  raw: unknown,
): { ok: true; message: Envelope } | { ok: false; reason: string } {
  if (typeof raw !== "object" || raw === null) return { ok: false, reason: "not an object" };
  const { method, params } = raw as { method?: unknown; params?: unknown };
  const schema = typeof method === "string" && Object.hasOwn(schemas, method) ? schemas[method] : undefined;
  if (typeof method !== "string" || !schema)
    return { ok: false, reason: `unknown method ${JSON.stringify(method)}` };
  const parsed = schema.safeParse(params);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return {
      ok: false,
      reason: `${method}: ${issue ? `${issue.path.join(".") || "params"}: ${issue.message}` : "invalid"}`,
    };
  }
  return { ok: true, message: { method, params: parsed.data } };
}

/**
 * What "Open Allocator Snapshot" read (src/runner/allocatorSnapshot.ts AllocatorSnapshotData) as
 * the panel shows it; undefined when it is not that (the command is callable by anyone).
 */
export function parseAllocatorSnapshot(raw: unknown): AllocatorSnapshotView | undefined {
  const data = parseAllocatorSnapshotData(raw);
  if (!data) return undefined;
  const { file, timeline, sites, peakBytes } = data;
  return { file, timeline, peakBytes, sites: siteRows(siteTotalsOf("snapshot", sites)) };
}
