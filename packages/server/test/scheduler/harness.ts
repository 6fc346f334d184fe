/** A scheduler with fake runners, a fake clock and models of chosen sizes: decisions and their effects in ms. */
import { Writable } from "node:stream";
import { LlmosError } from "../../src/errors.js";
import { RUNNER_OVERHEAD_BYTES, type ModelShape } from "../../src/scheduler/memory-estimator.js";
import type { ModelSource, ModelSpec } from "../../src/scheduler/model-spec.js";
import type { SchedulingPolicy } from "../../src/scheduler/policy.js";
import type { CpuPlacement } from "../../src/runtime/cpu-placement.js";
import { Scheduler, type SchedulerOptions } from "../../src/scheduler/scheduler.js";
import type { SchedulerEvent } from "../../src/scheduler/events.js";
import type { ModelView, SchedulerSnapshot } from "../../src/scheduler/snapshot.js";
import type { UsageModel } from "../../src/scheduler/usage/usage-model.js";
import { createLogger } from "../../src/telemetry/logger.js";
import { Metrics } from "../../src/telemetry/metrics.js";
import { FakeClock, settle } from "../support/fake-clock.js";
import { FakeRunners } from "../support/fake-runner.js";

export const MiB = 1024 * 1024;

/** A shape whose estimate is exactly `mib` MiB with the default runner overhead (no KV cache, no compute). */
export function shapeOf(mib: number): ModelShape {
  return {
    tensorBytes: mib * MiB - RUNNER_OVERHEAD_BYTES["llama-ffi"]!,
    blockCount: 0,
    headCount: 0,
    headCountKv: 0,
    embeddingLength: 0,
    feedForwardLength: 0,
    vocabSize: 0,
  };
}

/** A small transformer's shape (8 layers, 8 heads of 64, 1000 tokens) with `tensorBytes` of weights. */
export function smallShape(tensorBytes: number): ModelShape {
  return {
    tensorBytes,
    blockCount: 8,
    headCount: 8,
    headCountKv: 8,
    embeddingLength: 512,
    feedForwardLength: 1024,
    vocabSize: 1000,
  };
}

/** A store of fake models: name -> reservation in MiB (each at least the runner overhead, 70 MiB). */
export class FakeSource implements ModelSource {
  /** Leases handed out and not released. */
  leases = 0;
  /** Models whose files were read ahead (prewarm), in order. */
  readAheads: string[] = [];
  constructor(
    readonly models: Record<string, number | ModelShape>,
    readonly defaults: Record<string, ModelSpec["defaults"]> = {},
  ) {}

  canonicalName(name: string): string {
    return name.includes(":") ? name : `${name}:latest`;
  }

  async readAhead(name: string): Promise<void> {
    this.readAheads.push(name);
  }

  async acquire(name: string): Promise<ModelSpec> {
    const size = this.models[name] ?? this.models[name.replace(/:latest$/, "")];
    if (size === undefined) throw new LlmosError("model_not_found", `model "${name}" not found`);
    this.leases++;
    let released = false;
    return {
      name,
      digest: `sha256:${"0".repeat(64)}`,
      modelPath: `/fake/${name}.gguf`,
      adapterPaths: [],
      size: 1,
      details: { format: "gguf", family: "llama", parameter_size: "1M", quantization_level: "F32" } as never,
      shape: typeof size === "number" ? shapeOf(size) : size,
      trainContextSize: 4096,
      defaults: this.defaults[name.replace(/:latest$/, "")] ?? {},
      release: () => {
        if (!released) this.leases--;
        released = true;
      },
    };
  }
}

export const DEFAULT_OPTIONS: SchedulerOptions = {
  engine: "llama-ffi",
  gpu: false,
  threads: 1,
  cpus: [0],
  contextSize: 512,
  parallel: 2,
  streamIntervalMs: 0,
  keepAliveMs: 5 * 60_000,
  maxQueuePerModel: 8,
  maxQueueTotal: 16,
  queueTimeoutMs: 60_000,
  memoryBudgetBytes: 1000 * MiB,
};

export interface Harness {
  scheduler: Scheduler;
  clock: FakeClock;
  runners: FakeRunners;
  source: FakeSource;
  metrics: Metrics;
  events: SchedulerEvent[];
  /** Names of the models ready now, sorted. */
  ready(): string[];
  /** Event types (with model) seen since the last call. */
  take(filter?: (e: SchedulerEvent) => boolean): SchedulerEvent[];
}

export function harness(
  models: Record<string, number | ModelShape>,
  options: Partial<SchedulerOptions> = {},
  extra: {
    policy?: SchedulingPolicy;
    defaults?: Record<string, ModelSpec["defaults"]>;
    placement?: CpuPlacement;
    tenantWeight?: (tenant: string) => number;
    usage?: UsageModel;
    clock?: FakeClock;
    metrics?: Metrics;
    runners?: FakeRunners;
  } = {},
): Harness {
  const clock = extra.clock ?? new FakeClock();
  const runners = extra.runners ?? new FakeRunners();
  const source = new FakeSource(models, extra.defaults);
  const logger = createLogger("silent", new Writable({ write: (_c, _e, cb) => cb() }));
  const metrics = extra.metrics ?? new Metrics();
  const scheduler = new Scheduler(source, runners, { ...DEFAULT_OPTIONS, ...options }, logger, metrics, {
    clock,
    ...(extra.policy ? { policy: extra.policy } : {}),
    ...(extra.usage ? { usage: extra.usage } : {}),
    ...(extra.placement ? { placement: extra.placement } : {}),
    ...(extra.tenantWeight ? { tenantWeight: extra.tenantWeight } : {}),
  });
  const events: SchedulerEvent[] = [];
  let seen = 0;
  scheduler.subscribe((e) => events.push(e));
  return {
    scheduler,
    clock,
    runners,
    source,
    metrics,
    events,
    ready: () =>
      scheduler
        .snapshot()
        .models.filter((m) => m.state === "ready")
        .map((m) => m.name)
        .sort(),
    take(filter = () => true) {
      const out = events.slice(seen).filter(filter);
      seen = events.length;
      return out;
    },
  };
}

/** Runs a request: acquire, then release at once (keeping the slot is the caller's business otherwise). */
export async function use(h: Harness, model: string, opts: Parameters<Scheduler["acquire"]>[1] = {}): Promise<void> {
  const lease = await h.scheduler.acquire(model, opts);
  lease.release();
  await settle();
}

/** A model view with defaults, for hand-written snapshots. */
export function view(name: string, fields: Partial<ModelView> = {}): ModelView {
  return {
    name,
    state: "ready",
    reservedBytes: 100 * MiB,
    vramBytes: 0,
    slots: 2,
    busy: 0,
    queued: 0,
    pinned: false,
    keepAliveMs: 300_000,
    keepAliveExplicit: false,
    prewarmed: false,
    lastUsed: 0,
    idleSince: 0,
    wanted: true,
    serviceRate: 0,
    demand: { interactive: (fields.busy ?? 0) + (fields.queued ?? 0), batch: 0 },
    lastActiveAt: null,
    minThreads: 1,
    cpu:
      fields.state === undefined || fields.state === "ready" || fields.state === "draining"
        ? { threads: 0, cpus: [], changedAt: 0 }
        : null,
    ...fields,
  };
}

export function snapshot(models: ModelView[], fields: Partial<SchedulerSnapshot> = {}): SchedulerSnapshot {
  return {
    now: 1_000_000,
    memoryBudgetBytes: 1000 * MiB,
    vramBudgetBytes: undefined,
    models,
    queuedTotal: models.reduce((n, m) => n + m.queued, 0),
    limits: { maxQueuePerModel: 8, maxQueueTotal: 16 },
    cpu: { cpus: [0, 1, 2, 3], maxThreadsPerRunner: 4, holdMs: 50 },
    ...fields,
  };
}

export { settle };
