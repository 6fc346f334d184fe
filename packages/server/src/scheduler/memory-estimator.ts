/**
 * Estimates the memory a runner needs for a model, before loading it:
 *
 *   total = runnerOverhead + weights + kvCache + computeBuffers
 *   weights        = sum of tensor bytes in the GGUF (mmap'd; all pages are touched by inference)
 *   kvCache        = 2 (K and V) x layers x kvHeads x headDim x contextTokens x 2 bytes (f16 cache)
 *                    where contextTokens = context per slot x slots (the whole context)
 *   computeBuffers = 4 bytes x (ubatch x (vocab + 4 x embedding + feedForward)) for activations and logits,
 *                    plus 4 x vocab x slots for the output buffer
 *   runnerOverhead = the measured footprint of a runner process with the engine library loaded and no model
 *
 * The estimate is compared with the runner's measured RSS after load; both are shown in /api/ps and the bench.
 */
export interface ModelShape {
  tensorBytes: number;
  blockCount: number;
  headCount: number;
  headCountKv: number;
  embeddingLength: number;
  feedForwardLength: number;
  vocabSize: number;
}

export interface MemoryEstimate {
  weights: number;
  kvCache: number;
  compute: number;
  overhead: number;
  total: number;
}

/** Runner process baseline (Node + libllama + engine bindings) measured on Linux x64. */
export const RUNNER_OVERHEAD_BYTES: Record<string, number> = {
  "llama-node": 120 * 1024 * 1024,
  "llama-ffi": 75 * 1024 * 1024,
};

export function estimateMemory(shape: ModelShape, opts: { contextSize: number; slots: number; engine: string; ubatch?: number }): MemoryEstimate {
  const headDim = shape.headCount > 0 ? shape.embeddingLength / shape.headCount : 0;
  const kvHeads = shape.headCountKv || shape.headCount;
  const kvCache = 2 * shape.blockCount * kvHeads * headDim * opts.contextSize * 2;
  const ubatch = Math.min(opts.ubatch ?? 512, opts.contextSize);
  const compute = 4 * ubatch * (shape.vocabSize + 4 * shape.embeddingLength + shape.feedForwardLength) + 4 * shape.vocabSize * opts.slots;
  const overhead = RUNNER_OVERHEAD_BYTES[opts.engine] ?? RUNNER_OVERHEAD_BYTES["llama-node"]!;
  const weights = shape.tensorBytes;
  return { weights, kvCache, compute, overhead, total: Math.round(weights + kvCache + compute + overhead) };
}
