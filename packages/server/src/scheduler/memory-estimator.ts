/**
 * Estimates the memory a runner needs for a model, before loading it:
 *
 *   total = runnerOverhead + weights + kvCache + computeBuffers
 *   weights        = sum of tensor bytes in the GGUF (mmap'd; all pages are touched by inference)
 *   kvCache        = layers x kvHeads x headDim x contextTokens x (bytes of a K + a V element: f16 2,
 *                    q8_0 34/32, q4_0 18/32; see kv-cache.ts)
 *                    where contextTokens = context per slot x slots (the whole context)
 *   computeBuffers = activations 4 x ubatch x (4 x embedding + feedForward) + logits 4 x vocab x outputs
 *                    llama-ffi asks for logits of one token per sequence (outputs = slots);
 *                    llama-node (node-llama-cpp) keeps logits for a whole ubatch (outputs = ubatch) and an
 *                    attention scratch of 4 x ubatch x contextTokens x heads
 *   runnerOverhead = a runner process with its engine library loaded and no model: measured by each runner
 *                    (its RSS before the model loads) and used for the next estimates; the constants below
 *                    (measured on Linux x64) only serve until the first runner of an engine has reported
 *
 * Calibrated against measured runner RSS (after one generation) on stories260K, llama-2-tiny-random and
 * synthetic 20M/42M models; `npm run bench` prints estimate vs RSS for each model.
 */
import { KV_BYTES_PER_ELEMENT, type KvCacheTypes } from "./kv-cache.js";

export interface ModelShape {
  tensorBytes: number;
  blockCount: number;
  headCount: number;
  headCountKv: number;
  embeddingLength: number;
  feedForwardLength: number;
  vocabSize: number;
}

/** The fields of a GGUF summary the estimate reads. */
export interface ShapeSummary {
  tensorBytes: number;
  blockCount: number | null;
  headCount: number | null;
  headCountKv: number | null;
  embeddingLength: number | null;
  feedForwardLength: number | null;
  vocabSize: number | null;
}

/** A GGUF summary as the estimate sees it (missing fields count as 0). */
export function modelShapeOf(s: ShapeSummary): ModelShape {
  return {
    tensorBytes: s.tensorBytes,
    blockCount: s.blockCount ?? 0,
    headCount: s.headCount ?? 0,
    headCountKv: s.headCountKv ?? s.headCount ?? 0,
    embeddingLength: s.embeddingLength ?? 0,
    feedForwardLength: s.feedForwardLength ?? 0,
    vocabSize: s.vocabSize ?? 0,
  };
}

export interface MemoryEstimate {
  weights: number;
  kvCache: number;
  compute: number;
  overhead: number;
  /** Added after the kernel stopped a runner of this model at its memory limit (see oom-history.ts). */
  raisedAfterOom?: number;
  total: number;
}

/** Runner process baseline (Node + libllama + engine bindings), measured on Linux x64. */
export const RUNNER_OVERHEAD_BYTES: Record<string, number> = {
  "llama-node": 120 * 1024 * 1024,
  "llama-ffi": 70 * 1024 * 1024,
};

export function estimateMemory(
  shape: ModelShape,
  opts: {
    contextSize: number;
    slots: number;
    engine: string;
    ubatch?: number;
    overheadBytes?: number;
    /** K and V cache element types; default f16. */
    kvCacheType?: KvCacheTypes;
  },
): MemoryEstimate {
  const headDim = shape.headCount > 0 ? shape.embeddingLength / shape.headCount : 0;
  const kvHeads = shape.headCountKv || shape.headCount;
  const kvElement =
    KV_BYTES_PER_ELEMENT[opts.kvCacheType?.k ?? "f16"] + KV_BYTES_PER_ELEMENT[opts.kvCacheType?.v ?? "f16"];
  const kvCache = shape.blockCount * kvHeads * headDim * opts.contextSize * kvElement;
  const ubatch = Math.min(opts.ubatch ?? 512, opts.contextSize);
  const activations = 4 * ubatch * (4 * shape.embeddingLength + shape.feedForwardLength);
  const node = opts.engine === "llama-node";
  const logits = 4 * shape.vocabSize * (node ? ubatch : opts.slots);
  const attention = node ? 4 * ubatch * opts.contextSize * shape.headCount : 0;
  const compute = activations + logits + attention;
  const overhead = opts.overheadBytes ?? RUNNER_OVERHEAD_BYTES[opts.engine] ?? RUNNER_OVERHEAD_BYTES["llama-node"]!;
  const weights = shape.tensorBytes;
  return { weights, kvCache, compute, overhead, total: Math.round(weights + kvCache + compute + overhead) };
}
