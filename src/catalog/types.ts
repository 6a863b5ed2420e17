// The hotspot catalog is data (hotspots.json); these are its types.

export type PhaseId =
  | "init_device"
  | "load_weights"
  | "convert_weights"
  | "workspace"
  | "profile"
  | "kv_cache"
  | "cuda_graphs"
  | "other";

export interface Phase {
  id: PhaseId;
  title: string;
  order: number;
}

export interface Hotspot {
  /** Stable id, e.g. "vllm.marlin.prepare_moe_fp4". */
  id: string;
  /** `module:qualname` as in the current vLLM tree. */
  function: string;
  /** Other `module:qualname` spellings (older/newer trees). */
  aliases: string[];
  phase: PhaseId;
  framework: "vllm" | "transformers";
  /** The question this hotspot answers, in the user's terms. */
  question: string;
  /** Where the name moved between versions, or what the function does that matters here. */
  note?: string;
}

export interface Catalog {
  version: 1;
  phases: Phase[];
  hotspots: Hotspot[];
}
