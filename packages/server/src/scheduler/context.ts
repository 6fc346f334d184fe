import type { RunnerFactory } from "../runtime/runner-handle.js";
import type { EngineName } from "../runner/ipc-protocol.js";
import type { Logger } from "../telemetry/logger.js";
import type { Metrics } from "../telemetry/metrics.js";
import type { Clock } from "./clock.js";
import type { SchedulerEvents } from "./events.js";
import type { KvCacheTypes } from "./kv-cache.js";
import type { ModelEntry } from "./model-entry.js";
import type { LoadOptions, ModelSource } from "./model-spec.js";

export type { LoadOptions };
import type { ModelTable } from "./model-table.js";
import type { OomHistory } from "./oom-history.js";
import type { PrewarmWindow, SchedulingPolicy } from "./policy.js";
import type { SchedulerSnapshot } from "./snapshot.js";

/** Limits that may change while the daemon runs (`scheduler.setLimits`). */
export interface SchedulerLimits {
  maxQueuePerModel: number;
  maxQueueTotal: number;
  queueTimeoutMs: number;
  memoryBudgetBytes: number;
}

export interface SchedulerOptions extends SchedulerLimits {
  engine: EngineName;
  gpu: boolean;
  /** Decode threads one runner may get at most (`LLMOS_THREADS`). */
  threads: number;
  /** Default total context tokens per sequence. */
  contextSize: number;
  /** Default parallel sequences per model. */
  parallel: number;
  /** K and V cache element types (a model's PARAMETER kv_cache_type wins). Default f16. */
  kvCacheType?: KvCacheTypes;
  /** Minimum ms between two streamed chunks of a generation (runners merge faster tokens). */
  streamIntervalMs: number;
  /** Keep-alive of a model no request set one for (ms; -1 forever). */
  keepAliveMs: number;
  /** CPU ids shared among busy runners (`LLMOS_CPUS`); `threads` is the most one runner gets. */
  cpus: readonly number[];
  /** Hysteresis of CPU allotments: growth waits this long after a runner went idle (default 50 ms). */
  cpuHoldMs?: number;
  /** Folder of a CPU backend built on this machine for new runners to use (null or absent: the shipped one). */
  cpuBackendDir?: () => string | null;
  /** GPU memory llmos may use, in bytes (undefined: no GPU known yet, or none). */
  vramBudgetBytes?: () => number | undefined;
  /** Keep a runner started ahead of the next load while the budget has room (`LLMOS_PRESTART`; prestart.ts). */
  prestart?: boolean;
}

/** The most decode threads one runner gets: `threads`, within the managed cores. */
export function maxRunnerThreads(o: Pick<SchedulerOptions, "threads" | "cpus">): number {
  return Math.max(1, Math.min(o.threads, o.cpus.length));
}

/** What the scheduler's parts (executor, loader) share; the Scheduler builds it once. */
export interface SchedulerContext {
  readonly table: ModelTable;
  readonly events: SchedulerEvents;
  readonly clock: Clock;
  readonly policy: SchedulingPolicy;
  readonly source: ModelSource;
  readonly runners: RunnerFactory;
  readonly options: SchedulerOptions;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** Runners stopped at their memory limit, and the raised estimates of those models' next loads. */
  readonly ooms: OomHistory;
  /** True once shutdown began. */
  closing(): boolean;
  snapshot(): SchedulerSnapshot;
  /** Decides and applies what follows from the current state (grants, unloads, the next keep-alive check). */
  reconcile(): void;
  /** Adds a loading entry for `name` and queues its load (for a prewarm: marked with its window). */
  startLoad(name: string, opts: LoadOptions, prewarm?: PrewarmWindow): ModelEntry;
}
