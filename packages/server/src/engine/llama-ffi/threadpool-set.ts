/**
 * The threadpools of one model, one per thread count it has been given, so that the daemon's CPU allotment can
 * change between decode steps. A context decodes on the pool attached to it; switching attaches another pool and
 * pauses the old one (its workers sleep). Measured on 2 cores (docs/performance.md, "Multi-model contention"):
 * lowering the thread count of one big pool with `llama_set_n_threads` instead leaves its unused workers polling
 * for every new graph, which cost 1.6x the CPU time per token of a pool of the right size; attaching another pool
 * costs under a microsecond.
 */
import type { Bindings, Ptr } from "./bindings.js";
import { createThreadpool, type Threadpool } from "./threadpool.js";

/** Pools kept besides the attached one (the most recently used), so a count that comes back needs no new threads. */
const KEPT_POOLS = 2;

export class ThreadpoolSet {
  private attached: Threadpool;
  /** Detached pools, most recently used last. */
  private readonly spare: Threadpool[] = [];

  constructor(
    private readonly bindings: Bindings,
    initial: Threadpool,
    private readonly poll: number | undefined,
  ) {
    this.attached = initial;
  }

  /** The pool the contexts decode on. */
  get current(): Threadpool {
    return this.attached;
  }

  get threads(): number {
    return this.attached.threads;
  }

  /**
   * Attaches a pool of `threads` threads to `contexts` (creating it when none is kept) and sets their thread
   * counts to match; the pool that was attached is paused and kept. Call between decode steps only.
   */
  switchTo(threads: number, contexts: readonly Ptr[]): void {
    if (threads === this.attached.threads) return;
    const at = this.spare.findIndex((p) => p.threads === threads);
    // A new pool starts paused: the next decode resumes it (ggml's kickoff), so it never polls before then.
    const next = at >= 0 ? this.spare.splice(at, 1)[0]! : createThreadpool(this.bindings, threads, this.poll, true);
    const { llama } = this.bindings;
    for (const ctx of contexts) {
      llama.llama_attach_threadpool(ctx, next.ptr, next.ptr);
      llama.llama_set_n_threads(ctx, threads, threads);
    }
    const previous = this.attached;
    this.attached = next;
    previous.pause();
    this.spare.push(previous);
    while (this.spare.length > KEPT_POOLS) this.spare.shift()!.free();
  }

  /** Frees every pool. The contexts must have been detached (or freed) first. Idempotent. */
  free(): void {
    for (const p of this.spare.splice(0)) p.free();
    this.attached.free();
  }
}
