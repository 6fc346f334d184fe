/**
 * The native side of one loaded model: llama_model, the generation context (and the embedding context, made on
 * first use when not asked for at load), LoRA adapters and the threadpools they share; how they are made with the
 * settings the engine chose (KV layout, batch sizes, threadpool binding), and freed in reverse order.
 */
import koffi from "koffi";
import { LlmosError } from "../../errors.js";
import type { EngineLoadOptions } from "../engine.js";
import {
  LLAMA_FLASH_ATTN_TYPE_AUTO,
  LLAMA_POOLING_TYPE_MEAN,
  LlamaProgressCallback,
  type Bindings,
  type Ptr,
} from "./bindings.js";
import { KV_CACHE_GGML_TYPES } from "./kv-cache-types.js";
import { createThreadpool } from "./threadpool.js";
import { ThreadpoolSet } from "./threadpool-set.js";

/** Native resources, freed in reverse order. */
export interface Native {
  model: Ptr;
  ctx: Ptr;
  threadpools: ThreadpoolSet;
  adapters: Ptr[];
  embedCtx: Ptr | null;
}

/**
 * Loads the model, its context(s), threadpool and adapters. Frees everything it made if a step fails.
 */
export function loadNative(
  bindings: Bindings,
  options: EngineLoadOptions,
  gpu: boolean,
  threadpoolPoll: number | undefined,
): Native {
  validate(options);
  const { llama } = bindings;
  const made: Partial<Native> & { adapters: Ptr[] } = { adapters: [] };
  try {
    const mp = llama.llama_model_default_params();
    mp.n_gpu_layers = options.gpuLayers === "auto" ? (gpu ? -1 : 0) : options.gpuLayers;
    const progress = loadProgressCallback(options.onProgress);
    if (progress) mp.progress_callback = progress.ptr;
    let model: Ptr | null;
    try {
      model = llama.llama_model_load_from_file(options.modelPath, mp);
    } finally {
      progress?.release();
    }
    if (!model) throw new LlmosError("model_load_failed", `llama.cpp could not load ${options.modelPath}`);
    made.model = model;
    made.threadpools = new ThreadpoolSet(
      bindings,
      createThreadpool(bindings, options.threads, threadpoolPoll),
      threadpoolPoll,
    );
    made.ctx = createContext(bindings, model, made.threadpools.current, options, false);
    for (const lora of options.loraAdapters ?? []) {
      const adapter = llama.llama_adapter_lora_init(model, lora.path);
      if (!adapter) throw new LlmosError("model_load_failed", `llama.cpp could not load LoRA adapter ${lora.path}`);
      made.adapters.push(adapter);
    }
    if (made.adapters.length > 0) {
      const ptrs = BigUint64Array.from(made.adapters);
      const scales = Float32Array.from((options.loraAdapters ?? []).map((l) => l.scale));
      const rc = llama.llama_set_adapters_lora(made.ctx, ptrs, made.adapters.length, scales);
      if (rc !== 0) throw new LlmosError("model_load_failed", `llama_set_adapters_lora failed (${rc})`);
    }
    made.embedCtx = options.embeddings ? createContext(bindings, model, made.threadpools.current, options, true) : null;
    return made as Native;
  } catch (err) {
    freeNative(bindings, made);
    throw err;
  }
}

/** A metadata string of a loaded model, or undefined when the key is absent. */
export function metaString(bindings: Bindings, model: Ptr, key: string): string | undefined {
  const buf = Buffer.alloc(256);
  const n = bindings.llama.llama_model_meta_val_str(model, key, buf, buf.length);
  return n < 0 ? undefined : buf.toString("utf8", 0, Math.min(n, buf.length - 1));
}

/**
 * A native llama.cpp load-progress callback that reports each load step (llama.cpp calls it on this thread while
 * it reads tensors), or undefined without a listener. `release` unregisters it after the load.
 */
function loadProgressCallback(onProgress: (() => void) | undefined): { ptr: Ptr; release: () => void } | undefined {
  if (!onProgress) return undefined;
  const cb = koffi.register(() => {
    onProgress();
    return true;
  }, koffi.pointer(LlamaProgressCallback));
  return { ptr: cb as unknown as Ptr, release: () => koffi.unregister(cb) };
}

function validate(o: EngineLoadOptions): void {
  const positive = (name: string, v: number): void => {
    if (!Number.isInteger(v) || v < 1) throw new RangeError(`${name} must be a positive integer, got ${v}`);
  };
  positive("contextSize", o.contextSize);
  positive("slots", o.slots);
  positive("threads", o.threads);
  if (o.batchSize !== undefined) positive("batchSize", o.batchSize);
  if (o.contextSize < o.slots) throw new RangeError(`contextSize ${o.contextSize} is smaller than slots ${o.slots}`);
}

/**
 * Create a context bound to the shared threadpool.
 * Generation: n_seq_max = slots. The KV cache is split per sequence (kv_unified=false, faster attention when
 * sequences share no prefix) when contextSize/slots is already a multiple of 256 (llama.cpp pads per-sequence
 * sizes to 256); otherwise one unified cache of exactly contextSize cells, so memory matches the request.
 * Embeddings: one sequence, mean pooling, the whole input in one micro-batch.
 */
export function createContext(
  bindings: Bindings,
  model: Ptr,
  tp: { ptr: Ptr; threads: number },
  o: EngineLoadOptions,
  embeddings: boolean,
): Ptr {
  const { llama } = bindings;
  const cp = llama.llama_context_default_params();
  const perSeq = Math.floor(o.contextSize / o.slots);
  cp.n_threads = tp.threads;
  cp.n_threads_batch = tp.threads;
  cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_AUTO;
  cp.no_perf = true;
  cp["type_k"] = KV_CACHE_GGML_TYPES[o.kvCacheType?.k ?? "f16"];
  cp["type_v"] = KV_CACHE_GGML_TYPES[o.kvCacheType?.v ?? "f16"];
  if (embeddings) {
    cp.n_ctx = perSeq;
    cp.n_batch = perSeq;
    cp.n_ubatch = perSeq;
    cp.n_seq_max = 1;
    cp.embeddings = true;
    cp.pooling_type = LLAMA_POOLING_TYPE_MEAN;
  } else {
    const batch = o.batchSize ?? 512;
    cp.n_ctx = o.contextSize;
    cp.n_batch = batch;
    cp.n_ubatch = Math.min(batch, 512); // llama.cpp's default physical batch; bigger ones only grow compute buffers

    cp.n_seq_max = o.slots;
    cp.kv_unified = kvUnified(o);
  }
  const ctx = llama.llama_init_from_model(model, cp);
  if (!ctx)
    throw new LlmosError("model_load_failed", `llama.cpp could not create a${embeddings ? "n embedding" : ""} context`);
  llama.llama_attach_threadpool(ctx, tp.ptr, tp.ptr);
  return ctx;
}

/** One KV cache for all sequences, unless each sequence's share is already a multiple of 256 (see createContext). */
export function kvUnified(o: EngineLoadOptions): boolean {
  const perSeq = Math.floor(o.contextSize / o.slots);
  return !(o.slots === 1 || (o.contextSize % o.slots === 0 && perSeq % 256 === 0));
}

export function freeNative(bindings: Bindings, n: Partial<Native> & { adapters: Ptr[] }): void {
  const { llama } = bindings;
  for (const ctx of [n.embedCtx, n.ctx]) {
    if (!ctx) continue;
    llama.llama_detach_threadpool(ctx);
    llama.llama_free(ctx);
  }
  n.embedCtx = null;
  n.ctx = undefined;
  for (const a of n.adapters.splice(0)) llama.llama_adapter_lora_free(a);
  n.threadpools?.free();
  if (n.model) llama.llama_model_free(n.model);
  n.model = undefined;
}
