/**
 * KV cache element types as the scheduler sees them: bytes per element for the memory estimate, and the one shape
 * rule llama.cpp enforces when it creates a context (a quantized cache's block of 32 must divide the head size).
 */
import { LlmosError } from "../errors.js";

/** A K/V cache element type. */
export type KvCacheType = "f16" | "q8_0" | "q4_0";
/** K and V cache element types. */
export interface KvCacheTypes {
  k: KvCacheType;
  v: KvCacheType;
}

/** Bytes per cached element: f16 2; q8_0 34 bytes per block of 32; q4_0 18 per 32. */
export const KV_BYTES_PER_ELEMENT: Readonly<Record<KvCacheType, number>> = { f16: 2, q8_0: 34 / 32, q4_0: 18 / 32 };

/** The K and V cache types a model loads with, and whether the daemon's setting had to give way to f16. */
export interface KvCacheChoice {
  kv: KvCacheTypes;
  /** The daemon-wide type does not fit this model's head size: f16 is used for it instead. */
  fellBack: boolean;
}

/**
 * The model's setting (PARAMETER kv_cache_type[_k|_v]) over the daemon's (LLMOS_KV_CACHE_TYPE). A quantized cache
 * needs attention heads whose size is a multiple of its block (32), or llama.cpp fails the context ("K cache type
 * q8_0 with block size 32 does not divide n_embd_head_k"): the daemon's setting then falls back to f16 for this
 * model (as Ollama does where a quantized cache is unsupported), while the model's own setting is refused.
 * @throws LlmosError `invalid_request` naming the model, the type and the head size.
 */
export function chooseKvCacheTypes(
  model: string,
  headDim: number,
  fromModel: Partial<KvCacheTypes> | undefined,
  daemon: KvCacheTypes,
): KvCacheChoice {
  let fellBack = false;
  const pick = (which: "k" | "v"): KvCacheType => {
    const own = fromModel?.[which];
    const type = own ?? daemon[which];
    if (type === "f16" || headDim % 32 === 0) return type;
    if (own === undefined) {
      fellBack = true;
      return "f16";
    }
    throw new LlmosError(
      "invalid_request",
      `${model}: a ${type} ${which.toUpperCase()} cache needs attention heads whose size is a multiple of 32; ` +
        `this model's are ${headDim}: use f16`,
      { kvCacheType: type, headDim },
    );
  };
  return { kv: { k: pick("k"), v: pick("v") }, fellBack };
}
