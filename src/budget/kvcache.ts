// KV-cache bytes per token from a Hugging Face config.json: full-attention layers grow with the
// context, sliding-window layers stop at the window.

export interface KvModel {
  layers: number;
  fullLayers: number;
  slidingLayers: number;
  /** null when no layer slides. */
  slidingWindow: number | null;
  kvHeads: number;
  headDim: number;
  dtype: string;
  dtypeBytes: number;
  /** K and V of one token in one layer: 2 × kvHeads × headDim × dtypeBytes. */
  bytesPerTokenPerLayer: number;
  /** What each token of context adds in the full-attention layers. */
  fullBytesPerToken: number;
  /** What each token adds in the sliding layers, up to `slidingWindow` tokens. */
  slidingBytesPerToken: number;
  /** The text of the formula, for the arithmetic view. */
  formula: string;
}

// A Map: the dtype comes from config.json or a setting, and "__proto__" or "constructor" must not
// find an object's inherited members.
const KV_DTYPE_BYTES: ReadonlyMap<string, number> = new Map([
  ["bfloat16", 2],
  ["float16", 2],
  ["half", 2],
  ["float32", 4],
  ["float", 4],
  ["fp8", 1],
  ["fp8_e4m3", 1],
  ["fp8_e5m2", 1],
  ["float8_e4m3fn", 1],
]);

export class ConfigError extends Error {
  override name = "ConfigError";
}

function positiveInt(config: Record<string, unknown>, key: string): number | undefined {
  const v = Object.hasOwn(config, key) ? config[key] : undefined;
  return typeof v === "number" && Number.isSafeInteger(v) && v > 0 ? v : undefined;
}

/**
 * `kvCacheDtype`: vLLM's `--kv-cache-dtype` ("auto" follows the model dtype; BF16 when the
 * config names none, as gpt-oss's does not).
 */
export function kvModelFromConfig(config: Record<string, unknown>, kvCacheDtype = "auto"): KvModel {
  // Some configs (multimodal) keep the language model's fields under text_config.
  const text: Record<string, unknown> =
    typeof config.text_config === "object" && config.text_config !== null
      ? { ...config, ...(config.text_config as Record<string, unknown>) }
      : config;
  const layers = positiveInt(text, "num_hidden_layers");
  const heads = positiveInt(text, "num_attention_heads");
  if (layers === undefined || heads === undefined) {
    throw new ConfigError(
      "config.json lacks num_hidden_layers or num_attention_heads: cannot size the KV cache. Is this a decoder model's config?",
    );
  }
  const kvHeads = positiveInt(text, "num_key_value_heads") ?? heads;
  const hidden = positiveInt(text, "hidden_size");
  const headDim = positiveInt(text, "head_dim") ?? (hidden !== undefined ? hidden / heads : undefined);
  if (headDim === undefined || !Number.isInteger(headDim)) {
    throw new ConfigError(
      "config.json gives neither head_dim nor a hidden_size divisible by num_attention_heads.",
    );
  }
  const dtype =
    kvCacheDtype === "auto"
      ? (typeof text.torch_dtype === "string"
          ? text.torch_dtype
          : typeof text.dtype === "string"
            ? text.dtype
            : "bfloat16"
        ).replace(/^torch\./, "")
      : kvCacheDtype;
  const dtypeBytes = KV_DTYPE_BYTES.get(dtype);
  if (dtypeBytes === undefined) {
    throw new ConfigError(
      `KV cache dtype ${JSON.stringify(dtype.slice(0, 60))} is not one MemLens knows (${[...KV_DTYPE_BYTES.keys()].join(", ")}).`,
    );
  }
  const window = positiveInt(text, "sliding_window");
  let slidingLayers = 0;
  if (text.layer_types !== undefined && text.layer_types !== null) {
    // One entry per layer (transformers checks the same); more sliding layers than layers would
    // make the full-attention count negative, and with it every token figure.
    const types = text.layer_types;
    if (!Array.isArray(types) || !types.every((t) => typeof t === "string")) {
      throw new ConfigError("config.json's layer_types is not a list of layer type names.");
    }
    if (types.length !== layers) {
      throw new ConfigError(
        `config.json's layer_types has ${types.length} entries but num_hidden_layers is ${layers}: one entry per layer is expected.`,
      );
    }
    slidingLayers = types.filter((t) => t === "sliding_attention").length;
  } else if (window !== undefined && text.use_sliding_window !== false) {
    slidingLayers = layers;
  }
  const slidingWindow = slidingLayers > 0 && window !== undefined ? window : null;
  if (slidingWindow === null) slidingLayers = 0;
  const fullLayers = layers - slidingLayers;
  const perLayer = 2 * kvHeads * headDim * dtypeBytes;
  return {
    layers,
    fullLayers,
    slidingLayers,
    slidingWindow,
    kvHeads,
    headDim,
    dtype,
    dtypeBytes,
    bytesPerTokenPerLayer: perLayer,
    fullBytesPerToken: fullLayers * perLayer,
    slidingBytesPerToken: slidingLayers * perLayer,
    formula:
      `2 (K,V) × ${kvHeads} kv heads × ${headDim} head_dim × ${dtypeBytes} B (${dtype}) = ${perLayer} B per token per layer; ` +
      `${fullLayers} full-attention layers × ${perLayer} = ${fullLayers * perLayer} B per token` +
      (slidingLayers > 0
        ? ` + ${slidingLayers} sliding layers × ${perLayer} = ${slidingLayers * perLayer} B per token up to ${slidingWindow} tokens`
        : ""),
  };
}

/** KV bytes one sequence of `tokens` tokens needs. */
export function kvBytesForTokens(kv: KvModel, tokens: number): number {
  const slidingTokens = kv.slidingWindow === null ? 0 : Math.min(tokens, kv.slidingWindow);
  return kv.fullBytesPerToken * tokens + kv.slidingBytesPerToken * slidingTokens;
}

/** Most tokens of one sequence that fit in `bytes` of KV cache. */
export function kvTokensForBytes(kv: KvModel, bytes: number): number {
  if (bytes <= 0) return 0;
  const perTokenAll = kv.fullBytesPerToken + kv.slidingBytesPerToken;
  if (perTokenAll === 0) return 0;
  const window = kv.slidingWindow ?? 0;
  if (kv.slidingBytesPerToken > 0 && bytes <= perTokenAll * window) return Math.floor(bytes / perTokenAll);
  if (kv.fullBytesPerToken === 0) return Number.POSITIVE_INFINITY;
  const slidingCap = kv.slidingBytesPerToken * window;
  return Math.floor((bytes - slidingCap) / kv.fullBytesPerToken);
}
