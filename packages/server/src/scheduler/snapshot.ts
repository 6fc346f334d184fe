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
  /** When a request last got or gave back a slot. */
  lastUsed: number;
  /** Since when the model has been ready with nothing running or queued; null while it is not. */
  idleSince: number | null;
  /** A queued request or an explicit load still waits for this model (matters while it loads). */
  wanted: boolean;
  /** Requests completed per second over the last minute (0 when unknown). */
  serviceRate: number;
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
  /** Requests queued over all models. */
  queuedTotal: number;
  limits: { maxQueuePerModel: number; maxQueueTotal: number };
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
