/**
 * Applies what the decisions (decisions.ts) planned: hands slots to queued requests, stops runners (evictions,
 * expiries, drained unloads, shutdown), handles a runner that crashed, moves the queue of a model that went away
 * to a fresh load, starts the policy's preloads and prewarms, and keeps the one timer that wakes the scheduler at
 * the next keep-alive deadline or prewarm window.
 */
import type { CpuPlacement } from "../runtime/cpu-placement.js";
import type { RunnerExit } from "../runtime/runner-handle.js";
import { MAX_TIMER_MS } from "./clock.js";
import type { SchedulerContext } from "./context.js";
import { CpuApplier } from "./cpu-applier.js";
import type { HousekeepingPlan } from "./decisions.js";
import type { PrewarmWindow } from "./policy.js";
import { normalizeKeepAlive } from "./keep-alive.js";
import type { UnloadReason } from "./model-lifecycle.js";
import type { ModelEntry, SlotLease, Waiter } from "./model-entry.js";

export class Executor {
  private wakeAt: number | null = null;
  private cancelWake: (() => void) | undefined;
  /** Policy preloads that failed: not tried again (a failing preload must not loop). */
  private readonly failedPreloads = new Set<string>();
  /** Applies the CPU decisions (runners' thread counts and CPU sets). */
  readonly cpu: CpuApplier;
  /**
   * Prewarm windows acted on (by model and the request they follow): the read-ahead started, and whether a load
   * was tried. A window gets one read and at most one load: a prewarm that failed, did not fit or was evicted is
   * not tried again until the model's next request opens a new window.
   */
  private readonly prewarms = new Map<string, { until: number; read: Promise<void>; loadTried: boolean }>();

  constructor(
    private readonly ctx: SchedulerContext,
    placement: CpuPlacement,
  ) {
    this.cpu = new CpuApplier(ctx, placement);
  }

  apply(plan: HousekeepingPlan): void {
    for (const { model, count } of plan.grants) {
      const entry = this.ctx.table.get(model);
      for (let i = 0; entry && i < count; i++) {
        const waiter = entry.queue.shift();
        if (!waiter) break;
        waiter.cleanup();
        waiter.resolve(this.grant(entry, waiter));
      }
      if (entry) this.updateQueueDepth(entry);
    }
    for (const { model, reason } of plan.unload) {
      const entry = this.ctx.table.get(model);
      if (entry) void this.evict(entry, reason);
    }
    for (const name of plan.preload) this.preload(name);
    for (const p of plan.prewarm) this.prewarm(p.window, p.load);
    this.armWake(plan.wakeAt);
  }

  /** Gives `entry`'s free slot to a request that asked (or queued) at `request.enqueuedAt`. */
  grant(entry: ModelEntry, request: Pick<Waiter, "tenant" | "priority" | "enqueuedAt">): SlotLease {
    const state = entry.state;
    if (state.kind !== "ready") throw new Error(`cannot grant a slot of ${entry.name} while it is ${state.kind}`);
    const { clock, events, metrics } = this.ctx;
    const now = clock.now();
    if (entry.prewarm) {
      entry.prewarm = null;
      metrics.prewarms.inc({ result: "used" });
    }
    entry.busy++;
    entry.startRequest(request.tenant, request.priority);
    entry.lastUsed = now;
    entry.updateIdle(now);
    const queuedMs = now - request.enqueuedAt;
    metrics.queueWait.observe({ model: entry.name }, queuedMs / 1000);
    // The part of the wait that overlapped this model's load (a request that arrived just before the load began
    // waited for all of it; one that arrived after the model was ready, for none).
    const loadEnd = Math.min(now, entry.loadStartedAt + state.runner.loadMs);
    const loadMs = Math.max(0, loadEnd - Math.max(request.enqueuedAt, entry.loadStartedAt));
    const who = { model: entry.name, tenant: request.tenant, priority: request.priority };
    events.emit({ type: "request.started", ...who, at: now, queuedMs, loadMs });
    let released = false;
    return {
      handle: state.runner,
      model: entry.name,
      contextSize: state.sizing.contextSize,
      queuedMs,
      loadMs,
      release: (opts) => {
        if (released) return;
        released = true;
        const end = clock.now();
        entry.busy--;
        entry.endRequest(request.tenant, request.priority, end);
        entry.lastUsed = end;
        entry.recordCompletion(end);
        if (opts?.keepAliveMs !== undefined) entry.setKeepAlive(normalizeKeepAlive(opts.keepAliveMs));
        entry.updateIdle(end);
        events.emit({ type: "request.finished", ...who, at: end, heldMs: end - now });
        this.ctx.reconcile();
      },
    };
  }

  /** Takes no new requests on `entry`; it unloads once its last request is done (see planHousekeeping). */
  drain(entry: ModelEntry): void {
    if (entry.kind !== "ready") return;
    entry.apply({ type: "drain", reason: "unload" }, this.ctx.clock.now());
  }

  /** Stops `entry`'s runner and forgets the model; its queued requests move to a fresh load. */
  /** Evicts the named models that are still held, one after another (a placement's victims). */
  async evictNamed(names: readonly string[]): Promise<void> {
    for (const name of names) {
      const victim = this.ctx.table.get(name);
      if (victim) await this.evict(victim, "evicted");
    }
  }

  async evict(entry: ModelEntry, reason: UnloadReason): Promise<void> {
    const state = entry.state;
    if (state.kind !== "ready" && state.kind !== "draining") return;
    const { table, events, clock, metrics, logger } = this.ctx;
    entry.apply({ type: "stop", reason }, clock.now());
    table.detach(entry, true);
    this.cpu.detach(entry);
    if (entry.keepAliveExplicit && reason === "expired") table.releasedByKeepAlive.add(entry.name);
    if (reason === "evicted" || reason === "oom_retry") metrics.evictions.inc();
    if (entry.prewarm && reason !== "shutdown") metrics.prewarms.inc({ result: "wasted" });
    logger.info({ model: entry.name, reason }, "unloading model");
    events.emit({ type: "model.unloading", model: entry.name, at: clock.now(), reason });
    await state.runner.stop();
    entry.apply({ type: "stopped" }, clock.now());
    table.detach(entry, false);
    state.spec.release();
    this.updateModelMetrics();
    events.emit({ type: "model.unloaded", model: entry.name, at: clock.now(), reason });
    this.requeueOrphans(entry);
    this.ctx.reconcile();
  }

  /**
   * A runner exited: if it was not asked to, its model crashed (in-flight requests already failed). A stall (the
   * progress watchdog killed it: it had work and made no progress) is counted apart from crashes. When the kernel
   * stopped it at its memory limit, the model's next load gets a raised estimate (oom-history.ts).
   */
  onRunnerExit(entry: ModelEntry, exit: RunnerExit): void {
    const state = entry.state;
    const stalled = exit.stalled === true;
    if (stalled) this.ctx.metrics.runnerStalls.inc();
    if (exit.expected || (state.kind !== "ready" && state.kind !== "draining")) return;
    const { table, events, clock, metrics, logger, ooms } = this.ctx;
    const now = clock.now();
    entry.apply({ type: "crash" }, now);
    table.detach(entry, false);
    this.cpu.detach(entry);
    state.spec.release();
    if (!stalled) metrics.runnerCrashes.inc();
    let nextEstimateBytes: number | null = null;
    if (exit.oomKilled) {
      const record = ooms.record(
        entry.name,
        {
          estimateBytes: state.sizing.ramBytes,
          limitBytes: exit.memoryLimitBytes,
          peakBytes: exit.peakMemoryBytes,
        },
        now,
      );
      nextEstimateBytes = record.nextEstimateBytes;
      metrics.runnerOomKills.inc({ model: entry.name });
      logger.error(
        { model: entry.name, limitBytes: exit.memoryLimitBytes, peakBytes: exit.peakMemoryBytes, nextEstimateBytes },
        "runner went past its memory limit and the kernel stopped it; its requests failed with runner_oom, the next load gets more memory",
      );
    } else {
      logger.error(
        { model: entry.name },
        `runner ${stalled ? "stalled and was killed" : "crashed"}; its in-flight requests failed, the next request starts a fresh runner`,
      );
    }
    this.updateModelMetrics();
    events.emit({
      type: "model.crashed",
      model: entry.name,
      at: now,
      cause: exit.oomKilled ? "oom" : "exit",
      memoryLimitBytes: exit.memoryLimitBytes,
      peakMemoryBytes: exit.peakMemoryBytes,
      nextEstimateBytes,
    });
    this.requeueOrphans(entry);
    this.ctx.reconcile();
  }

  /** Requests still queued on a model that went away (or a reload asked for) wait for a fresh load. */
  requeueOrphans(old: ModelEntry): void {
    if (this.ctx.closing() || (old.queue.size === 0 && !old.reloadWith)) return;
    const fresh = this.ctx.table.get(old.name) ?? this.ctx.startLoad(old.name, old.reloadWith ?? {});
    fresh.keepAliveMs = old.keepAliveMs;
    fresh.keepAliveExplicit = old.keepAliveExplicit;
    for (const w of old.queue.drain()) {
      w.home = fresh;
      fresh.queue.push(w, w.tenant, w.priority);
    }
    this.updateQueueDepth(fresh);
  }

  updateQueueDepth(entry: ModelEntry): void {
    this.ctx.metrics.queueDepth.set({ model: entry.name }, entry.queue.size);
  }

  updateModelMetrics(): void {
    this.ctx.metrics.loadedModels.set(this.ctx.table.countReady());
    this.ctx.metrics.memoryBytes.set({ kind: "reserved" }, this.ctx.table.reservedBytes());
  }

  /** Stops the keep-alive timer (shutdown). */
  dispose(): void {
    this.cpu.dispose();
    this.cancelWake?.();
    this.cancelWake = undefined;
    this.wakeAt = null;
  }

  private preload(name: string): void {
    if (this.ctx.closing() || this.failedPreloads.has(name)) return;
    let key: string;
    try {
      key = this.ctx.source.canonicalName(name);
    } catch (error) {
      this.failedPreloads.add(name);
      this.ctx.logger.error({ err: error, model: name }, "policy preload: invalid model name");
      return;
    }
    if (this.ctx.table.get(key)) return;
    const entry = this.ctx.startLoad(key, {});
    entry.explicitLoads++;
    entry.loaded.then(
      () => entry.explicitLoads--,
      (error: unknown) => {
        entry.explicitLoads--;
        this.failedPreloads.add(name);
        this.ctx.logger.error({ err: error, model: key }, "policy preload failed");
      },
    );
  }

  /**
   * A prewarm window is open for a model that is not loaded: read its files into the page cache (once per window),
   * then, when `load` (it fits), load it (at most once per window). The load never waits for busy models and gives
   * up when it would have to (see decidePlacement); the model is marked prewarmed until a request uses it.
   */
  private prewarm(window: PrewarmWindow, load: boolean): void {
    if (this.ctx.closing()) return;
    const now = this.ctx.clock.now();
    for (const [key, p] of this.prewarms) if (p.until < now) this.prewarms.delete(key);
    const key = `${window.model}@${window.after}`;
    let p = this.prewarms.get(key);
    if (!p) {
      const read = this.ctx.source.readAhead?.(window.model) ?? Promise.resolve();
      p = {
        until: window.until,
        read: read.catch((error: unknown) =>
          this.ctx.logger.warn({ err: error, model: window.model }, "prewarm: reading the model's files failed"),
        ),
        loadTried: false,
      };
      this.prewarms.set(key, p);
    }
    if (!load || p.loadTried) return;
    p.loadTried = true;
    void p.read.then(() => {
      if (this.ctx.closing() || this.ctx.table.get(window.model)) return;
      const entry = this.ctx.startLoad(window.model, {}, window);
      entry.loaded.catch((error: unknown) => {
        this.ctx.metrics.prewarms.inc({ result: "failed" });
        this.ctx.logger.info({ model: window.model, reason: (error as Error).message }, "prewarm did not load");
      });
    });
  }

  /**
   * One timer, at the next keep-alive deadline. It never waits longer than Node's timer limit: waking early
   * just decides again and re-arms, so keep-alives of any length are kept.
   */
  private armWake(at: number | null): void {
    if (at === this.wakeAt) return;
    this.cancelWake?.();
    this.cancelWake = undefined;
    this.wakeAt = at;
    if (at === null) return;
    const delay = Math.min(MAX_TIMER_MS, Math.max(0, at - this.ctx.clock.now()));
    this.cancelWake = this.ctx.clock.setTimer(() => {
      this.wakeAt = null;
      this.cancelWake = undefined;
      this.ctx.reconcile();
    }, delay);
  }
}
