import { modelShapeOf } from "./scheduler/memory-estimator.js";
import type { ModelSource, ModelSpec } from "./scheduler/model-spec.js";
import { canonicalModelName, readThroughPageCache, toModelDetails, type ModelStore } from "./store/index.js";

type KvType = "f16" | "q8_0" | "q4_0";

/** PARAMETER kv_cache_type (both) and kv_cache_type_k / _v (each, winning) as the scheduler's default. */
function kvCacheTypeOf(p: Record<string, unknown>): { kvCacheType?: { k?: KvType; v?: KvType } } {
  const both = typeof p.kv_cache_type === "string" ? (p.kv_cache_type as KvType) : undefined;
  const k = typeof p.kv_cache_type_k === "string" ? (p.kv_cache_type_k as KvType) : both;
  const v = typeof p.kv_cache_type_v === "string" ? (p.kv_cache_type_v as KvType) : both;
  if (k === undefined && v === undefined) return {};
  return { kvCacheType: { ...(k ? { k } : {}), ...(v ? { v } : {}) } };
}

/** The store as the scheduler sees it: canonical names and leased model files with their shapes. */
export class StoreModelSource implements ModelSource {
  constructor(private readonly store: ModelStore) {}

  canonicalName(name: string): string {
    return canonicalModelName(name);
  }

  async acquire(name: string): Promise<ModelSpec> {
    const lease = await this.store.acquire(name);
    const { record } = lease;
    const s = record.summary;
    const p = record.definition.parameters;
    return {
      name: record.name,
      digest: record.digest,
      modelPath: lease.modelPath,
      adapterPaths: [...lease.adapterPaths],
      size: record.size,
      details: toModelDetails(record),
      shape: modelShapeOf(s),
      trainContextSize: s.contextLength ?? 0,
      defaults: {
        ...(typeof p.num_ctx === "number" ? { contextSize: p.num_ctx } : {}),
        ...(typeof p.num_parallel === "number" ? { parallel: p.num_parallel } : {}),
        ...kvCacheTypeOf(p),
      },
      release: () => lease.release(),
    };
  }

  /** Reads the model's blobs (weights and adapters) into the page cache, holding a lease while it does. */
  async readAhead(name: string): Promise<void> {
    const lease = await this.store.acquire(name);
    try {
      await readThroughPageCache([lease.modelPath, ...lease.adapterPaths]);
    } finally {
      lease.release();
    }
  }
}
