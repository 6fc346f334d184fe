/**
 * The port through which a model-tool job takes its worker's memory out of the scheduler's budget while it runs
 * (the daemon passes the scheduler: Scheduler.reserveJobMemory, which estimates the workload and places it like a
 * load). A quantize or an eval of a big model next to loaded models would otherwise push them, or itself, into swap.
 */
import type { GgufSummary, GgufTensorInfo } from "@llmos/gguf";
import type { KvCacheType } from "@llmos/protocol";

/** What a job's worker holds (the scheduler's estimate reads it: scheduler/job-estimate.ts). */
export type JobWorkload =
  | { kind: "quantize"; largestTensorElements: number }
  | { kind: "load"; models: Array<{ summary: GgufSummary; contextSize: number; kvCacheType: KvCacheType }> };

export interface JobMemory {
  /** Waits for room and holds it until `release()`. @throws `insufficient_memory`, `client_closed`. */
  reserveJobMemory(
    request: { job: string; model: string; workload: JobWorkload },
    signal?: AbortSignal,
  ): Promise<{ readonly bytes: number; release(): void }>;
}

/** Elements of the largest tensor (what a quantize worker holds at once). */
export function largestTensorElements(tensors: readonly Pick<GgufTensorInfo, "dims">[]): number {
  let largest = 0;
  for (const t of tensors)
    largest = Math.max(
      largest,
      t.dims.reduce((n, d) => n * d, 1),
    );
  return largest;
}
