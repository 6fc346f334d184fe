/**
 * The memory a model-tool job's worker (quantize, imatrix, eval: model-jobs/) needs while it runs, estimated like a
 * load: what `Scheduler.reserveJobMemory` takes out of the budget.
 */
import type { KvCacheType } from "@llmos/protocol";
import { estimateMemory, modelShapeOf, RUNNER_OVERHEAD_BYTES, type ShapeSummary } from "./memory-estimator.js";

/** What a job's worker holds. */
export type JobWorkload =
  /** llama.cpp's quantizer: the source mapped (page cache, not counted), one tensor at a time in memory. */
  | { kind: "quantize"; largestTensorElements: number }
  /** An eval or imatrix worker: each model loaded with one sequence of `contextSize` tokens. */
  | { kind: "load"; models: ReadonlyArray<{ summary: ShapeSummary; contextSize: number; kvCacheType: KvCacheType }> };

/** A worker process before its work: Node and libllama, as a runner's baseline. */
const WORKER_BASELINE_BYTES = RUNNER_OVERHEAD_BYTES["llama-ffi"]!;

export function jobMemoryBytes(workload: JobWorkload): number {
  if (workload.kind === "quantize")
    // The tensor read in, converted to f32, and its quantized result: each at most 4 bytes per element.
    return WORKER_BASELINE_BYTES + 3 * 4 * workload.largestTensorElements;
  let total = 0;
  for (const m of workload.models)
    total += estimateMemory(modelShapeOf(m.summary), {
      contextSize: m.contextSize,
      slots: 1,
      engine: "llama-ffi",
      kvCacheType: { k: m.kvCacheType, v: m.kvCacheType },
    }).total;
  return total;
}
