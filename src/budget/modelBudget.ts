// A model's theoretical budget: checkpoint bytes (exact, from the headers), KV bytes per token
// (from config.json) and the labelled estimates that depend on them.
import { summarizeTensors, type CheckpointSummary, type TensorLike } from "./checkpoint";
import {
  checklistTheory,
  marlinMxfp4Estimate,
  type ChecklistTheory,
  type MarlinMxfp4Estimate,
} from "./estimates";
import { kvModelFromConfig, type KvModel } from "./kvcache";
import {
  readCheckpoint,
  readModelConfig,
  tensorBytes,
  type ByteSource,
  type CheckpointInventory,
} from "./safetensors";
import knownGptOss20b from "./known/gpt-oss-20b.json";

export interface ModelBudget {
  /** Where the numbers come from: "safetensors headers of DIR (3 files)" or the bundled inventory. */
  origin: string;
  config: Record<string, unknown>;
  tensors: TensorLike[];
  summary: CheckpointSummary;
  kv?: KvModel;
  /** Why kv is absent. */
  kvError?: string;
  marlin?: MarlinMxfp4Estimate;
  theory: ChecklistTheory;
  inventory?: CheckpointInventory;
  warnings: string[];
}

export interface BudgetOptions {
  kvCacheDtype?: string;
}

export function modelBudgetFromTensors(
  config: Record<string, unknown>,
  tensors: TensorLike[],
  origin: string,
  options: BudgetOptions = {},
): ModelBudget {
  const summary = summarizeTensors(tensors);
  let kv: KvModel | undefined;
  let kvError: string | undefined;
  try {
    kv = kvModelFromConfig(config, options.kvCacheDtype);
  } catch (err) {
    kvError = err instanceof Error ? err.message : String(err);
  }
  return {
    origin,
    config,
    tensors,
    summary,
    kv,
    kvError,
    marlin: marlinMxfp4Estimate(config, tensors, summary),
    theory: checklistTheory(summary),
    warnings: [],
  };
}

/** Reads config.json and every safetensors header of a model folder (local or remote). */
export async function loadModelBudget(
  source: ByteSource,
  dir: string,
  options: BudgetOptions = {},
): Promise<ModelBudget> {
  const config = await readModelConfig(source, dir);
  const inventory = await readCheckpoint(source, dir);
  const where = source.where === "local" ? "" : ` on ${source.where}`;
  const origin = `safetensors headers of ${dir}${where} (${inventory.files.length} file${inventory.files.length === 1 ? "" : "s"})`;
  const budget = modelBudgetFromTensors(config, inventory.tensors, origin, options);
  budget.inventory = inventory;
  budget.warnings.push(...inventory.warnings);
  return budget;
}

interface KnownInventory {
  name: string;
  config: Record<string, unknown>;
  tensors: Record<string, { dtype: string; shape: number[] }>;
}

const KNOWN: readonly KnownInventory[] = [knownGptOss20b as KnownInventory];

/**
 * Bundled tensor inventories of published checkpoints (names, dtypes, shapes; no weights), so
 * the budget works before the checkpoint is on this machine.
 */
export function knownModelBudget(name: string, options: BudgetOptions = {}): ModelBudget | undefined {
  const known = KNOWN.find((k) => k.name === name || name.endsWith(`/${k.name.split("/")[1]}`));
  if (!known) return undefined;
  const tensors: TensorLike[] = Object.entries(known.tensors).map(([tensorName, t]) => {
    const elements = t.shape.reduce((a, b) => a * b, 1);
    return {
      name: tensorName,
      dtype: t.dtype,
      shape: t.shape,
      elements,
      bytes: tensorBytes(t.dtype, t.shape),
    };
  });
  return modelBudgetFromTensors(
    known.config,
    tensors,
    `bundled tensor inventory of ${known.name} (published checkpoint; no local files read)`,
    options,
  );
}

export function knownModelNames(): string[] {
  return KNOWN.map((k) => k.name);
}
