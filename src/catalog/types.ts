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

/** A start-up whose call counts the catalog records, read from that version's source. */
export interface Scenario {
  /** Stable id that expectations name, e.g. "vllm-0.26.0-gpt-oss-20b-eager". */
  id: string;
  framework: "vllm" | "transformers";
  /** The framework version the counts were read from, e.g. "0.26.0". */
  version: string;
  /** The model, e.g. "openai/gpt-oss-20b". */
  model: string;
  /** The call that starts it, e.g. `LLM(model=DIR, load_format="dummy", …)`. */
  call: string;
  /** The process the load path runs in, by multiprocessing name (e.g. "EngineCore"). */
  process: string;
  /** How the start-up runs: process layout, how many forward passes, what the counts depend on. */
  note?: string;
}

/** How often a hotspot runs in one or more scenarios. Exactly one of `calls` and `perForward`. */
export interface ExpectedCalls {
  /** Scenario ids this count holds for. */
  scenarios: string[];
  /** What else the count depends on, e.g. `moe_backend="marlin"`; absent when it holds for the whole scenario. */
  when?: string;
  /** Calls in the whole start-up. */
  calls?: number;
  /** Calls per model forward pass (profile run, warm-up, capture), for functions inside the forward. */
  perForward?: number;
  /** Why this is the count, in terms of the model (e.g. "one per MoE layer: 24"). */
  why: string;
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
  /** Call counts in known start-ups (see Catalog.scenarios), where the source makes them knowable. */
  expectedCalls?: ExpectedCalls[];
  /** Record where its memory goes, line by line (torch's memory history, the `sites` event), by default. */
  sites?: boolean;
}

export interface Catalog {
  version: 1;
  phases: Phase[];
  /** Start-ups that hotspots' expectedCalls refer to. */
  scenarios?: Scenario[];
  hotspots: Hotspot[];
}
