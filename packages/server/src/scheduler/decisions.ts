/**
 * The scheduler's decisions, as pure functions over a snapshot: who gets a slot, whether a request may queue,
 * where a loading model finds memory, what expires. Each returns a plan; the executor (executor.ts, loader.ts)
 * applies it: grants slots, stops and starts runners, arms the one keep-alive timer. Rules no policy may break
 * live here (busy, pinned and keep_alive -1 models and jobs' memory are never evicted); choices among what is
 * allowed are the policy's.
 */
import type { UnloadReason } from "./model-lifecycle.js";
import type { PrewarmWindow, SchedulingPolicy, VictimRequest } from "./policy.js";
import { decidePrestartRoom } from "./prestart.js";
import {
  freeBudgetBytes,
  isEvictable,
  isIdle,
  isUnmovable,
  type ModelView,
  type SchedulerSnapshot,
} from "./snapshot.js";

export type AdmissionDecision =
  /** A slot is free and nobody is ahead: run now. */
  | { kind: "grant" }
  | { kind: "queue" }
  /** The model's queue or all queues together are full. */
  | { kind: "reject"; retryAfterSeconds: number; queued: number; queuedTotal: number };

/** Whether a new request for `model` runs now, waits in its queue, or is turned away (`queue_full`). */
export function decideAdmission(model: ModelView, snapshot: SchedulerSnapshot): AdmissionDecision {
  if (model.state === "ready" && model.busy < model.slots && model.queued === 0) return { kind: "grant" };
  const { maxQueuePerModel, maxQueueTotal } = snapshot.limits;
  if (model.queued < maxQueuePerModel && snapshot.queuedTotal < maxQueueTotal) return { kind: "queue" };
  // Retry-After from the observed service rate: the time the queue ahead (and this request) takes to drain.
  const rate = model.serviceRate;
  const retryAfterSeconds = rate > 0 ? Math.min(60, Math.max(1, Math.ceil((model.queued + 1) / rate))) : 1;
  return { kind: "reject", retryAfterSeconds, queued: model.queued, queuedTotal: snapshot.queuedTotal };
}

export type PlacementDecision =
  /** The model fits in what is free. */
  | { kind: "fits" }
  /** Evict these idle models (in order), then decide again. */
  | { kind: "evict"; victims: string[] }
  /** Busy or unloading models hold the memory: decide again at the next scheduler event. */
  | { kind: "wait" }
  /** It would have to wait, but no request or load call wants the model any more. */
  | { kind: "abandon" }
  /** It cannot fit even with every evictable model gone. */
  | { kind: "impossible"; neededBytes: number; availableBytes: number; budgetBytes: number };

/**
 * Where `model` (sized at `neededBytes` of RAM budget) finds memory. For real work (not a prewarm), models that a
 * prewarm loaded and no request has used yet go before any other: the policy chooses among them first.
 */
export function decidePlacement(
  snapshot: SchedulerSnapshot,
  policy: SchedulingPolicy,
  request: VictimRequest,
): PlacementDecision {
  const others = snapshot.models.filter((m) => m.name !== request.model || m.state === "unloading");
  const self = snapshot.models.find((m) => m.name === request.model && m.state !== "unloading");
  const budget = snapshot.memoryBudgetBytes;
  // Jobs' memory is used now but comes back when they end: it makes a load wait, never makes it impossible.
  const free = budget - (snapshot.jobBytes ?? 0) - sum(others, (m) => m.reservedBytes);
  if (request.neededBytes <= free) return { kind: "fits" };
  const available = budget - sum(others.filter(isUnmovable), (m) => m.reservedBytes);
  if (request.neededBytes > available)
    return { kind: "impossible", neededBytes: request.neededBytes, availableBytes: available, budgetBytes: budget };
  const candidates = others.filter(isEvictable);
  const victims = chooseVictims(candidates, { ...request, neededBytes: request.neededBytes - free }, snapshot, policy);
  if (victims && victims.length > 0) {
    const allowed = new Set(candidates.map((m) => m.name));
    const stray = victims.find((v) => !allowed.has(v));
    if (stray !== undefined) throw new Error(`policy ${policy.name} chose ${stray}, which may not be evicted now`);
    return { kind: "evict", victims };
  }
  return self?.wanted === false ? { kind: "abandon" } : { kind: "wait" };
}

/** The policy's victims, prewarmed-and-unused models first when real work asks. */
function chooseVictims(
  candidates: ModelView[],
  request: VictimRequest,
  snapshot: SchedulerSnapshot,
  policy: SchedulingPolicy,
): string[] | undefined {
  const prewarmed = request.prewarm ? [] : candidates.filter((m) => m.prewarmed);
  if (prewarmed.length === 0) return policy.chooseVictims(candidates, request, snapshot);
  const fromPrewarmed = policy.chooseVictims(prewarmed, request, snapshot);
  if (fromPrewarmed) return fromPrewarmed;
  const rest = candidates.filter((m) => !m.prewarmed);
  const freed = sum(prewarmed, (m) => m.reservedBytes);
  const more = policy.chooseVictims(rest, { ...request, neededBytes: request.neededBytes - freed }, snapshot);
  return more ? [...prewarmed.map((m) => m.name), ...more] : undefined;
}

/** A load ran out of memory despite the estimate: every other evictable model goes before its one retry. */
export function decideOomVictims(snapshot: SchedulerSnapshot, model: string): string[] {
  return snapshot.models.filter((m) => m.name !== model && isEvictable(m)).map((m) => m.name);
}

/** What to do now that something changed, and when to look again. */
export interface HousekeepingPlan {
  /** Queued requests to hand free slots to, per model (in the queue's fair order). */
  grants: Array<{ model: string; count: number }>;
  unload: Array<{ model: string; reason: UnloadReason }>;
  /** Models the policy wants loaded that are not. */
  preload: string[];
  /**
   * Prewarm windows open now for models not held: read each one's files into the page cache, and load it when
   * `load` (it fits in free memory, or the policy found idle models worth less to evict).
   */
  prewarm: Array<{ window: PrewarmWindow; load: boolean }>;
  /** The next keep-alive deadline (ms since the epoch), or null when none is pending. */
  wakeAt: number | null;
}

/**
 * Grants free slots, unloads drained and expired models (and idle ones the policy gives up for a runner started
 * ahead of the next load: prestart.ts), starts the policy's preloads and prewarms (never for a model held or one a
 * request's keep-alive let go), and picks the time of the next look.
 */
export function planHousekeeping(
  snapshot: SchedulerSnapshot,
  policy: SchedulingPolicy,
  closing = false,
): HousekeepingPlan {
  const plan: HousekeepingPlan = { grants: [], unload: [], preload: [], prewarm: [], wakeAt: null };
  for (const m of snapshot.models) {
    if (m.state === "ready" && m.queued > 0 && m.busy < m.slots)
      plan.grants.push({ model: m.name, count: Math.min(m.slots - m.busy, m.queued) });
    if (m.state === "draining" && m.busy === 0) plan.unload.push({ model: m.name, reason: "unload" });
    const expiry = expiryOf(m, snapshot, policy);
    if (expiry === null) continue;
    if (expiry <= snapshot.now) plan.unload.push({ model: m.name, reason: "expired" });
    else plan.wakeAt = Math.min(plan.wakeAt ?? Infinity, expiry);
  }
  const room = decidePrestartRoom(snapshot, policy, new Set(plan.unload.map((u) => u.model)), closing);
  for (const model of room.unload) plan.unload.push({ model, reason: "evicted" });
  if (room.askAgainAt !== null) plan.wakeAt = Math.min(plan.wakeAt ?? Infinity, room.askAgainAt);
  const held = new Set(snapshot.models.map((m) => m.name));
  plan.preload = policy.preload(snapshot).filter((name) => !held.has(name));
  for (const name of snapshot.releasedByKeepAlive ?? []) held.add(name);
  const prewarm = policy.prewarm?.(snapshot);
  if (prewarm) {
    for (const window of prewarm.due)
      if (!held.has(window.model)) plan.prewarm.push({ window, load: prewarmFits(snapshot, policy, window) });
    if (prewarm.next !== null) plan.wakeAt = Math.min(plan.wakeAt ?? Infinity, prewarm.next);
  }
  return plan;
}

/** A prewarm loads only into free memory or in place of idle models the policy values less; it never waits. */
export function prewarmFits(snapshot: SchedulerSnapshot, policy: SchedulingPolicy, window: PrewarmWindow): boolean {
  const free = freeBudgetBytes(snapshot);
  if (window.bytes <= free) return true;
  const candidates = snapshot.models.filter(isEvictable);
  const request = { model: window.model, neededBytes: window.bytes - free, prewarm: true };
  return (policy.chooseVictims(candidates, request, snapshot)?.length ?? 0) > 0;
}

/**
 * When an idle model expires (null: not idle, pinned, or kept forever). A keep-alive a request or load call gave
 * is kept as given; otherwise the policy decides.
 */
export function expiryOf(m: ModelView, snapshot: SchedulerSnapshot, policy: SchedulingPolicy): number | null {
  if (!isIdle(m) || isUnmovable(m)) return null;
  if (m.keepAliveExplicit) return m.idleSince === null ? null : m.idleSince + Math.max(0, m.keepAliveMs);
  return policy.expiresAt(m, snapshot);
}

function sum<T>(items: readonly T[], f: (item: T) => number): number {
  let total = 0;
  for (const item of items) total += f(item);
  return total;
}
