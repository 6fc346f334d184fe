/**
 * What scheduling decisions see: the models held (with their state, memory, slots, queue, pin and keep-alive),
 * the memory budgets, the queue totals and the time. A snapshot is plain data, taken at one moment; the decision
 * functions (decisions.ts) and policies (policy.ts) read only this, so they are tested with hand-written
 * snapshots, and a cluster can build one per node.
 */
import type { ModelStateKind } from "./model-lifecycle.js";

/** One model as decisions see it. */
export interface ModelView {
  /** Canonical `name:tag`. */
  name: string;
  state: ModelStateKind;
  /** Bytes charged to the RAM budget (0 until the model is sized). */
  reservedBytes: number;
  vramBytes: number;
  /** Parallel sequences (0 until sized). */
  slots: number;
  /** Slots in use. */
  busy: number;
  /** Requests waiting for a slot. */
  queued: number;
  pinned: boolean;
  /** -1: never expires; 0: unload when idle. */
  keepAliveMs: number;
  /** The keep-alive was given by a request or a load call (it wins over the policy's), not the default. */
  keepAliveExplicit: boolean;
  /** Loaded by a prewarm and not used by a request since (the first to go when real work needs memory). */
  prewarmed: boolean;
  /** When a request last got or gave back a slot. */
  lastUsed: number;
  /** Since when the model has been ready with nothing running or queued; null while it is not. */
  idleSince: number | null;
  /** A queued request or an explicit load still waits for this model (matters while it loads). */
  wanted: boolean;
  /** Requests completed per second over the last minute (0 when unknown). */
  serviceRate: number;
  /**
   * What the model's requests ask of the CPU: running and queued requests, each counted with its tenant's
   * fair-queue weight, by priority class.
   */
  demand: { interactive: number; batch: number };
  /** When a request of this model last gave its slot back (null: none has yet). */
  lastActiveAt: number | null;
  /** The least decode threads the model gets while busy (load option `minThreads`; default 1). */
  minThreads: number;
  /** The CPU allotment its runner has now; null while it has no runner. */
  cpu: CpuView | null;
}

/** A runner's CPU allotment as decisions see it. */
export interface CpuView {
  /** Decode threads; 0 while the model is idle (its threadpool sleeps). */
  threads: number;
  /** The CPUs its threads run on (empty while idle). */
  cpus: readonly number[];
  /** When `threads` last changed. */
  changedAt: number;
}

export interface SchedulerSnapshot {
  /** Milliseconds since the epoch. */
  now: number;
  /** RAM budget for models. */
  memoryBudgetBytes: number;
  /** GPU memory llmos may use (undefined: no GPU known). */
  vramBudgetBytes: number | undefined;
  /** Models held: loading, loaded, draining and unloading (an unloading model still holds its memory). */
  models: readonly ModelView[];
  /**
   * RAM budget held by model-tool jobs (quantize, imatrix, eval workers) while they run: used, never evictable
   * (memory-reservations.ts). Absent: none.
   */
  jobBytes?: number;
  /**
   * The runner kept started ahead of the next load (prestart.ts): the memory it takes, whether it is starting
   * (then it uses a core), ready, or failed (none is started until a load has run), and how long the last one took
   * to come up (ms; null before the first). Absent: none is kept (`LLMOS_PRESTART=off`, or the runner factory
   * cannot).
   */
  prestart?: { bytes: number; state: "none" | "starting" | "ready" | "failed"; startMs?: number | null };
  /** Requests queued over all models. */
  queuedTotal: number;
  limits: { maxQueuePerModel: number; maxQueueTotal: number };
  /** Models unloaded under a request's keep-alive and not asked for since: never prewarmed (the request decided). */
  releasedByKeepAlive?: readonly string[];
  /** The cores the scheduler shares among busy runners (`LLMOS_CPUS`). */
  cpu: CpuLimits;
}

export interface CpuLimits {
  /** CPU ids managed. */
  cpus: readonly number[];
  /** Threads one runner may get at most (`LLMOS_THREADS`). */
  maxThreadsPerRunner: number;
  /** A runner's allotment grows no sooner than this after another runner went idle or after its last change. */
  holdMs: number;
}

/** RAM budget no model or job holds now (negative when over). */
export function freeBudgetBytes(snapshot: SchedulerSnapshot): number {
  let held = snapshot.jobBytes ?? 0;
  for (const m of snapshot.models) held += m.reservedBytes;
  return snapshot.memoryBudgetBytes - held;
}

/** True for a ready model with nothing running or queued. */
export function isIdle(m: ModelView): boolean {
  return m.state === "ready" && m.busy === 0 && m.queued === 0;
}

/** Never evicted under memory pressure: pinned, or kept alive forever. */
export function isUnmovable(m: ModelView): boolean {
  return m.pinned || m.keepAliveMs < 0;
}

/** May be evicted now: idle, not pinned, not kept alive forever. */
export function isEvictable(m: ModelView): boolean {
  return isIdle(m) && !isUnmovable(m);
}
