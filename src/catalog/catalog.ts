// Loads and checks the hotspot catalog (hotspots.json) and answers "is this function a hotspot?".
import { z } from "zod";
import { isFunctionSpec, parseFunctionSpec } from "../protocol/specs";
import catalogJson from "./hotspots.json";
import type { Catalog, ExpectedCalls, Hotspot, Phase, PhaseId, Scenario } from "./types";

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

const functionSpec = z.string().refine(isFunctionSpec, "must look like package.module:Qual.name");

const phaseSchema = z.object({
  id: z.enum(PHASE_IDS),
  title: z.string().min(1),
  order: z.number().int(),
});

const FRAMEWORKS = ["vllm", "transformers"] as const;

const scenarioSchema = z.object({
  id: z.string().min(1),
  framework: z.enum(FRAMEWORKS),
  version: z.string().min(1),
  model: z.string().min(1),
  call: z.string().min(1),
  process: z.string().min(1),
  note: z.string().optional(),
});

const count = z.number().int().nonnegative();

const expectedCallsSchema = z
  .object({
    scenarios: z.array(z.string().min(1)).min(1),
    when: z.string().min(1).optional(),
    calls: count.optional(),
    perForward: count.optional(),
    why: z.string().min(1),
  })
  .refine((e) => (e.calls === undefined) !== (e.perForward === undefined), {
    message: "give exactly one of calls and perForward",
  });

const hotspotSchema = z.object({
  id: z.string().min(1),
  function: functionSpec,
  aliases: z.array(functionSpec),
  phase: z.enum(PHASE_IDS),
  framework: z.enum(FRAMEWORKS),
  question: z.string().min(1),
  note: z.string().optional(),
  expectedCalls: z.array(expectedCallsSchema).optional(),
  sites: z.boolean().optional(),
});

const catalogSchema = z
  .object({
    version: z.literal(1),
    phases: z.array(phaseSchema).min(1),
    scenarios: z.array(scenarioSchema).optional(),
    hotspots: z.array(hotspotSchema),
  })
  .superRefine((catalog, ctx) => {
    const phaseIds = new Set(catalog.phases.map((p) => p.id));
    const scenarios = new Map<string, Scenario>();
    (catalog.scenarios ?? []).forEach((scenario, index) => {
      if (scenarios.has(scenario.id)) {
        ctx.addIssue({
          code: "custom",
          path: ["scenarios", index, "id"],
          message: `duplicate scenario "${scenario.id}"`,
        });
      }
      scenarios.set(scenario.id, scenario);
    });
    const ids = new Set<string>();
    const functions = new Map<string, string>();
    catalog.hotspots.forEach((hotspot, index) => {
      const path = ["hotspots", index];
      (hotspot.expectedCalls ?? []).forEach((expected, e) => {
        const seen = new Set<string>();
        expected.scenarios.forEach((id, s) => {
          const where = [...path, "expectedCalls", e, "scenarios", s];
          const scenario = scenarios.get(id);
          if (!scenario) {
            ctx.addIssue({ code: "custom", path: where, message: `scenario "${id}" is not in scenarios` });
          } else if (scenario.framework !== hotspot.framework) {
            ctx.addIssue({
              code: "custom",
              path: where,
              message: `scenario "${id}" is ${scenario.framework}, the hotspot ${hotspot.framework}`,
            });
          }
          if (seen.has(id)) {
            ctx.addIssue({ code: "custom", path: where, message: `scenario "${id}" listed twice` });
          }
          seen.add(id);
        });
      });
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
        const parts = parseFunctionSpec(spec);
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

  /** Start-ups whose call counts the catalog records. */
  get scenarios(): readonly Scenario[] {
    return this.data.scenarios ?? [];
  }

  scenario(id: string): Scenario | undefined {
    return this.scenarios.find((s) => s.id === id);
  }

  /**
   * What each hotspot is expected to do in `scenarioId`, in catalog order. With `when`, an
   * expectation that names a condition counts only if its condition is that string; unconditional
   * ones always count. A hotspot with several matching expectations is listed once per expectation.
   */
  expectationsFor(scenarioId: string, when?: string): { hotspot: Hotspot; expected: ExpectedCalls }[] {
    const out: { hotspot: Hotspot; expected: ExpectedCalls }[] = [];
    for (const hotspot of this.data.hotspots) {
      for (const expected of hotspot.expectedCalls ?? []) {
        if (!expected.scenarios.includes(scenarioId)) continue;
        if (when !== undefined && expected.when !== undefined && expected.when !== when) continue;
        out.push({ hotspot, expected });
      }
    }
    return out;
  }
}

let bundled: HotspotCatalog | undefined;

/** The catalog shipped with MemLens (bundled JSON), validated once. */
export function loadBundledCatalog(): HotspotCatalog {
  bundled ??= new HotspotCatalog(parseCatalog(catalogJson));
  return bundled;
}
