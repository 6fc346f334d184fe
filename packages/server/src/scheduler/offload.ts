import type { MemoryEstimate, ModelShape } from "./memory-estimator.js";

/** How a model is split between GPU memory and RAM. */
export interface OffloadPlan {
  /** Layers llama.cpp puts on the GPU (`n_gpu_layers`); blockCount + 1 means everything, output layer included. */
  gpuLayers: number;
  /** Estimated GPU memory the model takes. */
  vramBytes: number;
  /** Estimated RAM the runner takes (what the RAM budget is charged). */
  ramBytes: number;
}

/**
 * Chooses GPU offload for a model given the GPU memory still free for it: everything when it fits, else as many
 * repeating layers as fit (each layer brings its share of the weights and of the KV cache), else none. The runner
 * overhead always stays in RAM; with every layer offloaded, the compute buffers move to the GPU too.
 */
export function chooseOffload(shape: ModelShape, estimate: MemoryEstimate, vramAvailableBytes: number): OffloadPlan {
  const cpuOnly: OffloadPlan = { gpuLayers: 0, vramBytes: 0, ramBytes: estimate.total };
  if (vramAvailableBytes <= 0 || shape.blockCount <= 0) return cpuOnly;
  const full = estimate.weights + estimate.kvCache + estimate.compute;
  if (full <= vramAvailableBytes)
    return { gpuLayers: shape.blockCount + 1, vramBytes: full, ramBytes: estimate.overhead };
  const perLayer = estimate.weights / shape.blockCount + estimate.kvCache / shape.blockCount;
  // A partial split keeps the compute buffers on both sides: reserve them on the GPU before counting layers.
  const layers = Math.min(shape.blockCount, Math.floor((vramAvailableBytes - estimate.compute) / perLayer));
  if (layers <= 0) return cpuOnly;
  const vramBytes = Math.round(layers * perLayer + estimate.compute);
  return {
    gpuLayers: layers,
    vramBytes,
    ramBytes: Math.max(estimate.overhead, Math.round(estimate.total - layers * perLayer)),
  };
}
