import type { RunnerHandle } from "../runtime/runner-handle.js";
import { FairQueue, type Priority } from "./fair-queue.js";
import {
  runnerOf,
  sizingOf,
  transition,
  type LifecycleEvent,
  type ModelState,
  type ModelStateKind,
} from "./model-lifecycle.js";
import type { LoadOptions } from "./model-spec.js";
import type { PrewarmWindow } from "./policy.js";
import type { ModelView } from "./snapshot.js";

/** A model's runner's CPU allotment: what the scheduler decided, and what the runner has applied. */
export interface RunnerCpuState {
  /** Decided decode threads (0 while the model is idle). */
  threads: number;
  cpus: number[];
  shared: boolean;
  /** When `threads` last changed, and when the decision was last made (ms since the epoch). */
  changedAt: number;
  decidedAt: number;
  /** Counts decisions, so a late answer for an earlier one is not taken for the latest. */
  version: number;
  /** When the runner confirmed the decision (null while it is on its way). */
  appliedAt: number | null;
  /**
   * What the runner decodes with (its threadpool) and whether it counts its steps as contended, once the
   * allotments sent to it are applied (in the order sent).
   */
  runnerThreads: number;
  runnerShared: boolean;
  /** The CPU set applied to the runner's process by the placement, or null when none is. */
  placedCpus: number[] | null;
}

/** A request waiting in a model's queue. */
export interface Waiter {
  /** The entry whose queue holds this waiter (changes when a gone model's queue moves to a fresh load). */
  home: ModelEntry;
  tenant: string;
  priority: Priority;
  enqueuedAt: number;
  resolve: (lease: SlotLease) => void;
  reject: (error: unknown) => void;
  cleanup: () => void;
}

/** A granted slot: the runner to use and how to give the slot back. */
export interface SlotLease {
  readonly handle: RunnerHandle;
  readonly model: string;
  readonly contextSize: number;
  /** Milliseconds spent waiting in the queue. */
  readonly queuedMs: number;
  /** Milliseconds this request spent waiting for its model to load (0 if it was loaded). */
  readonly loadMs: number;
  /** Gives the slot back. `keepAliveMs` overrides the model's keep-alive from now on. */
  release(opts?: { keepAliveMs?: number }): void;
}

/**
 * A model the scheduler holds: its lifecycle state (see model-lifecycle.ts) and what lives across states, its
 * queue, slots in use, pin and keep-alive, and when it was last used.
 */
export class ModelEntry {
  private current: ModelState;
  busy = 0;
  pinned = false;
  /** -1 = never expire. */
  keepAliveMs: number;
  /** The keep-alive came from a request or a load call, not the daemon's default (it wins over the policy). */
  keepAliveExplicit = false;
  /** The prewarm window this entry was loaded for, until a request uses it (then null). */
  prewarm: PrewarmWindow | null = null;
  lastUsed: number;
  /** Since when the model has been ready with no request running or queued (null while it is not). */
  idleSince: number | null = null;
  /** Explicit `load` calls waiting for this entry (a load nobody waits for any more is abandoned). */
  explicitLoads = 0;
  /** When this entry's load began (its turn in the load queue came); requests older than this waited for it. */
  loadStartedAt: number;
  /** Set on a draining model that is reloaded with other settings: the fresh load uses these. */
  reloadWith: LoadOptions | undefined;
  /** Runner RSS last measured. */
  measuredRssBytes: number | null = null;
  /** The least decode threads this model gets while busy (load option `minThreads`). */
  minThreads = 1;
  /** When a request last gave its slot back (null: none yet). */
  lastActiveAt: number | null = null;
  /** Its runner's CPU allotment (null until it has a runner). */
  cpu: RunnerCpuState | null = null;
  /** Requests holding a slot, by priority class and tenant (their CPU demand). */
  private readonly running = new Map<string, { tenant: string; priority: Priority; count: number }>();
  /** Completion times in the last minute, for the observed service rate. */
  private readonly completions: number[] = [];
  /** Settles when the load ends: ready, or failed with the load's error. */
  readonly loaded: Promise<void>;
  private settleLoad!: { resolve: () => void; reject: (error: unknown) => void };
  /** Resolves when the model reaches a terminal state. */
  readonly gone: Promise<void>;
  private markGone!: () => void;

  readonly queue: FairQueue<Waiter>;

  constructor(
    readonly name: string,
    keepAliveMs: number,
    now: number,
    /** Fair-queue weight of a tenant (its share of slots in the queue, and of the CPU across models). */
    private readonly weightOf: (tenant: string) => number = () => 1,
  ) {
    this.queue = new FairQueue<Waiter>(weightOf);
    this.keepAliveMs = keepAliveMs;
    this.lastUsed = now;
    this.loadStartedAt = now;
    this.current = { kind: "loading", since: now };
    this.loaded = new Promise<void>((resolve, reject) => (this.settleLoad = { resolve, reject }));
    this.loaded.catch(() => undefined);
    this.gone = new Promise<void>((resolve) => (this.markGone = resolve));
  }

  get state(): ModelState {
    return this.current;
  }

  get kind(): ModelStateKind {
    return this.current.kind;
  }

  /** Moves along the lifecycle (throws on an illegal edge) and keeps the derived fields in step. */
  apply(event: LifecycleEvent, now: number): ModelState {
    this.current = transition(this.current, event, now);
    if (this.current.kind === "ready") {
      this.settleLoad.resolve();
      this.lastUsed = now;
      this.updateIdle(now);
    } else {
      this.idleSince = null;
    }
    if (this.current.kind === "failed") this.settleLoad.reject(this.current.error);
    if (this.current.kind === "unloaded" || this.current.kind === "failed" || this.current.kind === "crashed")
      this.markGone();
    return this.current;
  }

  get runner(): RunnerHandle | undefined {
    return runnerOf(this.current);
  }

  get idle(): boolean {
    return this.current.kind === "ready" && this.busy === 0 && this.queue.size === 0;
  }

  /** Someone still waits for this load: a queued request or an explicit load call. */
  get wanted(): boolean {
    return this.queue.size > 0 || this.explicitLoads > 0;
  }

  /** Bytes this entry reserves in the RAM budget (the part not offloaded to a GPU); 0 before sizing. */
  get reservedBytes(): number {
    return sizingOf(this.current)?.ramBytes ?? 0;
  }

  get vramBytes(): number {
    return sizingOf(this.current)?.vramBytes ?? 0;
  }

  get slots(): number {
    return sizingOf(this.current)?.slots ?? 0;
  }

  get contextSize(): number {
    return sizingOf(this.current)?.contextSize ?? 0;
  }

  /** Starts or stops the idle clock after anything that changes busy, queue or state. */
  updateIdle(now: number): void {
    if (!this.idle) this.idleSince = null;
    else this.idleSince ??= now;
  }

  /** Sets the keep-alive a request or load call gave (it wins over the policy's from now on). */
  setKeepAlive(ms: number): void {
    this.keepAliveMs = ms;
    this.keepAliveExplicit = true;
  }

  /** Why the model is in memory: a pin (or keep_alive -1), a prewarm nobody used yet, or a request or load call. */
  get loadedFor(): "pin" | "prewarm" | "request" {
    if (this.pinned || this.keepAliveMs < 0) return "pin";
    return this.prewarm ? "prewarm" : "request";
  }

  /** An explicit load or keep-alive change restarts the idle clock of an idle model. */
  touch(now: number): void {
    if (this.idle) this.idleSince = now;
  }

  /** A request got a slot (its tenant's weight counts in the model's CPU demand until it gives it back). */
  startRequest(tenant: string, priority: Priority): void {
    const key = `${priority}\u0000${tenant}`;
    const r = this.running.get(key);
    if (r) r.count++;
    else this.running.set(key, { tenant, priority, count: 1 });
  }

  /** A request gave its slot back at `now`. */
  endRequest(tenant: string, priority: Priority, now: number): void {
    const key = `${priority}\u0000${tenant}`;
    const r = this.running.get(key);
    if (r && --r.count <= 0) this.running.delete(key);
    this.lastActiveAt = now;
  }

  /** Running and queued requests, each weighted by its tenant's fair-queue weight, by priority class. */
  demand(): { interactive: number; batch: number } {
    const out = { interactive: 0, batch: 0 };
    for (const r of this.running.values()) out[r.priority] += r.count * this.weightOf(r.tenant);
    for (const q of this.queue.counts()) out[q.priority] += q.count * this.weightOf(q.tenant);
    return out;
  }

  recordCompletion(now: number): void {
    this.completions.push(now);
    this.trimCompletions(now);
  }

  /** Requests completed per second over the last minute (0 when unknown). */
  serviceRate(now: number): number {
    this.trimCompletions(now);
    if (this.completions.length < 2) return 0;
    const span = (now - this.completions[0]!) / 1000;
    return span > 0 ? this.completions.length / span : 0;
  }

  /** What decisions see of this model. */
  view(now: number): ModelView {
    return {
      name: this.name,
      state: this.current.kind,
      reservedBytes: this.reservedBytes,
      vramBytes: this.vramBytes,
      slots: this.slots,
      busy: this.busy,
      queued: this.queue.size,
      pinned: this.pinned,
      keepAliveMs: this.keepAliveMs,
      keepAliveExplicit: this.keepAliveExplicit,
      prewarmed: this.prewarm !== null,
      lastUsed: this.lastUsed,
      idleSince: this.idleSince,
      wanted: this.wanted,
      serviceRate: this.serviceRate(now),
      demand: this.demand(),
      lastActiveAt: this.lastActiveAt,
      minThreads: this.minThreads,
      cpu: this.cpu && { threads: this.cpu.threads, cpus: this.cpu.cpus, changedAt: this.cpu.changedAt },
    };
  }

  private trimCompletions(now: number): void {
    while (this.completions.length && this.completions[0]! < now - 60_000) this.completions.shift();
  }
}
