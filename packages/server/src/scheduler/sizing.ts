/**
 * How a model is run (a pure decision made before placing it): its sequences, its context per sequence, its K and V
 * cache types, and the memory that takes, split between GPU and RAM when a GPU of known size is there.
 */
import { chooseKvCacheTypes, type KvCacheTypes } from "./kv-cache.js";
import type { Sizing } from "./model-lifecycle.js";
import { estimateMemory, type ModelShape } from "./memory-estimator.js";
import { chooseOffload } from "./offload.js";
import { isUnmovable, type SchedulerSnapshot } from "./snapshot.js";

export interface SizingRequest {
  model: string;
  shape: ModelShape;
  /** The model's training context (0: unknown). */
  trainContextSize: number;
  /** Context per sequence asked for explicitly (load call, then the model definition's num_ctx). */
  contextSize: number | undefined;
  /** Sequences asked for (load call, then the model definition's num_parallel). */
  parallel: number | undefined;
  /** K and V cache types from the model definition (PARAMETER kv_cache_type[_k|_v]); they win over the default. */
  kvCacheType?: Partial<KvCacheTypes> | undefined;
  /** The least estimate this model may get: set after the kernel stopped one of its runners (oom-history.ts). */
  floorBytes?: number;
}

export interface SizingDefaults {
  engine: string;
  /** Default context per sequence. */
  contextSize: number;
  parallel: number;
  /** Runner overhead last measured (RSS with the engine loaded and no model), if any runner reported it. */
  overheadBytes: number | undefined;
  /** Offload to a GPU at all. */
  gpu: boolean;
  /** The daemon's K and V cache types (LLMOS_KV_CACHE_TYPE); default f16. */
  kvCacheType?: KvCacheTypes;
}

/** The context smallest default allowed when shrinking to fit. */
const MIN_DEFAULT_CONTEXT = 256;

/**
 * Sequences, context and KV cache types for `request`: an explicit context is kept (capped at the training
 * context); without one the default halves (down to 256 tokens) until the model can fit the budget at all, next to
 * the models that can never be evicted. The memory estimate follows the KV cache types (see kv-cache.ts).
 * @throws LlmosError `invalid_request` when the model's own KV cache type does not suit its head size.
 */
export function decideSizing(request: SizingRequest, defaults: SizingDefaults, snapshot: SchedulerSnapshot): Sizing {
  const slots = Math.max(1, request.parallel ?? defaults.parallel);
  const { shape } = request;
  const headDim = shape.headCount > 0 ? shape.embeddingLength / shape.headCount : 0;
  const kv = chooseKvCacheTypes(
    request.model,
    headDim,
    request.kvCacheType,
    defaults.kvCacheType ?? { k: "f16", v: "f16" },
  );
  let perSlot = Math.min(request.contextSize ?? defaults.contextSize, request.trainContextSize || Infinity);
  const estimate = (ctx: number) =>
    estimateMemory(request.shape, {
      contextSize: ctx * slots,
      slots,
      engine: defaults.engine,
      kvCacheType: kv.kv,
      ...(defaults.overheadBytes ? { overheadBytes: defaults.overheadBytes } : {}),
    });
  if (request.contextSize === undefined) {
    const others = snapshot.models.filter((m) => m.name !== request.model && isUnmovable(m));
    // Jobs' memory is not counted: it comes back when they end (a load waits for it rather than shrinking).
    const ceiling = snapshot.memoryBudgetBytes - others.reduce((n, m) => n + m.reservedBytes, 0);
    while (perSlot > MIN_DEFAULT_CONTEXT && estimate(perSlot).total > ceiling)
      perSlot = Math.max(MIN_DEFAULT_CONTEXT, Math.floor(perSlot / 2));
  }
  const computed = estimate(perSlot);
  const raise = Math.max(0, (request.floorBytes ?? 0) - computed.total);
  const chosen = raise > 0 ? { ...computed, raisedAfterOom: raise, total: computed.total + raise } : computed;
  // With a GPU of known size: as many layers as fit in the GPU memory the other models leave.
  const vramBudget = defaults.gpu ? snapshot.vramBudgetBytes : undefined;
  const vramUsed = snapshot.models.filter((m) => m.name !== request.model).reduce((n, m) => n + m.vramBytes, 0);
  const offload = vramBudget === undefined ? undefined : chooseOffload(request.shape, chosen, vramBudget - vramUsed);
  return {
    slots,
    contextSize: perSlot,
    kvCacheType: kv.kv,
    kvCacheFellBack: kv.fellBack,
    estimate: chosen,
    offload,
    ramBytes: offload?.ramBytes ?? chosen.total,
    vramBytes: offload?.vramBytes ?? 0,
  };
}

/** What a model would reserve on a node, for placing it across a cluster before any node loads it. */
export interface PlacementEstimate {
  /** With the default (or the model's own) context and slots: what a load on an empty node reserves. */
  estimatedBytes: number;
  /** With the smallest default context the scheduler shrinks to (the same as `estimatedBytes` for a set context). */
  minimumBytes: number;
}

/**
 * The same sizing a load makes (decideSizing), once on a node with room to spare and once on a node so full that
 * the default context shrinks to its minimum: the range a node's budget must hold for the model. RAM only (a GPU
 * split is decided by the node that loads it).
 */
export function placementEstimate(request: SizingRequest, defaults: SizingDefaults): PlacementEstimate {
  const on = (budget: number): SchedulerSnapshot => ({
    now: 0,
    memoryBudgetBytes: budget,
    vramBudgetBytes: undefined,
    models: [],
    queuedTotal: 0,
    limits: { maxQueuePerModel: 0, maxQueueTotal: 0 },
    cpu: { cpus: [], maxThreadsPerRunner: 1, holdMs: 0 },
  });
  const cpuOnly = { ...defaults, gpu: false };
  return {
    estimatedBytes: decideSizing(request, cpuOnly, on(Number.MAX_SAFE_INTEGER)).ramBytes,
    minimumBytes: decideSizing(request, cpuOnly, on(0)).ramBytes,
  };
}
