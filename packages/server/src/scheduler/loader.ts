/**
 * Loading a model, one load at a time (a prewarm's runner starts beside the next load: see enqueue): lease its
 * files from the store, size it (decideSizing), find memory (decidePlacement: evict, wait for an event, or give
 * up), start its runner (after an out-of-memory failure: evict every idle model and retry once), then hand its
 * slots to the queued requests. Each step moves the entry along
 * its lifecycle: loading -> placing -> starting -> ready, or failed.
 */
import { LlmosError } from "../errors.js";
import { isRunnerFailure } from "../runtime/runner-failure.js";
import type { RunnerEngineSpec, RunnerHandle } from "../runtime/runner-handle.js";
import { maxRunnerThreads, type SchedulerContext } from "./context.js";
import { decideOomVictims, decidePlacement } from "./decisions.js";
import type { Executor } from "./executor.js";
import { specOf, type Sizing } from "./model-lifecycle.js";
import type { ModelEntry } from "./model-entry.js";
import type { LoadOptions, ModelSpec } from "./model-spec.js";
import {
  decideSizing,
  placementEstimate,
  type PlacementEstimate,
  type SizingDefaults,
  type SizingRequest,
} from "./sizing.js";
import { sleep } from "./clock.js";
import { fmtBytes } from "./format-bytes.js";
import { RUNNER_OVERHEAD_BYTES } from "./memory-estimator.js";

/** The longest a prewarm's runner start waits for busy runners to give up the core it takes. */
const PREWARM_CPU_WAIT_MS = 250;

export class Loader {
  private chain: Promise<void> = Promise.resolve();
  /** Runner overhead (RSS with the engine loaded, no model) last measured, used by the next estimates. */
  private measuredOverheadBytes: number | undefined;

  constructor(
    private readonly ctx: SchedulerContext,
    private readonly executor: Executor,
  ) {}

  /** Loads queued for a request or a load call (not prewarms) that have not begun. */
  private waitingForRequests = 0;
  /** Loads begun and not settled, including prewarms that gave their turn up while their runner starts. */
  private readonly inFlight = new Set<Promise<void>>();

  /**
   * Queues the load of `entry` behind the loads before it. Its turn lasts until it has loaded, except for a prewarm
   * nobody has asked for yet: it gives the turn up once placed, so a request's load never waits for a prediction's
   * runner to start (both start side by side; the starting one holds a core, see cpu-allotment.ts).
   */
  enqueue(entry: ModelEntry, opts: LoadOptions): void {
    const forRequest = entry.prewarm === null;
    if (forRequest) this.waitingForRequests++;
    const turn = () => {
      if (forRequest) this.waitingForRequests--;
      let yieldTurn!: () => void;
      const yielded = new Promise<void>((resolve) => (yieldTurn = resolve));
      const done = this.load(entry, opts, yieldTurn);
      const settled = done.catch((error: unknown) => this.fail(entry, error));
      this.inFlight.add(settled);
      void settled.then(() => this.inFlight.delete(settled));
      return Promise.race([settled, yielded]);
    };
    this.chain = this.chain.then(turn, turn).catch(() => undefined);
  }

  /** Settles once every load queued so far has. */
  async settled(): Promise<void> {
    await this.chain;
    await Promise.all([...this.inFlight]);
  }

  /** Runs `placement` in its turn, after the loads queued before it (one placement decision at a time). */
  inTurn<T>(placement: () => Promise<T>): Promise<T> {
    const done = this.chain.then(placement, placement);
    this.chain = done.then(
      () => undefined,
      () => undefined,
    );
    return done;
  }

  private async load(entry: ModelEntry, opts: LoadOptions, yieldTurn: () => void): Promise<void> {
    const { ctx } = this;
    if (ctx.closing()) throw new LlmosError("unavailable", "llmos is shutting down");
    // A prediction never delays a request: a prewarm nobody asked for yet yields its turn to waiting loads.
    if (entry.prewarm !== null && !entry.wanted && this.waitingForRequests > 0)
      throw new LlmosError("client_closed", "prewarm skipped: a request's load is waiting");
    entry.loadStartedAt = ctx.clock.now();
    const spec = await ctx.source.acquire(entry.name);
    let sizing: Sizing;
    try {
      sizing = decideSizing(...this.sizingInputs(entry.name, spec, opts), ctx.snapshot());
    } catch (error) {
      spec.release();
      throw error;
    }
    if (sizing.kvCacheFellBack)
      ctx.logger.warn(
        { model: entry.name, kvCacheType: ctx.options.kvCacheType },
        "KV cache type unsupported by this model's head size: f16 instead",
      );
    entry.apply({ type: "sized", spec, sizing }, ctx.clock.now());
    await this.place(entry, sizing);
    entry.apply({ type: "placed" }, ctx.clock.now());
    ctx.reconcile(); // a starting runner holds a core: busy runners shrink to the others (cpu-allotment.ts)
    // Placed (its memory counted): a prediction's runner starts beside the next loads, not in front of them.
    const prewarm = entry.prewarm !== null && !entry.wanted;
    if (prewarm) {
      yieldTurn();
      // And only once the busy runners have made room for it: a decode step under way with every core would
      // spin-wait for the core the start takes (a runner applies its allotment between two steps).
      await Promise.race([this.executor.cpu.applied(), sleep(ctx.clock, PREWARM_CPU_WAIT_MS)]);
    }
    const runner = await this.startRunner(entry, spec, sizing, prewarm);
    if (runner.baselineRssBytes) this.measuredOverheadBytes = runner.baselineRssBytes;
    runner.onExit((exit) => this.executor.onRunnerExit(entry, exit));
    entry.apply({ type: "started", runner }, ctx.clock.now());
    this.executor.cpu.attach(entry, maxRunnerThreads(ctx.options));
    ctx.metrics.modelLoads.inc({ result: "ok" });
    ctx.metrics.modelLoadSeconds.observe({ model: entry.name }, runner.loadMs / 1000);
    this.executor.updateModelMetrics();
    const stats = await runner.stats().catch(() => undefined);
    entry.measuredRssBytes = stats?.rssBytes ?? null;
    if (entry.kind !== "ready") return; // crashed meanwhile: the executor moved its queue on
    ctx.logger.info(
      {
        model: entry.name,
        engine: runner.engine,
        pid: runner.pid,
        loadMs: Math.round(runner.loadMs),
        prestarted: runner.prestarted === true,
        estimate: sizing.estimate.total,
        rss: entry.measuredRssBytes,
      },
      "model loaded",
    );
    ctx.events.emit({
      type: "model.loaded",
      model: entry.name,
      at: ctx.clock.now(),
      loadMs: Math.round(runner.loadMs),
      runnerPid: runner.pid,
      contextSize: sizing.contextSize,
      slots: sizing.slots,
      reservedBytes: sizing.ramBytes,
      estimateBytes: sizing.estimate.total,
      rssBytes: entry.measuredRssBytes,
      ...(runner.prestarted ? { prestarted: true } : {}),
    });
    ctx.reconcile();
  }

  /** The engine part of every runner's load spec (what a prestarted runner is started with). */
  engineSpec(): RunnerEngineSpec {
    const { options } = this.ctx;
    return {
      engine: options.engine,
      gpu: options.gpu,
      cpuBackendDir: options.cpuBackendDir?.() ?? null,
      threads: maxRunnerThreads(options),
    };
  }

  /** A runner's own memory with no model: last measured, else the engine's default estimate. */
  overheadBytes(): number {
    const engine = this.ctx.options.engine;
    return this.measuredOverheadBytes ?? RUNNER_OVERHEAD_BYTES[engine] ?? RUNNER_OVERHEAD_BYTES["llama-node"]!;
  }

  /**
   * What a load of `name` (stored here) would reserve with the default context and slots, and at least: the same
   * sizing a load makes, for a cluster placing the model before any node loads it.
   */
  async estimate(name: string): Promise<PlacementEstimate> {
    const spec = await this.ctx.source.acquire(name);
    try {
      return placementEstimate(...this.sizingInputs(spec.name, spec, {}));
    } finally {
      spec.release();
    }
  }

  private sizingInputs(name: string, spec: ModelSpec, opts: LoadOptions): [SizingRequest, SizingDefaults] {
    const { ctx } = this;
    return [
      {
        model: name,
        shape: spec.shape,
        trainContextSize: spec.trainContextSize,
        contextSize: opts.contextSize ?? spec.defaults.contextSize,
        parallel: opts.parallel ?? spec.defaults.parallel,
        kvCacheType: spec.defaults.kvCacheType,
        floorBytes: ctx.ooms.floorOf(name),
      },
      {
        engine: ctx.options.engine,
        contextSize: ctx.options.contextSize,
        parallel: ctx.options.parallel,
        overheadBytes: this.measuredOverheadBytes,
        gpu: ctx.options.gpu,
        ...(ctx.options.kvCacheType ? { kvCacheType: ctx.options.kvCacheType } : {}),
      },
    ];
  }

  /** Frees budget for `entry` by evicting idle models; waits for busy ones; fails when it can never fit. */
  private async place(entry: ModelEntry, sizing: Sizing): Promise<void> {
    const { ctx } = this;
    for (;;) {
      // A prewarm nobody waits for yet never waits for memory: it loads into room the policy allows, or gives up.
      const prewarm = entry.prewarm !== null && !entry.wanted;
      const decision = decidePlacement(ctx.snapshot(), ctx.policy, {
        model: entry.name,
        neededBytes: sizing.ramBytes,
        ...(prewarm ? { prewarm } : {}),
      });
      switch (decision.kind) {
        case "fits":
          return;
        case "impossible":
          throw new LlmosError(
            "insufficient_memory",
            `${entry.name} needs ${fmtBytes(decision.neededBytes)} but at most ${fmtBytes(decision.availableBytes)} of the ${fmtBytes(decision.budgetBytes)} budget can be freed (pinned or keep_alive=-1 models hold the rest)`,
            {
              neededBytes: decision.neededBytes,
              availableBytes: decision.availableBytes,
              budgetBytes: decision.budgetBytes,
            },
          );
        case "abandon":
          throw new LlmosError(
            "client_closed",
            prewarm ? "prewarm skipped: no room without waiting" : "load abandoned: no request waits for it",
          );
        case "evict":
          await this.executor.evictNamed(decision.victims);
          break;
        case "wait":
          // Busy (or stopping) models hold the memory: decide again when anything changes.
          await ctx.events.next();
          break;
      }
    }
  }

  private async startRunner(
    entry: ModelEntry,
    spec: ModelSpec,
    sizing: Sizing,
    outOfTurn: boolean,
  ): Promise<RunnerHandle> {
    const { ctx } = this;
    const gpuLayers = sizing.offload ? sizing.offload.gpuLayers : ctx.options.gpu ? "auto" : 0;
    const start = () =>
      ctx.runners.start(
        {
          // Threads: the most it may get; the CPU decision gives it its share before its first decode.
          ...this.engineSpec(),
          streamIntervalMs: ctx.options.streamIntervalMs,
          modelPath: spec.modelPath,
          contextSize: sizing.contextSize * sizing.slots,
          slots: sizing.slots,
          gpuLayers,
          loraAdapters: spec.adapterPaths.map((path) => ({ path, scale: 1 })),
          kvCacheType: sizing.kvCacheType,
        },
        entry.name,
        { memoryEstimateBytes: sizing.ramBytes },
      );
    try {
      return await start();
    } catch (error) {
      // Evicting to retry is a placement: out of turn (a prewarm's start) the load fails instead.
      if (!isRunnerFailure(error, "oom") || outOfTurn) throw error;
      ctx.logger.warn({ model: entry.name }, "load ran out of memory; evicting idle models and retrying once");
      const victims = decideOomVictims(ctx.snapshot(), entry.name);
      await Promise.all(
        victims.flatMap((name) => {
          const victim = ctx.table.get(name);
          return victim ? [this.executor.evict(victim, "oom_retry")] : [];
        }),
      );
      return start();
    }
  }

  /** The load failed: its files go back to the store, its queued requests get the error. */
  private fail(entry: ModelEntry, error: unknown): void {
    const { ctx } = this;
    const now = ctx.clock.now();
    if (entry.kind !== "loading" && entry.kind !== "placing" && entry.kind !== "starting") {
      ctx.logger.error({ err: error, model: entry.name, state: entry.kind }, "error after a model loaded");
      return;
    }
    const spec = specOf(entry.state);
    if (spec) {
      spec.release();
      // A prewarm that found no room is not a failed load (llmos_prewarm_total{result="failed"} counts it).
      if (!entry.prewarm) ctx.metrics.modelLoads.inc({ result: "error" });
    }
    entry.apply({ type: "fail", error }, now);
    ctx.table.detach(entry, false);
    const code = error instanceof LlmosError ? error.code : null;
    for (const w of entry.queue.drain()) {
      w.cleanup();
      w.reject(error);
      ctx.events.emit({
        type: "request.rejected",
        model: entry.name,
        tenant: w.tenant,
        priority: w.priority,
        at: now,
        code,
        waitedMs: now - w.enqueuedAt,
      });
    }
    this.executor.updateQueueDepth(entry);
    this.executor.updateModelMetrics();
    ctx.events.emit({
      type: "model.load_failed",
      model: entry.name,
      at: now,
      code,
      message: error instanceof Error ? error.message : String(error),
    });
  }
}
