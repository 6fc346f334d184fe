import type { ModelDetails } from "@llmos/protocol";
import type { KvCacheTypes } from "./kv-cache.js";
import type { ModelShape } from "./memory-estimator.js";

/** What the scheduler needs to know about a model in the store. */
export interface ModelSpec {
  name: string;
  digest: string;
  modelPath: string;
  adapterPaths: string[];
  size: number;
  details: ModelDetails;
  shape: ModelShape;
  trainContextSize: number;
  /** Defaults from the model definition (PARAMETER num_ctx, num_parallel, kv_cache_type[_k|_v]). */
  defaults: { contextSize?: number; parallel?: number; kvCacheType?: Partial<KvCacheTypes> };
  /** Releases the store lease (blobs may be garbage-collected again). */
  release(): void;
}

/** The store, as seen by the scheduler. */
export interface ModelSource {
  /** Canonical `name:tag` for a user-given name (throws invalid_model_name). */
  canonicalName(name: string): string;
  /** Resolves a model and holds a lease on its files until `release()`. */
  acquire(name: string): Promise<ModelSpec>;
  /** Reads the model's files through the page cache so that a load soon after finds them in memory (prewarm). */
  readAhead?(name: string): Promise<void>;
}

/** Per-load settings (an explicit load call; requests load with none). */
export interface LoadOptions {
  keepAliveMs?: number;
  pinned?: boolean;
  contextSize?: number;
  parallel?: number;
  /** The least decode threads the model gets while busy (its CPU floor; default 1). */
  minThreads?: number;
}
