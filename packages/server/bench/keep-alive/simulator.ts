/**
 * A discrete-event simulator of llmos' scheduling: the daemon's own Scheduler (decisions, policies, executor,
 * loader, usage model) on a simulated clock, with simulated runners that take each model's measured load time and
 * requests that take its measured speeds. A day of trace runs in seconds; its cold starts, time to first token,
 * idle memory and prewarms are counted from the scheduler's events exactly as the replay against a real daemon
 * counts them.
 */
import { Writable } from "node:stream";
import type { KeepPolicyName } from "@llmos/protocol";
import { createPolicy } from "../../src/scheduler/policies/index.js";
import { Scheduler } from "../../src/scheduler/scheduler.js";
import { UsageModel } from "../../src/scheduler/usage/usage-model.js";
import { createLogger } from "../../src/telemetry/logger.js";
import { Metrics } from "../../src/telemetry/metrics.js";
import { MemoryUsageRepository, type UsageRepository } from "../../src/usage-store/index.js";
import { SimClock } from "./sim-clock.js";
import { SharedCpu } from "./sim-cpu.js";
import { canonical, SimRunners, SimSource, type SimModel } from "./sim-runtime.js";
import type { Trace } from "./trace-format.js";
import { ViolationChecker } from "./violations.js";

export interface SimulationOptions {
  trace: Trace;
  models: readonly SimModel[];
  policy: KeepPolicyName;
  /** The fixed keep-alive (scaled to the trace's time compression). */
  keepAliveMs: number;
  memoryBudgetBytes: number;
  /** Parallel sequences per model. */
  parallel: number;
  /** Models loaded and pinned before the trace starts. */
  pinned?: readonly string[];
  /** Learned usage to start from (records are copied; the simulation writes into `usageOut` if given). */
  usage?: UsageRepository;
  usageOut?: UsageRepository;
  /** The usage model's day (the trace's `dayMs` by default). */
  usageDayMs?: number;
  /** Histogram policy settings (tuning experiments). */
  histogram?: { minGaps?: number; memoryShare?: number };
  /**
   * Solo jobs' worth of work the machine does at once (requests and loads share it: sim-cpu.ts); calibrated on the
   * machine (`calibrateParallelism`). Default 1.5, what two cores gave two busy models in the contention benchmark.
   */
  cpuParallelism?: number;
  /**
   * A runner's start (process and engine) before it loads, ms, which a load that finds no runner started ahead
   * adds to its load time. The scheduler keeps one, as the daemon does (LLMOS_PRESTART). Default
   * DEFAULT_RUNNER_START_MS.
   */
  runnerStartMs?: number;
}

/** What a run counts, over the trace's duration (in the same way as the replay). */
export interface RunCounts {
  policy: string;
  requests: number;
  /** Requests that waited for their model to load. */
  coldStarts: number;
  coldByModel: Record<string, number>;
  /** Time to first token of each request (ms), in trace order. */
  ttftMs: number[];
  /** Loaded-and-idle memory integrated over the trace (byte-seconds). */
  idleByteSeconds: number;
  prewarm: { used: number; wasted: number; failed: number };
  loads: number;
  /** Cold starts whose load started a runner of its own (found none started ahead). */
  coldOwnRunner: number;
  evictions: number;
  violations: string[];
  /** Requests that failed (queue full, load failure, ...). */
  failed: number;
}

export interface SimulationResult extends RunCounts {
  /** The first few failures' messages. */
  errors: string[];
  /** Wall time of the simulation, ms. */
  wallMs: number;
  /** Simulated time, ms. */
  simulatedMs: number;
  events: number;
}

const BASE_EPOCH = Date.UTC(2026, 0, 1);
export const DEFAULT_CPU_PARALLELISM = 1.5;
/** A sandboxed runner's spawn to ready (65-90 ms) and engine start (42-57 ms) on this machine (docs/keep-alive.md). */
export const DEFAULT_RUNNER_START_MS = 130;

export async function simulate(o: SimulationOptions): Promise<SimulationResult> {
  const started = performance.now();
  const { trace } = o;
  const dayMs = o.usageDayMs ?? trace.spec.dayMs;
  const repository = new MemoryUsageRepository();
  const learned = (await o.usage?.loadAll()) ?? [];
  await repository.save(learned);
  // Start after the learned history (so it is in the past), on a day boundary (so hours line up with the trace).
  const latest = Math.max(BASE_EPOCH, ...learned.map((r) => r.updatedAt));
  const t0 = Math.ceil((latest + 1) / dayMs) * dayMs;
  const clock = new SimClock(t0);
  const usage = await UsageModel.open(repository, clock, { dayMs, flushDelayMs: null });
  const policy = createPolicy(o.policy, { usage, keepAliveMs: o.keepAliveMs, histogram: o.histogram ?? {} });
  const source = new SimSource(o.models);
  const cpu = new SharedCpu(clock, o.cpuParallelism ?? DEFAULT_CPU_PARALLELISM);
  const metrics = new Metrics();
  const scheduler = new Scheduler(
    source,
    new SimRunners(clock, source, cpu, o.runnerStartMs ?? DEFAULT_RUNNER_START_MS),
    {
      engine: "llama-ffi",
      gpu: false,
      threads: 1,
      cpus: [0],
      contextSize: 512,
      parallel: o.parallel,
      streamIntervalMs: 0,
      keepAliveMs: o.keepAliveMs,
      maxQueuePerModel: 100_000,
      maxQueueTotal: 100_000,
      queueTimeoutMs: 10 * 60_000,
      memoryBudgetBytes: o.memoryBudgetBytes,
      prestart: true,
    },
    createLogger("silent", new Writable({ write: (_c, _e, cb) => cb() })),
    metrics,
    { policy, usage, clock },
  );
  const counter = new EventCounter(o.pinned ?? []);
  scheduler.subscribe((e) => counter.observe(e));
  for (const name of o.pinned ?? []) {
    const loading = scheduler.load(name, { pinned: true });
    await clock.run(clock.now() + 60_000);
    await loading;
  }
  // The runner started ahead comes up before the first request, as on a daemon started before its replay.
  await clock.run(clock.now() + 1000);
  counter.reset();
  const start = clock.now();
  let failed = 0;
  let done = 0;
  const errors: string[] = [];
  const ttft: number[] = new Array<number>(trace.requests.length).fill(NaN);
  trace.requests.forEach((r, i) => {
    clock.setTimer(
      () => {
        const model = source.model(r.model);
        const arrival = clock.now();
        if (r.keepAliveMs !== undefined) counter.checker.expectKeepAlive(canonical(r.model), r.keepAliveMs);
        scheduler
          .acquire(r.model, { tenant: "sim", ...(r.keepAliveMs !== undefined ? { keepAliveMs: r.keepAliveMs } : {}) })
          .then((lease) => {
            const promptMs = (r.promptTokens / model.promptTokensPerSecond) * 1000;
            const generateMs = (Math.max(0, r.maxTokens - 1) / model.tokensPerSecond) * 1000;
            cpu.start({
              firstMs: promptMs,
              totalMs: promptMs + generateMs,
              onFirst: () => (ttft[i] = clock.now() - arrival),
              onDone: () => {
                lease.release();
                done++;
              },
            });
          })
          .catch((error: unknown) => {
            failed++;
            done++;
            if (errors.length < 5) errors.push(`${r.model} at ${r.t} ms: ${(error as Error).message}`);
          });
      },
      start + r.t - clock.now(),
    );
  });
  let events = await clock.run(start + trace.spec.durationMs);
  // Idle memory over the trace's duration; the requests still running finish (as a replay waits for them).
  const idle = sum([...scheduler.idleMemoryByteSeconds().values()]);
  while (done < trace.requests.length && clock.now() < start + trace.spec.durationMs + 600_000)
    events += await clock.run(clock.now() + 1000);
  const prewarm = await prewarmCounts(metrics);
  const counts = counter.counts(start);
  await Promise.all([scheduler.shutdown(0), clock.run()]);
  await usage.close();
  await o.usageOut?.save(await repository.loadAll());
  return {
    policy: policy.name,
    requests: trace.requests.length,
    ...counts,
    ttftMs: ttft,
    idleByteSeconds: idle,
    prewarm,
    failed,
    errors,
    wallMs: performance.now() - started,
    simulatedMs: clock.now() - t0,
    events,
  };
}

/** Counts what the replay counts from the same events: cold starts, loads, evictions, violations. */
export class EventCounter {
  readonly checker: ViolationChecker;
  private coldByModel: Record<string, number> = {};
  private loads = 0;
  private coldOwnRunner = 0;
  /** Whether each model's last load took a runner started ahead. */
  private readonly tookPrestarted = new Map<string, boolean>();
  private evictions = 0;

  constructor(pinned: readonly string[]) {
    this.checker = new ViolationChecker(pinned.map(canonical));
  }

  observe(e: import("../../src/scheduler/events.js").SchedulerEvent): void {
    this.checker.observe(e);
    if (e.type === "request.started" && e.loadMs > 0) {
      this.coldByModel[e.model] = (this.coldByModel[e.model] ?? 0) + 1;
      if (this.tookPrestarted.get(e.model) === false) this.coldOwnRunner++;
    }
    if (e.type === "model.loaded") this.tookPrestarted.set(e.model, e.prestarted === true);
    if (e.type === "model.loaded") this.loads++;
    if (e.type === "model.unloading" && (e.reason === "evicted" || e.reason === "oom_retry")) this.evictions++;
  }

  /** Starts counting afresh (after pinned models loaded). */
  reset(): void {
    this.coldByModel = {};
    this.loads = 0;
    this.coldOwnRunner = 0;
    this.evictions = 0;
  }

  counts(
    _since: number,
  ): Pick<RunCounts, "coldStarts" | "coldByModel" | "loads" | "coldOwnRunner" | "evictions" | "violations"> {
    return {
      coldStarts: sum(Object.values(this.coldByModel)),
      coldByModel: { ...this.coldByModel },
      loads: this.loads,
      coldOwnRunner: this.coldOwnRunner,
      evictions: this.evictions,
      violations: [...this.checker.violations],
    };
  }
}

/** `llmos_prewarm_total` by result. */
export async function prewarmCounts(metrics: Metrics): Promise<RunCounts["prewarm"]> {
  const out = { used: 0, wasted: 0, failed: 0 };
  for (const v of (await metrics.prewarms.get()).values) {
    const r = v.labels.result as keyof typeof out;
    if (r in out) out[r] += v.value;
  }
  return out;
}

function sum(xs: readonly number[]): number {
  return xs.reduce((a, b) => a + b, 0);
}
