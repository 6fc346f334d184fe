import type { KeepPolicyName, LoadedModel, PsResponse } from "@llmos/protocol";
import { LlmosError } from "../errors.js";
import { noCpuPlacement, type CpuPlacement } from "../runtime/cpu-placement.js";
import type { RunnerFactory } from "../runtime/runner-handle.js";
import type { Logger } from "../telemetry/logger.js";
import type { Metrics } from "../telemetry/metrics.js";
import { enqueue, queueFullError } from "./admission.js";
import { sleep, systemClock, type Clock } from "./clock.js";
import type { LoadOptions, SchedulerContext, SchedulerLimits, SchedulerOptions } from "./context.js";
import { decideCpuAllotments } from "./cpu-allotment.js";
import { decideAdmission, planHousekeeping } from "./decisions.js";
import { SchedulerEvents, type SchedulerListener } from "./events.js";
import { Executor } from "./executor.js";
import { publishModelEvents } from "./hub-bridge.js";
import type { Priority } from "./fair-queue.js";
import { normalizeKeepAlive } from "./keep-alive.js";
import { jobMemoryBytes, type JobWorkload } from "./job-estimate.js";
import { Loader } from "./loader.js";
import { PrestartKeeper } from "./prestart-keeper.js";
import { MemoryReservations, type MemoryReservation, type ReservationRequest } from "./memory-reservations.js";
import type { PlacementEstimate } from "./sizing.js";
import { ModelEntry, type SlotLease } from "./model-entry.js";
import type { ModelSource } from "./model-spec.js";
import { ModelTable } from "./model-table.js";
import { OomHistory } from "./oom-history.js";
import { FixedKeepAlivePolicy, type PrewarmWindow, type SchedulingPolicy } from "./policy.js";
import { PsReport } from "./ps-report.js";
import type { SchedulerSnapshot } from "./snapshot.js";
import { IdleMemoryMeter } from "./usage/idle-memory.js";
import type { UsageModel } from "./usage/usage-model.js";

export type { LoadOptions, SchedulerLimits, SchedulerOptions } from "./context.js";

export interface AcquireOptions {
  tenant?: string;
  priority?: Priority;
  signal?: AbortSignal;
  /** Keep-alive from this request on (ms; -1 forever; 0 unload when idle). */
  keepAliveMs?: number;
  /** Max time in the queue (default from options). */
  queueTimeoutMs?: number;
}

/**
 * What the daemon may swap in: the policy (default `fixed`), the usage model it learns into, the CPU placement,
 * tenant weights and, for tests, the clock.
 */
export interface SchedulerParts {
  policy?: SchedulingPolicy;
  /** Learns each model's usage from the scheduler's events (read by learned policies). */
  usage?: UsageModel;
  clock?: Clock;
  /** Applies runners' CPU sets (default: none, threads are not pinned). */
  placement?: CpuPlacement;
  /** A tenant's fair-queue weight: its share of a model's slots and of the CPU across models (default 1). */
  tenantWeight?: (tenant: string) => number;
  /** What `/api/ps` says about the policy, e.g. that it fell back from the configured one (and why). */
  policyNote?: { configured: KeepPolicyName; warning?: string };
}

/** Default hysteresis of CPU allotments (see cpu-allotment.ts): short next to the 100 ms a regrowth may take. */
const DEFAULT_CPU_HOLD_MS = 50;

/**
 * Decides which models live in memory and which request runs next. Loads on first use (one load at a time),
 * places models within the memory budget (evicting idle ones as the policy chooses, least recently used first by
 * default), queues requests per model with fair queuing across tenants, and unloads idle models when their
 * keep-alive runs out. Decisions are pure functions over a snapshot (decisions.ts, sizing.ts, policy.ts); the
 * executor and the loader apply them; every change is announced as a typed event (`subscribe`).
 */
export class Scheduler {
  private readonly table = new ModelTable();
  private readonly ooms = new OomHistory();
  private readonly events: SchedulerEvents;
  private readonly clock: Clock;
  private readonly policy: SchedulingPolicy;
  private readonly options: SchedulerOptions;
  private readonly executor: Executor;
  private readonly loader: Loader;
  private readonly reservations: MemoryReservations;
  private readonly prestart: PrestartKeeper;
  private readonly tenantWeight: (tenant: string) => number;
  private readonly idleMemory: IdleMemoryMeter;
  private readonly report: PsReport;
  private closing = false;
  private reconciling = false;
  private reconcileAgain = false;

  constructor(
    private readonly source: ModelSource,
    runners: RunnerFactory,
    options: SchedulerOptions,
    private readonly logger: Logger,
    private readonly metrics: Metrics,
    parts: SchedulerParts = {},
  ) {
    this.options = { ...options, keepAliveMs: normalizeKeepAlive(options.keepAliveMs) };
    this.clock = parts.clock ?? systemClock;
    this.policy = parts.policy ?? new FixedKeepAlivePolicy();
    this.tenantWeight = parts.tenantWeight ?? (() => 1);
    this.events = new SchedulerEvents((err, event) =>
      logger.error({ err, event: event.type }, "a scheduler event listener failed"),
    );
    // The usage model and the policy learn from every event before the decisions that follow it.
    const usage = parts.usage;
    if (usage) this.events.subscribe((e) => usage.observe(e));
    const observe = this.policy.observe?.bind(this.policy);
    if (observe) this.events.subscribe(observe);
    this.idleMemory = new IdleMemoryMeter((model, byteSeconds) => metrics.idleMemory.inc({ model }, byteSeconds));
    this.events.subscribe(() => this.idleMemory.update(this.snapshot()));
    metrics.onCollect(() => this.idleMemory.advance(this.clock.now()));
    metrics.keepPolicy.set(
      { policy: this.policy.name, configured: parts.policyNote?.configured ?? this.policy.name },
      1,
    );
    this.events.subscribe(publishModelEvents(metrics.events));
    const ctx: SchedulerContext = {
      table: this.table,
      events: this.events,
      clock: this.clock,
      policy: this.policy,
      source,
      runners,
      options: this.options,
      logger,
      metrics,
      ooms: this.ooms,
      closing: () => this.closing,
      snapshot: () => this.snapshot(),
      reconcile: () => this.reconcile(),
      startLoad: (name, opts, prewarm) => this.startLoad(name, opts, prewarm),
    };
    this.executor = new Executor(ctx, parts.placement ?? noCpuPlacement);
    this.loader = new Loader(ctx, this.executor);
    this.reservations = new MemoryReservations(ctx, this.executor);
    this.prestart = new PrestartKeeper(runners, this.loader, metrics, this.options.prestart === true);
    this.report = new PsReport({
      table: this.table,
      options: this.options,
      executor: this.executor,
      policy: this.policy,
      policyNote: parts.policyNote,
      ooms: this.ooms,
      clock: this.clock,
      snapshot: () => this.snapshot(),
    });
    metrics.memoryBytes.set({ kind: "budget" }, options.memoryBudgetBytes);
    // A prestarted runner that came up (it no longer takes a core) or went away: decide again.
    if (this.options.prestart) runners.onPrestartedChange?.(() => this.reconcile());
    // A policy may want models loaded before any request: ask it once the daemon has finished wiring.
    queueMicrotask(() => this.reconcile());
  }

  get budgetBytes(): number {
    return this.options.memoryBudgetBytes;
  }

  /** The keep-alive policy's name. */
  get policyName(): string {
    return this.policy.name;
  }

  /** Idle memory-seconds so far (bytes x seconds of loaded models serving nothing), per model. */
  idleMemoryByteSeconds(): Map<string, number> {
    this.idleMemory.advance(this.clock.now());
    return this.idleMemory.byModel();
  }

  /** Calls `listener` with every scheduler event from now on (see events.ts); returns the unsubscribe function. */
  subscribe(listener: SchedulerListener): () => void {
    return this.events.subscribe(listener);
  }

  /** What the scheduler's decisions see now: models, memory, queues, time. */
  snapshot(): SchedulerSnapshot {
    const snapshot = this.table.snapshot(
      this.clock.now(),
      { memoryBudgetBytes: this.options.memoryBudgetBytes, vramBudgetBytes: this.options.vramBudgetBytes?.() },
      { maxQueuePerModel: this.options.maxQueuePerModel, maxQueueTotal: this.options.maxQueueTotal },
      {
        cpus: this.options.cpus,
        maxThreadsPerRunner: this.options.threads,
        holdMs: this.options.cpuHoldMs ?? DEFAULT_CPU_HOLD_MS,
      },
    );
    // Absent before the constructor made the reservations (the executor may take a snapshot while it is built).
    const jobBytes = this.reservations?.total() ?? 0;
    const prestart = this.prestart?.view();
    return { ...snapshot, ...(jobBytes > 0 ? { jobBytes } : {}), ...(prestart ? { prestart } : {}) };
  }

  /**
   * Takes `request.bytes` out of the memory budget for a model-tool job's worker (quantize, imatrix, eval), placed
   * like a load: idle models are evicted as the policy chooses, busy ones waited for. Release it when the worker
   * has exited. @throws `insufficient_memory` when it can never fit; `client_closed` when `signal` aborts first.
   */
  reserveMemory(request: ReservationRequest, signal?: AbortSignal): Promise<MemoryReservation> {
    if (this.closing) return Promise.reject(new LlmosError("unavailable", "llmos is shutting down"));
    return this.loader.inTurn(() => this.reservations.place(request, signal));
  }

  /** {@link reserveMemory} for a job's worker, estimated from what it holds (job-estimate.ts). */
  reserveJobMemory(
    request: { job: string; model: string; workload: JobWorkload },
    signal?: AbortSignal,
  ): Promise<MemoryReservation> {
    const { job, model, workload } = request;
    return this.reserveMemory({ job, model, bytes: jobMemoryBytes(workload) }, signal);
  }

  /** Changes limits while running (queue bounds and timeout, memory budget); they apply to the next decision. */
  setLimits(limits: Partial<SchedulerLimits>): void {
    for (const [key, value] of Object.entries(limits) as Array<[keyof SchedulerLimits, number | undefined]>)
      if (value !== undefined) this.options[key] = value;
    this.metrics.memoryBytes.set({ kind: "budget" }, this.options.memoryBudgetBytes);
    this.reconcile();
  }

  /** Waits for a free slot of `name`, loading the model first when needed. */
  async acquire(name: string, opts: AcquireOptions = {}): Promise<SlotLease> {
    if (this.closing) throw new LlmosError("unavailable", "llmos is shutting down");
    const key = this.source.canonicalName(name);
    opts.signal?.throwIfAborted();
    const now = this.clock.now();
    const request = { tenant: opts.tenant ?? "anonymous", priority: opts.priority ?? "interactive", enqueuedAt: now };
    this.events.emit({
      type: "request.arrived",
      model: key,
      tenant: request.tenant,
      priority: request.priority,
      at: now,
    });
    this.table.releasedByKeepAlive.delete(key);
    const entry = this.table.get(key) ?? this.startLoad(key, {});
    if (opts.keepAliveMs !== undefined) entry.setKeepAlive(normalizeKeepAlive(opts.keepAliveMs));
    const decision = decideAdmission(entry.view(now), this.snapshot());
    if (decision.kind === "grant") {
      const lease = this.executor.grant(entry, request);
      // The runner's CPU allotment goes out before the request's generate message does.
      this.reconcile();
      return lease;
    }
    if (decision.kind === "reject") {
      this.events.emit({ type: "request.rejected", model: key, ...request, at: now, code: "queue_full", waitedMs: 0 });
      throw queueFullError(key, decision);
    }
    return enqueue(entry, {
      tenant: request.tenant,
      priority: request.priority,
      signal: opts.signal,
      timeoutMs: opts.queueTimeoutMs ?? this.options.queueTimeoutMs,
      clock: this.clock,
      onQueued: (w) => {
        this.executor.updateQueueDepth(w.home);
        this.events.emit({ type: "request.queued", model: key, ...request, at: now, queued: w.home.queue.size });
      },
      onLeave: (w, error) => {
        const left = this.clock.now();
        this.executor.updateQueueDepth(w.home);
        w.home.updateIdle(left);
        const code = error instanceof LlmosError ? error.code : null;
        this.events.emit({ type: "request.rejected", model: key, ...request, at: left, code, waitedMs: left - now });
        this.reconcile();
      },
    });
  }

  /** Loads a model (if needed) and applies keep-alive / pin settings. */
  async load(name: string, opts: LoadOptions = {}): Promise<LoadedModel> {
    if (this.closing) throw new LlmosError("unavailable", "llmos is shutting down");
    const key = this.source.canonicalName(name);
    let entry = this.table.get(key);
    if (entry?.kind === "draining") {
      // Being unloaded: load afresh once it is gone (its queue may have started that load already).
      await entry.gone;
      entry = this.table.get(key);
    }
    if (
      entry?.kind === "ready" &&
      ((opts.contextSize && opts.contextSize !== entry.contextSize) || (opts.parallel && opts.parallel !== entry.slots))
    ) {
      // Other settings: drain and unload, then the fresh load (with these settings) takes its queue.
      entry.reloadWith = { ...opts };
      await this.unloadEntry(entry);
      entry = this.table.get(key);
    }
    entry ??= this.startLoad(key, opts);
    entry.explicitLoads++;
    try {
      await entry.loaded;
    } finally {
      entry.explicitLoads--;
    }
    if (opts.pinned !== undefined) entry.pinned = opts.pinned;
    if (opts.keepAliveMs !== undefined) entry.setKeepAlive(normalizeKeepAlive(opts.keepAliveMs));
    if (opts.minThreads !== undefined) entry.minThreads = opts.minThreads;
    // An explicit load is a use: a prewarmed model it finds is no longer only a prediction.
    if (entry.prewarm) {
      entry.prewarm = null;
      this.metrics.prewarms.inc({ result: "used" });
    }
    entry.touch(this.clock.now());
    this.reconcile();
    return this.report.describe(entry, await this.report.statsOf(entry));
  }

  /** The memory a load of `name` would reserve here, with the default context and at least (cluster placement). */
  estimate(name: string): Promise<PlacementEstimate> {
    return this.loader.estimate(this.source.canonicalName(name));
  }

  /** Unloads a model after its in-flight requests finish (new ones wait, then start a fresh load). */
  async unload(name: string): Promise<boolean> {
    const key = this.source.canonicalName(name);
    const entry = this.table.get(key);
    if (!entry) return false;
    if (entry.kind === "loading" || entry.kind === "placing" || entry.kind === "starting")
      await entry.loaded.catch(() => undefined);
    if (entry.kind !== "ready" && entry.kind !== "draining") return false;
    entry.pinned = false;
    await this.unloadEntry(entry);
    return true;
  }

  /** Loaded models with slots, queue, memory and engine counters (`GET /api/ps`). */
  ps(): Promise<PsResponse> {
    return this.report.ps();
  }

  /** Decode steps of each loaded runner, and how many of them ran under contention (for `/metrics`). */
  runnerSteps(): Promise<Array<{ model: string; decodeBatches: number; contendedBatches: number }>> {
    return this.report.runnerSteps();
  }

  /** Memory reserved by loaded and loading models and by running jobs (estimates). */
  reservedBytes(): number {
    return this.table.reservedBytes() + this.reservations.total();
  }

  /** Stops accepting work, waits for in-flight requests (up to `drainMs`), stops every runner. */
  async shutdown(drainMs = 10_000): Promise<void> {
    this.closing = true;
    this.prestart.stop();
    const now = this.clock.now();
    for (const entry of this.table.named()) {
      for (const w of entry.queue.drain()) {
        w.cleanup();
        w.reject(new LlmosError("unavailable", "llmos is shutting down"));
        const { tenant, priority } = w;
        this.events.emit({
          type: "request.rejected",
          model: entry.name,
          tenant,
          priority,
          at: now,
          code: "unavailable",
          waitedMs: now - w.enqueuedAt,
        });
      }
    }
    const drained = this.events.until(() => this.table.all().every((e) => e.busy === 0));
    await Promise.race([drained, sleep(this.clock, drainMs)]);
    await this.loader.settled();
    await Promise.all(
      this.table.all().map((e) => (e.kind === "unloading" ? e.gone : this.executor.evict(e, "shutdown"))),
    );
    this.executor.dispose();
  }

  private startLoad(name: string, opts: LoadOptions, prewarm?: PrewarmWindow): ModelEntry {
    const now = this.clock.now();
    const keepAlive = normalizeKeepAlive(opts.keepAliveMs ?? this.options.keepAliveMs);
    const entry = new ModelEntry(name, keepAlive, now, this.tenantWeight);
    entry.keepAliveExplicit = opts.keepAliveMs !== undefined;
    entry.prewarm = prewarm ?? null;
    if (opts.pinned) entry.pinned = true;
    if (opts.minThreads !== undefined) entry.minThreads = opts.minThreads;
    this.table.add(entry);
    this.events.emit({ type: "model.loading", model: name, at: now, ...(prewarm ? { prewarm: true } : {}) });
    this.loader.enqueue(entry, opts);
    return entry;
  }

  private async unloadEntry(entry: ModelEntry): Promise<void> {
    this.executor.drain(entry);
    this.reconcile();
    await entry.gone;
  }

  /** Decides what follows from the current state and applies it; re-runs when called while it runs. */
  private reconcile(): void {
    if (this.reconciling) {
      this.reconcileAgain = true;
      return;
    }
    this.reconciling = true;
    try {
      do {
        this.reconcileAgain = false;
        this.executor.apply(planHousekeeping(this.snapshot(), this.policy, this.closing));
        // After the grants: the runners that now have work get their share of the cores.
        this.executor.cpu.apply(decideCpuAllotments(this.snapshot()));
        this.prestart.apply(this.snapshot(), this.closing);
      } while (this.reconcileAgain);
    } finally {
      this.reconciling = false;
    }
  }
}
