// Loads and checks the hotspot catalog (hotspots.json) and answers "is this function a hotspot?".
import { z } from "zod";
import catalogJson from "./hotspots.json";
import type { Catalog, Hotspot, Phase, PhaseId } from "./types";

/** Every load phase id, in load order; also the values `stopAtPhases` takes. */
export const PHASE_IDS = [
  "init_device",
  "load_weights",
  "convert_weights",
  "workspace",
  "profile",
  "kv_cache",
  "cuda_graphs",
  "other",
] as const satisfies readonly PhaseId[];

/** `pkg.mod:Qual.name` — a dotted module, a colon, a dotted qualname (`<locals>` allowed). */
const FUNCTION_SPEC =
  /^[\p{L}_][\p{L}\p{N}_]*(\.[\p{L}_][\p{L}\p{N}_]*)*:([\p{L}_][\p{L}\p{N}_]*|<locals>)(\.([\p{L}_][\p{L}\p{N}_]*|<locals>))*$/u;

const functionSpec = z.string().regex(FUNCTION_SPEC, "must look like package.module:Qual.name");

const phaseSchema = z.object({
  id: z.enum(PHASE_IDS),
  title: z.string().min(1),
  order: z.number().int(),
});

const hotspotSchema = z.object({
  id: z.string().min(1),
  function: functionSpec,
  aliases: z.array(functionSpec),
  phase: z.enum(PHASE_IDS),
  framework: z.enum(["vllm", "transformers"]),
  question: z.string().min(1),
  note: z.string().optional(),
});

const catalogSchema = z
  .object({
    version: z.literal(1),
    phases: z.array(phaseSchema).min(1),
    hotspots: z.array(hotspotSchema),
  })
  .superRefine((catalog, ctx) => {
    const phaseIds = new Set(catalog.phases.map((p) => p.id));
    const ids = new Set<string>();
    const functions = new Map<string, string>();
    catalog.hotspots.forEach((hotspot, index) => {
      const path = ["hotspots", index];
      if (!phaseIds.has(hotspot.phase)) {
        ctx.addIssue({
          code: "custom",
          path: [...path, "phase"],
          message: `phase "${hotspot.phase}" is not in phases`,
        });
      }
      if (ids.has(hotspot.id)) {
        ctx.addIssue({ code: "custom", path: [...path, "id"], message: `duplicate id "${hotspot.id}"` });
      }
      ids.add(hotspot.id);
      for (const spec of [hotspot.function, ...hotspot.aliases]) {
        const owner = functions.get(spec);
        if (owner !== undefined) {
          ctx.addIssue({
            code: "custom",
            path,
            message: `function ${spec} of "${hotspot.id}" is already listed by "${owner}"`,
          });
        }
        functions.set(spec, hotspot.id);
      }
    });
  });

export class CatalogError extends Error {
  constructor(readonly issues: string[]) {
    super(`The hotspot catalog is invalid:\n${issues.map((i) => `  - ${i}`).join("\n")}`);
    this.name = "CatalogError";
  }
}

/** Validates catalog JSON; throws CatalogError naming every problem and where it is. */
export function parseCatalog(value: unknown): Catalog {
  const result = catalogSchema.safeParse(value);
  if (!result.success) {
    throw new CatalogError(result.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`));
  }
  return result.data;
}

export interface FunctionSpec {
  module: string;
  qualname: string;
}

/** Splits `pkg.mod:Qual.name`; undefined when there is no colon or a side is empty. */
export function splitFunctionSpec(spec: string): FunctionSpec | undefined {
  const colon = spec.indexOf(":");
  if (colon <= 0 || colon === spec.length - 1) return undefined;
  return { module: spec.slice(0, colon), qualname: spec.slice(colon + 1) };
}

/** `/abs/file.py:123` → file and 1-based line; undefined for `module:qualname`. */
export function splitLineSpec(spec: string): { file: string; line: number } | undefined {
  const match = /^(.*):(\d+)$/.exec(spec);
  if (!match || !/[\\/]|\.pyw?$/.test(match[1]!)) return undefined;
  return { file: match[1]!, line: Number(match[2]) };
}

export interface HotspotMatch {
  hotspot: Hotspot;
  /** The spelling that matched: the hotspot's function or one of its aliases. */
  spec: string;
  isAlias: boolean;
}

/** The catalog with lookups by id, by `module:qualname` (aliases included) and by module. */
export class HotspotCatalog {
  private readonly byIdMap = new Map<string, Hotspot>();
  private readonly bySpec = new Map<string, HotspotMatch>();
  private readonly byModuleMap = new Map<string, HotspotMatch[]>();
  private readonly phaseMap = new Map<PhaseId, Phase>();

  constructor(readonly data: Catalog) {
    for (const phase of data.phases) this.phaseMap.set(phase.id, phase);
    for (const hotspot of data.hotspots) {
      this.byIdMap.set(hotspot.id, hotspot);
      const specs = [hotspot.function, ...hotspot.aliases];
      specs.forEach((spec, index) => {
        const match: HotspotMatch = { hotspot, spec, isAlias: index > 0 };
        this.bySpec.set(spec, match);
        const parts = splitFunctionSpec(spec);
        if (!parts) return;
        let list = this.byModuleMap.get(parts.module);
        if (!list) this.byModuleMap.set(parts.module, (list = []));
        list.push(match);
      });
    }
  }

  get hotspots(): readonly Hotspot[] {
    return this.data.hotspots;
  }

  /** Phases in load order. */
  get phases(): Phase[] {
    return [...this.data.phases].sort((a, b) => a.order - b.order);
  }

  phase(id: PhaseId): Phase | undefined {
    return this.phaseMap.get(id);
  }

  byId(id: string): Hotspot | undefined {
    return this.byIdMap.get(id);
  }

  /** `module:qualname`, current name or alias. */
  lookup(spec: string): HotspotMatch | undefined {
    return this.bySpec.get(spec);
  }

  lookupParts(module: string, qualname: string): HotspotMatch | undefined {
    return this.bySpec.get(`${module}:${qualname}`);
  }

  /** Every spelling of every hotspot defined in `module`. */
  inModule(module: string): readonly HotspotMatch[] {
    return this.byModuleMap.get(module) ?? [];
  }
}

let bundled: HotspotCatalog | undefined;

/** The catalog shipped with MemLens (bundled JSON), validated once. */
export function loadBundledCatalog(): HotspotCatalog {
  bundled ??= new HotspotCatalog(parseCatalog(catalogJson));
  return bundled;
}
