import type { LoadedModel, PsResponse } from "@llmos/protocol";
import { LlmosError } from "../errors.js";
import type { RunnerFactory, RunnerHandle } from "../runtime/runner-handle.js";
import type { EngineName } from "../runner/ipc-protocol.js";
import type { Logger } from "../telemetry/logger.js";
import type { Metrics } from "../telemetry/metrics.js";
import type { Priority } from "./fair-queue.js";
import { estimateMemory, type MemoryEstimate, type ModelShape } from "./memory-estimator.js";
import { chooseKvCacheTypes, type KvCacheTypes } from "./kv-cache.js";
import { chooseOffload, type OffloadPlan } from "./offload.js";
import { checkQueueBounds, enqueue } from "./admission.js";
import { ModelEntry, type ModelSource, type SlotLease } from "./model-entry.js";
import { ModelTable } from "./model-table.js";
import { chooseEvictions } from "./placement.js";
import { describeEntry } from "./ps-view.js";
import { fmtBytes, sleep } from "./time-and-size.js";

export interface SchedulerOptions {
  engine: EngineName;
  gpu: boolean;
  threads: number;
  /** Default total context tokens per sequence. */
  contextSize: number;
  /** Default parallel sequences per model. */
  parallel: number;
  /** K and V cache element types (a model's PARAMETER kv_cache_type wins). Default f16. */
  kvCacheType?: KvCacheTypes;
  /** Minimum ms between two streamed chunks of a generation (runners merge faster tokens). */
  streamIntervalMs: number;
  keepAliveMs: number;
  maxQueuePerModel: number;
  maxQueueTotal: number;
  queueTimeoutMs: number;
  memoryBudgetBytes: number;
  /** Folder of a CPU backend built on this machine for new runners to use (null or absent: the shipped one). */
  cpuBackendDir?: () => string | null;
  /** GPU memory llmos may use, in bytes (undefined: no GPU known yet, or none). */
  vramBudgetBytes?: () => number | undefined;
}

export interface AcquireOptions {
  tenant?: string;
  priority?: Priority;
  signal?: AbortSignal;
  /** Keep-alive from this request on (ms; -1 forever; 0 unload when idle). */
  keepAliveMs?: number;
  /** Max time in the queue (default from options). */
  queueTimeoutMs?: number;
}

export interface LoadOptions {
  keepAliveMs?: number;
  pinned?: boolean;
  contextSize?: number;
  parallel?: number;
}

/**
 * Decides which models live in memory and which request runs next: loads on first use (one load at a time),
 * places models within the memory budget (evicting idle ones, least recently used first), queues requests per
 * model with fair queuing across tenants, expires idle models after their keep-alive.
 */
export class Scheduler {
  private readonly table = new ModelTable();
  /** Runner overhead (RSS with the engine loaded, no model) last measured, used by the next estimates. */
  private measuredOverheadBytes: number | undefined;
  private loadChain: Promise<void> = Promise.resolve();
  private closing = false;

  constructor(
    private readonly source: ModelSource,
    private readonly runners: RunnerFactory,
    private readonly options: SchedulerOptions,
    private readonly logger: Logger,
    private readonly metrics: Metrics,
  ) {
    metrics.memoryBytes.set({ kind: "budget" }, options.memoryBudgetBytes);
  }

  get budgetBytes(): number {
    return this.options.memoryBudgetBytes;
  }

  /** Waits for a free slot of `name`, loading the model first when needed. */
  async acquire(name: string, opts: AcquireOptions = {}): Promise<SlotLease> {
    if (this.closing) throw new LlmosError("unavailable", "llmos is shutting down");
    const key = this.source.canonicalName(name);
    opts.signal?.throwIfAborted();
    const entry = this.table.get(key) ?? this.startLoad(key, {});
    if (opts.keepAliveMs !== undefined) entry.keepAliveMs = opts.keepAliveMs;
    if (entry.state === "ready" && entry.busy < entry.slots && entry.queue.size === 0)
      return this.grant(entry, Date.now());
    checkQueueBounds(entry, this.table.queuedTotal(), {
      perModel: this.options.maxQueuePerModel,
      total: this.options.maxQueueTotal,
    });
    return enqueue(entry, {
      tenant: opts.tenant,
      priority: opts.priority,
      signal: opts.signal,
      timeoutMs: opts.queueTimeoutMs ?? this.options.queueTimeoutMs,
      metrics: this.metrics,
      onLeave: (home) => this.afterQueueChange(home),
    });
  }

  /** Loads a model (if needed) and applies keep-alive / pin settings. */
  async load(name: string, opts: LoadOptions = {}): Promise<LoadedModel> {
    if (this.closing) throw new LlmosError("unavailable", "llmos is shutting down");
    const key = this.source.canonicalName(name);
    let entry = this.table.get(key);
    if (
      entry &&
      entry.state === "ready" &&
      ((opts.contextSize && opts.contextSize !== entry.contextSize) || (opts.parallel && opts.parallel !== entry.slots))
    ) {
      await this.unload(key);
      entry = undefined;
    }
    entry ??= this.startLoad(key, opts);
    entry.explicitLoad = true;
    try {
      await entry.loaded;
    } finally {
      entry.explicitLoad = false;
    }
    if (opts.pinned !== undefined) entry.pinned = opts.pinned;
    if (opts.keepAliveMs !== undefined) entry.keepAliveMs = opts.keepAliveMs;
    if (entry.idle) this.scheduleExpiry(entry);
    return describeEntry(entry, await this.statsOf(entry), this.options.engine);
  }

  /** Unloads a model after its in-flight requests finish. Queued requests start a fresh load. */
  async unload(name: string): Promise<boolean> {
    const key = this.source.canonicalName(name);
    const entry = this.table.get(key);
    if (!entry) return false;
    if (entry.state === "loading") await entry.loaded?.catch(() => undefined);
    if (entry.state !== "ready") return false;
    entry.pinned = false;
    await this.table.waitUntil(() => entry.busy === 0);
    await this.evict(entry, "unload");
    return true;
  }

  /** Loaded models with slots, queue, memory and engine counters (`GET /api/ps`). */
  async ps(): Promise<PsResponse> {
    const entries = this.table.all();
    const stats = await Promise.all(entries.map((e) => this.statsOf(e)));
    const models = entries.map((e, i) => describeEntry(e, stats[i], this.options.engine));
    return { models, queue: { total: this.table.queuedTotal(), capacity: this.options.maxQueueTotal } };
  }

  /** Memory reserved by loaded and loading models (estimates). */
  reservedBytes(): number {
    return this.table.reservedBytes();
  }

  /** Stops accepting work, waits for in-flight requests (up to `drainMs`), stops every runner. */
  async shutdown(drainMs = 10_000): Promise<void> {
    this.closing = true;
    for (const entry of this.table.all()) {
      for (const w of entry.queue.drain()) {
        w.cleanup();
        w.reject(new LlmosError("unavailable", "llmos is shutting down"));
      }
    }
    await Promise.race([this.table.waitUntil(() => this.table.all().every((e) => e.busy === 0)), sleep(drainMs)]);
    await this.loadChain.catch(() => undefined);
    await Promise.all(this.table.all().map((e) => this.evict(e, "shutdown")));
  }

  // ---- queueing ----

  /** Grants free slots to queued requests in fair order. */
  private dispatch(entry: ModelEntry): void {
    while (entry.state === "ready" && entry.busy < entry.slots && entry.queue.size > 0) {
      const waiter = entry.queue.shift()!;
      waiter.cleanup();
      waiter.resolve(this.grant(entry, waiter.enqueuedAt));
    }
  }

  private grant(entry: ModelEntry, enqueuedAt: number): SlotLease {
    const handle = entry.handle!;
    entry.busy++;
    entry.clearExpiry();
    entry.lastUsed = Date.now();
    const queuedMs = Date.now() - enqueuedAt;
    this.metrics.queueWait.observe({ model: entry.name }, queuedMs / 1000);
    // The part of the wait that overlapped this model's load (a request that arrived just before the load began
    // waited for all of it; one that arrived after the model was ready, for none).
    const loadEnd = Math.min(Date.now(), entry.loadStartedAt + handle.loadMs);
    const loadMs = Math.max(0, loadEnd - Math.max(enqueuedAt, entry.loadStartedAt));
    let released = false;
    return {
      handle,
      model: entry.name,
      contextSize: entry.contextSize,
      queuedMs,
      loadMs,
      release: (opts) => {
        if (released) return;
        released = true;
        const now = Date.now();
        entry.busy--;
        entry.lastUsed = now;
        entry.recordCompletion(now);
        if (opts?.keepAliveMs !== undefined) entry.keepAliveMs = opts.keepAliveMs;
        this.dispatch(entry);
        this.afterQueueChange(entry);
      },
    };
  }

  private afterQueueChange(entry: ModelEntry): void {
    if (entry.idle) {
      this.scheduleExpiry(entry);
      this.table.emit("idle", entry.name);
    }
    if (entry.state === "loading" && entry.queue.size === 0 && !entry.explicitLoad)
      this.table.emit("abandoned", entry.name);
  }

  private scheduleExpiry(entry: ModelEntry): void {
    entry.clearExpiry();
    if (entry.pinned || entry.keepAliveMs < 0) return;
    if (entry.keepAliveMs === 0) {
      void this.evict(entry, "keep_alive=0");
      return;
    }
    entry.expiresAt = Date.now() + entry.keepAliveMs;
    entry.expiryTimer = setTimeout(() => {
      if (entry.idle && this.table.holds(entry)) void this.evict(entry, "keep-alive expired");
    }, entry.keepAliveMs);
    entry.expiryTimer.unref();
  }

  // ---- loading and placement ----

  private startLoad(key: string, opts: LoadOptions): ModelEntry {
    const entry = new ModelEntry(key, opts.keepAliveMs ?? this.options.keepAliveMs);
    if (opts.pinned) entry.pinned = true;
    this.table.add(entry);
    this.metrics.events.publish("model.loading", { model: key });
    const run = () => this.loadEntry(entry, opts);
    const loaded = this.loadChain.then(run, run);
    this.loadChain = loaded.catch(() => undefined);
    entry.loaded = loaded;
    loaded.catch((error) => {
      this.metrics.events.publish("model.load_failed", { model: key, error: String(error?.message ?? error) });
      this.table.remove(entry);
      for (const w of entry.queue.drain()) {
        w.cleanup();
        w.reject(error);
      }
    });
    return entry;
  }

  private async loadEntry(entry: ModelEntry, opts: LoadOptions): Promise<void> {
    if (this.closing) throw new LlmosError("unavailable", "llmos is shutting down");
    entry.loadStartedAt = Date.now();
    const spec = await this.source.acquire(entry.name);
    try {
      entry.spec = spec;
      entry.slots = Math.max(1, opts.parallel ?? spec.defaults.parallel ?? this.options.parallel);
      const daemonKv = this.options.kvCacheType ?? { k: "f16", v: "f16" };
      const headDim = spec.shape.headCount > 0 ? spec.shape.embeddingLength / spec.shape.headCount : 0;
      const kv = chooseKvCacheTypes(entry.name, headDim, spec.defaults.kvCacheType, daemonKv);
      if (kv.fellBack)
        this.logger.warn(
          { model: entry.name, headDim, kvCacheType: daemonKv },
          "KV cache type unsupported by this model's head size: f16 instead",
        );
      entry.kvCacheType = kv.kv;
      const explicitContext = opts.contextSize ?? spec.defaults.contextSize;
      let perSlot = Math.min(explicitContext ?? this.options.contextSize, spec.trainContextSize || Infinity);
      const estimate = (ctx: number) =>
        estimateMemory(spec.shape, {
          contextSize: ctx * entry.slots,
          slots: entry.slots,
          engine: this.options.engine,
          kvCacheType: entry.kvCacheType,
          ...(this.measuredOverheadBytes ? { overheadBytes: this.measuredOverheadBytes } : {}),
        });
      // When nobody asked for a context size, shrink the default (down to 256 tokens) until the model can fit at all.
      if (explicitContext === undefined) {
        const ceiling = this.options.memoryBudgetBytes - this.table.unmovableBytes(entry);
        while (perSlot > 256 && estimate(perSlot).total > ceiling) perSlot = Math.max(256, Math.floor(perSlot / 2));
      }
      entry.contextSize = perSlot;
      entry.estimate = estimate(perSlot);
      entry.offload = this.planOffload(entry, spec.shape, entry.estimate);
      await this.makeRoom(entry);
      entry.handle = await this.startRunner(entry, spec);
    } catch (error) {
      entry.releaseSpec();
      this.metrics.modelLoads.inc({ result: "error" });
      throw error;
    }
    const handle = entry.handle;
    if (handle.baselineRssBytes) this.measuredOverheadBytes = handle.baselineRssBytes;
    handle.onExit(({ expected }) => this.onRunnerExit(entry, expected));
    entry.state = "ready";
    entry.lastUsed = Date.now();
    this.metrics.modelLoads.inc({ result: "ok" });
    this.metrics.modelLoadSeconds.observe({ model: entry.name }, handle.loadMs / 1000);
    this.metrics.loadedModels.set(this.table.countReady());
    this.updateMemoryMetrics();
    const stats = await handle.stats().catch(() => undefined);
    entry.measuredRssBytes = stats?.rssBytes ?? null;
    this.logger.info(
      {
        model: entry.name,
        engine: handle.engine,
        pid: handle.pid,
        loadMs: Math.round(handle.loadMs),
        estimate: entry.estimate?.total,
        rss: entry.measuredRssBytes,
      },
      "model loaded",
    );
    const loadedEvent = { loadMs: Math.round(handle.loadMs), estimateBytes: entry.estimate?.total ?? null };
    this.metrics.events.publish("model.loaded", {
      model: entry.name,
      ...loadedEvent,
      rssBytes: entry.measuredRssBytes,
    });
    this.dispatch(entry);
    this.afterQueueChange(entry);
  }

  private async startRunner(entry: ModelEntry, spec: NonNullable<ModelEntry["spec"]>): Promise<RunnerHandle> {
    const start = () =>
      this.runners.start(
        {
          engine: this.options.engine,
          gpu: this.options.gpu,
          cpuBackendDir: this.options.cpuBackendDir?.() ?? null,
          streamIntervalMs: this.options.streamIntervalMs,
          modelPath: spec.modelPath,
          contextSize: entry.contextSize * entry.slots,
          slots: entry.slots,
          threads: this.options.threads,
          gpuLayers: entry.offload ? entry.offload.gpuLayers : this.options.gpu ? "auto" : 0,
          loraAdapters: spec.adapterPaths.map((path) => ({ path, scale: 1 })),
          kvCacheType: entry.kvCacheType,
        },
        entry.name,
      );
    try {
      return await start();
    } catch (error) {
      // Out of memory despite the estimate: evict every idle model and retry once.
      if (!(error instanceof LlmosError && error.code === "insufficient_memory")) throw error;
      this.logger.warn({ model: entry.name }, "load ran out of memory; evicting idle models and retrying once");
      await Promise.all(
        this.table
          .others(entry)
          .filter((e) => e.evictable)
          .map((e) => this.evict(e, "retry after out-of-memory")),
      );
      return start();
    }
  }

  /** Frees budget for `entry` by evicting idle models; waits for busy ones; fails when it can never fit. */
  private async makeRoom(entry: ModelEntry): Promise<void> {
    const needed = entry.reservedBytes;
    for (;;) {
      const others = this.table.others(entry);
      const free = this.options.memoryBudgetBytes - this.table.reservedBytes(entry);
      if (needed <= free) return;
      const available = this.options.memoryBudgetBytes - this.table.unmovableBytes(entry);
      if (needed > available) {
        throw new LlmosError(
          "insufficient_memory",
          `${entry.name} needs ${fmtBytes(needed)} but at most ${fmtBytes(available)} of the ${fmtBytes(this.options.memoryBudgetBytes)} budget can be freed (pinned or keep_alive=-1 models hold the rest)`,
          { neededBytes: needed, availableBytes: available, budgetBytes: this.options.memoryBudgetBytes },
        );
      }
      const plan = chooseEvictions(
        others.filter((e) => e.evictable).map((e) => ({ key: e.name, bytes: e.reservedBytes, lastUsed: e.lastUsed })),
        needed - free,
      );
      if (plan) {
        for (const victim of plan) {
          const e = this.table.get(victim.key);
          if (e) await this.evict(e, `make room for ${entry.name}`);
        }
        continue;
      }
      // Busy models hold the memory: wait until one goes idle (or this load is no longer wanted).
      if (entry.queue.size === 0 && !entry.explicitLoad)
        throw new LlmosError("client_closed", "load abandoned: no request waits for it");
      await this.table.nextEvent(["idle", "unloaded", "abandoned"]);
    }
  }

  /** With a GPU of known size: as many layers as fit in the GPU memory other loaded models leave. */
  private planOffload(entry: ModelEntry, shape: ModelShape, estimate: MemoryEstimate): OffloadPlan | undefined {
    const budget = this.options.gpu ? this.options.vramBudgetBytes?.() : undefined;
    if (budget === undefined) return undefined;
    return chooseOffload(shape, estimate, budget - this.table.vramBytes(entry));
  }

  private async evict(entry: ModelEntry, reason: string): Promise<void> {
    if (entry.state === "unloading") return;
    this.detach(entry);
    if (reason.startsWith("make room") || reason.startsWith("retry")) this.metrics.evictions.inc();
    this.logger.info({ model: entry.name, reason }, "unloading model");
    await entry.handle?.stop();
    this.metrics.events.publish("model.unloaded", { model: entry.name, reason });
    this.forget(entry);
  }

  private onRunnerExit(entry: ModelEntry, expected: boolean): void {
    if (expected || entry.state === "unloading") return;
    this.metrics.runnerCrashes.inc();
    this.logger.error(
      { model: entry.name },
      "runner crashed; its in-flight requests failed, the next request starts a fresh runner",
    );
    this.detach(entry);
    this.metrics.events.publish("model.unloaded", { model: entry.name, reason: "runner crashed" });
    this.forget(entry);
  }

  /** Takes a model out of the table so new requests start a fresh load. */
  private detach(entry: ModelEntry): void {
    entry.state = "unloading";
    entry.clearExpiry();
    this.table.remove(entry);
  }

  /** After its runner is gone: releases the model's files and memory, and moves its queue to a fresh load. */
  private forget(entry: ModelEntry): void {
    entry.releaseSpec();
    this.metrics.loadedModels.set(this.table.countReady());
    this.updateMemoryMetrics();
    this.table.emit("unloaded", entry.name);
    this.requeueOrphans(entry);
  }

  /** Requests still queued on a model that went away wait for a fresh load. */
  private requeueOrphans(old: ModelEntry): void {
    if (old.queue.size === 0 || this.closing) return;
    const fresh = this.table.get(old.name) ?? this.startLoad(old.name, {});
    fresh.keepAliveMs = old.keepAliveMs;
    for (const w of old.queue.drain()) {
      w.home = fresh;
      fresh.queue.push(w, w.tenant, w.priority);
    }
  }

  // ---- observation ----

  private async statsOf(entry: ModelEntry) {
    if (entry.state !== "ready" || !entry.handle) return undefined;
    try {
      return await Promise.race([entry.handle.stats(), sleep(2000).then(() => undefined)]);
    } catch {
      return undefined;
    }
  }

  private updateMemoryMetrics(): void {
    this.metrics.memoryBytes.set({ kind: "reserved" }, this.reservedBytes());
  }
}
