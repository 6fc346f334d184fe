/**
 * A persistent ggml CPU threadpool. The prebuilt CPU libraries are built without OpenMP: without an attached pool
 * every `llama_decode` starts and joins its worker threads, which measured 0.81-0.91x native speed with collapses
 * under load; with one it runs at native speed (see docs/engineering.md).
 */
import { GgmlThreadpoolParams, type Bindings, type Ptr } from "./bindings.js";

/** An owned threadpool; `free()` is idempotent. Detach it from every context before freeing. */
export interface Threadpool {
  readonly ptr: Ptr;
  readonly threads: number;
  /** Let the workers sleep now instead of busy-polling; the next decode wakes them. No-op if unsupported. */
  pause(): void;
  free(): void;
}

/**
 * Create a threadpool of exactly `threads` threads.
 * @param poll ggml polling level, 0 (workers sleep between graph nodes) to 100 (busy-wait); undefined keeps
 *   ggml's default (50).
 * @param paused start with the workers asleep; the first graph computed on the pool wakes them.
 */
export function createThreadpool(bindings: Bindings, threads: number, poll?: number, paused = false): Threadpool {
  if (!Number.isInteger(threads) || threads < 1)
    throw new RangeError(`threads must be a positive integer, got ${threads}`);
  const params = Buffer.alloc(GgmlThreadpoolParams.size);
  bindings.ggml.ggml_threadpool_params_init(params, threads);
  if (poll !== undefined)
    params.writeUInt32LE(Math.max(0, Math.min(100, Math.round(poll))), GgmlThreadpoolParams.members!["poll"]!.offset);
  if (paused) params.writeUInt8(1, GgmlThreadpoolParams.members!["paused"]!.offset);
  const ptr = bindings.threadpoolNew(params);
  if (!ptr) throw new Error(`ggml_threadpool_new(${threads}) failed`);
  let freed = false;
  const pauseFn = bindings.threadpoolPause();
  return {
    ptr,
    threads,
    pause() {
      if (!freed && pauseFn) pauseFn(ptr);
    },
    free() {
      if (freed) return;
      freed = true;
      bindings.threadpoolFree(ptr);
    },
  };
}
