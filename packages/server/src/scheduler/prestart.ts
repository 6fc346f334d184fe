/**
 * Whether to keep a runner started ahead of the next load (runtime/prestarted-runner.ts), as a pure function over
 * the snapshot. It lives only in memory the budget has free: its process counts as the next load's runner
 * overhead (the load takes it, and the load's reservation already holds that overhead), so while one is kept the
 * models and jobs plus it stay within the budget. It is started only while no load is under way and no runner is
 * busy (its start takes a core for about 130 ms, which a decode step already under way with every core would
 * spin-wait for), and stopped when the free memory falls below it, unless a load under way may take it.
 *
 * When the budget is full, the policy may unload an idle model to make room for one (`decidePrestartRoom`): a cold
 * load into a full budget otherwise evicts and then starts a runner of its own, about twice as long to its first
 * token as one that finds a runner started.
 */
import type { RoomDecision, SchedulingPolicy } from "./policy.js";
import { freeBudgetBytes, isEvictable, type SchedulerSnapshot } from "./snapshot.js";

/** `start`: keep one (start it if there is none); `stop`: keep none; `leave`: change nothing now. */
export type PrestartDecision = "start" | "stop" | "leave";

export function decidePrestart(snapshot: SchedulerSnapshot, closing: boolean): PrestartDecision {
  const p = snapshot.prestart;
  if (!p || closing) return "stop";
  const loading = snapshot.models.some((m) => m.state === "loading" || m.state === "placing" || m.state === "starting");
  const fits = freeBudgetBytes(snapshot) >= p.bytes;
  if (loading) return "leave";
  if (!fits) return "stop";
  const busy = snapshot.models.some((m) => m.busy > 0 || m.queued > 0);
  return busy && p.state === "none" ? "leave" : "start";
}

/**
 * Idle models to unload now so that a runner started ahead of the next load fits, as the policy chooses (none for a
 * policy without `roomForPrestart`), and when to ask again. Asked only when one would otherwise be started: kept
 * runners on, none held or starting (nor failed), nothing loading, busy or queued (a start then waits anyway), and
 * the free memory, with the models `unloading` already going, short of it. Candidates are idle models that are
 * neither pinned, kept forever, nor given a keep-alive by a request (that is kept as given).
 */
export function decidePrestartRoom(
  snapshot: SchedulerSnapshot,
  policy: SchedulingPolicy,
  unloading: ReadonlySet<string>,
  closing: boolean,
): RoomDecision {
  const none: RoomDecision = { unload: [], askAgainAt: null };
  const p = snapshot.prestart;
  if (!p || closing || p.state !== "none" || !policy.roomForPrestart) return none;
  if (snapshot.models.some((m) => m.state !== "ready" || m.busy > 0 || m.queued > 0)) return none;
  let free = freeBudgetBytes(snapshot);
  for (const m of snapshot.models) if (unloading.has(m.name)) free += m.reservedBytes;
  if (free >= p.bytes) return none;
  const candidates = snapshot.models.filter((m) => isEvictable(m) && !m.keepAliveExplicit && !unloading.has(m.name));
  if (candidates.length === 0) return none;
  const decision = policy.roomForPrestart(candidates, p.bytes - free, snapshot);
  const allowed = new Set(candidates.map((m) => m.name));
  const stray = decision.unload.find((v) => !allowed.has(v));
  if (stray !== undefined) throw new Error(`policy ${policy.name} chose ${stray}, which may not be unloaded now`);
  return decision;
}
