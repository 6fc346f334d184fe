/**
 * The CPU decision: which runner decodes with how many threads, on which CPUs, as a pure function over the
 * scheduler's snapshot. The cores are shared like the memory budget: only busy runners (a request running or
 * queued) get threads, and together never more than the managed cores, so no ggml threadpool spin-waits for a core
 * another runner holds (with two busy runners of all cores each, throughput collapsed to a few tokens/s:
 * docs/performance.md). The CPU applier (cpu-applier.ts) sends what changed to the runners.
 *
 * Rules, in order:
 * - One busy runner gets every core (up to `maxThreadsPerRunner`); idle runners get 0 (their threadpools sleep).
 * - A runner that is starting (its process spawning, its model loading; or the prestarted runner's process and
 *   engine coming up) holds one core while it does: the busy runners share the others (at least one). A decode
 *   of two threads beside a load spin-waits for the core the load holds: a warm request's first token took
 *   300-540 ms beside a neighbour's load (docs/keep-alive.md).
 * - Each busy runner gets at least one thread, and its floor (`minThreads`) when the cores allow.
 * - The other cores follow demand: interactive work first (runners with interactive requests share what is left
 *   in proportion to their weighted interactive demand), runners with only batch requests get their floors.
 * - More busy runners than cores: one thread each (single-threaded runners never spin-wait for each other; the
 *   kernel time-slices them) on every managed CPU.
 * - Hysteresis: a runner's threads grow no sooner than `holdMs` after another runner went idle or after its own
 *   last change (shrinking is immediate), so requests that come and go do not make the allotments thrash; for
 *   as long, the runner still counts its decode steps as contended (`shared`).
 * - CPU sets: each runner keeps the CPUs it has where it can, and takes free ones for the rest.
 */
import type { CpuView, ModelView, SchedulerSnapshot } from "./snapshot.js";

/** One runner's allotment as decided. */
export interface CpuAllotmentDecision {
  model: string;
  threads: number;
  /** CPUs its threads may run on (empty while it gets 0 threads; all managed CPUs when more runners than cores). */
  cpus: number[];
  /** Other runners are busy at the same time. */
  shared: boolean;
}

export interface CpuPlan {
  /** An allotment for every model with a runner (ready or draining). */
  allotments: CpuAllotmentDecision[];
  /** When a growth held back by the hysteresis may happen (decide again then), or null. */
  recheckAt: number | null;
}

/** Whether a model has work for its runner now: a request running or queued. */
export function isCpuBusy(m: ModelView): boolean {
  return (m.state === "ready" || m.state === "draining") && (m.busy > 0 || m.queued > 0);
}

export function decideCpuAllotments(snapshot: SchedulerSnapshot): CpuPlan {
  const { cpus, holdMs } = snapshot.cpu;
  const cores = cpus.length;
  const cap = Math.max(1, Math.min(snapshot.cpu.maxThreadsPerRunner, cores));
  const runners = snapshot.models
    .filter((m): m is ModelView & { cpu: CpuView } => m.cpu !== null && (m.state === "ready" || m.state === "draining"))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const busy = runners.filter(isCpuBusy);
  const starting =
    snapshot.models.filter((m) => m.state === "starting").length + (snapshot.prestart?.state === "starting" ? 1 : 0);
  const decodeCores = Math.max(1, cores - starting);
  const ideal = idealThreads(busy, decodeCores, cap);

  // Hysteresis: growth waits until `holdMs` after the last runner went idle and after the runner's own last change.
  const idleSince = Math.max(
    -Infinity,
    ...runners.filter((m) => !isCpuBusy(m) && m.lastActiveAt !== null).map((m) => m.lastActiveAt!),
  );
  let recheckAt: number | null = null;
  const threads = new Map<string, number>();
  for (const m of runners) {
    let t = ideal.get(m.name) ?? 0;
    if (t > m.cpu.threads && m.cpu.threads > 0) {
      const allowedAt = Math.max(idleSince + holdMs, m.cpu.changedAt + holdMs);
      if (snapshot.now < allowedAt) {
        t = m.cpu.threads;
        recheckAt = Math.min(recheckAt ?? Infinity, allowedAt);
      }
    }
    threads.set(m.name, t);
  }

  const running = runners.filter((m) => threads.get(m.name)! > 0);
  const total = running.reduce((n, m) => n + threads.get(m.name)!, 0);
  // Sets only while the threads fit the cores left to decoding: a starting runner takes whichever core is free.
  const sets = total <= decodeCores ? assignCpus(running, threads, cpus) : null;
  // A runner that just went idle still counts as a neighbour for the hold, so the flag does not thrash either.
  const justIdle = snapshot.now < idleSince + holdMs;
  const shared = running.length > 1 || (running.length === 1 && justIdle);
  if (running.length === 1 && justIdle) recheckAt = Math.min(recheckAt ?? Infinity, idleSince + holdMs);
  return {
    allotments: runners.map((m) => {
      const t = threads.get(m.name)!;
      return {
        model: m.name,
        threads: t,
        cpus: t === 0 ? [] : (sets?.get(m.name) ?? [...cpus]),
        shared: t > 0 && shared,
      };
    }),
    recheckAt,
  };
}

/** Threads per busy runner before the hysteresis: floors first, then the rest by demand, interactive first. */
function idealThreads(busy: readonly ModelView[], cores: number, cap: number): Map<string, number> {
  const out = new Map<string, number>();
  if (busy.length === 0) return out;
  if (busy.length >= cores) {
    for (const m of busy) out.set(m.name, 1);
    return out;
  }
  for (const m of busy) out.set(m.name, Math.max(1, Math.min(cap, Math.floor(m.minThreads))));
  // Floors that do not fit: take from the largest first (never below one thread).
  let total = sum(busy, (m) => out.get(m.name)!);
  while (total > cores) {
    const largest = busy.reduce((a, b) => (out.get(b.name)! > out.get(a.name)! ? b : a));
    out.set(largest.name, out.get(largest.name)! - 1);
    total--;
  }
  const interactive = busy.filter((m) => m.demand.interactive > 0);
  const tiers: Array<{ models: readonly ModelView[]; weight: (m: ModelView) => number }> = [
    { models: interactive, weight: (m) => m.demand.interactive },
    { models: busy.filter((m) => m.demand.interactive <= 0), weight: (m) => m.demand.batch },
  ];
  // Batch-only runners get more than their floors only when no runner with interactive work can take a core.
  for (const tier of tiers) {
    while (total < cores) {
      const next = mostUnderserved(tier.models, out, cap, tier.weight);
      if (!next) break;
      out.set(next.name, out.get(next.name)! + 1);
      total++;
    }
  }
  return out;
}

/**
 * The runner that the next core goes to: the largest weight per thread it would then have (D'Hondt), so threads
 * end up proportional to demand. Ties go to the first by name, so the decision is deterministic.
 */
function mostUnderserved(
  models: readonly ModelView[],
  threads: Map<string, number>,
  cap: number,
  weight: (m: ModelView) => number,
): ModelView | undefined {
  let best: ModelView | undefined;
  let bestScore = -Infinity;
  for (const m of models) {
    const t = threads.get(m.name)!;
    if (t >= cap) continue;
    const score = Math.max(weight(m), 1e-9) / (t + 1);
    if (score > bestScore) {
      best = m;
      bestScore = score;
    }
  }
  return best;
}

/** CPU sets for runners whose threads fit the cores: each keeps what it has where it can, then takes free CPUs. */
function assignCpus(
  runners: readonly (ModelView & { cpu: CpuView })[],
  threads: Map<string, number>,
  cpus: readonly number[],
): Map<string, number[]> {
  const free = new Set(cpus);
  const out = new Map<string, number[]>();
  for (const m of runners) {
    const keep = m.cpu.cpus.filter((c) => free.has(c)).slice(0, threads.get(m.name)!);
    for (const c of keep) free.delete(c);
    out.set(m.name, keep);
  }
  for (const m of runners) {
    const set = out.get(m.name)!;
    for (const c of free) {
      if (set.length >= threads.get(m.name)!) break;
      set.push(c);
      free.delete(c);
    }
    set.sort((a, b) => a - b);
  }
  return out;
}

function sum<T>(items: readonly T[], f: (item: T) => number): number {
  let total = 0;
  for (const item of items) total += f(item);
  return total;
}
