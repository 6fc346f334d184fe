/** The KV cache element types llmos offers, as ggml type ids (ggml.h `enum ggml_type`). */
export const KV_CACHE_GGML_TYPES = { f16: 1, q8_0: 8, q4_0: 2 } as const;
/** A KV cache element type. */
export type KvCacheTypeName = keyof typeof KV_CACHE_GGML_TYPES;
