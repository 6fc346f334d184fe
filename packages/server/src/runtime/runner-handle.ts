/**
 * What the scheduler needs from a runner (`RunnerHandle`) and what starts one (`RunnerFactory`). The child-process
 * runner (child-process-runner.ts, started by child-process-runner-factory.ts) implements them; the tests' fake
 * runner and the simulator's are others.
 */
import type { CpuAllotment, GenerateChunk, GenerateParams, GenerateResult, ModelFacts } from "../engine/engine.js";
import type { CpuBackendStatus, RunnerSandboxStatus } from "@llmos/protocol";
import type { EmbedReply, RunnerEngineSpec, RunnerLoadSpec, RunnerStatsReply } from "../runner/ipc-protocol.js";
import type { CgroupCpuLimit } from "./sandbox/runner-cgroup.js";

export type { RunnerEngineSpec } from "../runner/ipc-protocol.js";

/**
 * The runner kept started ahead of the next load: none, starting (it uses a core), ready, or failed (the last one
 * did not come up: none is started again until a load has run).
 */
export type PrestartedState = "none" | "starting" | "ready" | "failed";

/** A generation running in a runner: stream its chunks, await its result, cancel it. */
export interface RemoteGeneration extends AsyncIterable<GenerateChunk> {
  readonly result: Promise<GenerateResult>;
  cancel(): void;
}

/**
 * What the scheduler needs from a runner. The child-process runner implements it; a runner on another node
 * (cluster) is one more implementation.
 */
export interface RunnerHandle {
  readonly pid: number | null;
  readonly facts: ModelFacts;
  readonly engine: string;
  readonly loadMs: number;
  /** Started before its load was asked for (a prestarted runner): its process and engine were already up. */
  readonly prestarted?: boolean;
  /** The runner's memory with its engine loaded and no model (measured), or null when unknown. */
  readonly baselineRssBytes: number | null;
  /** The CPU backend the runner computes on (llama-ffi), or null when not known. */
  readonly cpuBackend?: CpuBackendStatus | null;
  readonly exited: boolean;
  /** How the runner is isolated (namespaces, cgroup limits, CPUs); null when the factory does not say. */
  readonly sandbox: RunnerSandboxStatus | null;
  /** The runner's memory limit (its cgroup's), null without one. */
  readonly memoryLimitBytes: number | null;
  /** The most memory the runner has used (its cgroup's peak), null when unknown. */
  peakMemoryBytes(): number | null;
  /**
   * Moves the runner onto `placement`'s CPUs and/or caps its CPU time, at once (its cgroup's cpuset and cpu.max):
   * for the scheduler's thread assignment. Does nothing for a runner without a cgroup.
   */
  placeCpus(placement: CgroupCpuLimit): void;
  generate(params: GenerateParams): RemoteGeneration;
  /**
   * Embeds texts; an abort of `signal` cancels the rest in the runner (between inputs and chunks). `truncate` cuts
   * inputs longer than a sequence's context instead of refusing them.
   */
  embed(texts: string[], opts?: { signal?: AbortSignal; truncate?: boolean }): Promise<EmbedReply>;
  tokenize(text: string, opts?: { addBos?: boolean; parseSpecial?: boolean }): Promise<number[]>;
  detokenize(tokens: number[]): Promise<string>;
  stats(): Promise<RunnerStatsReply>;
  /**
   * Gives the runner a CPU allotment, applied between two of its decode steps; resolves once it is (with the
   * runner's own time to apply it). Allotments sent one after the other are applied in that order.
   */
  setCpu(allotment: CpuAllotment): Promise<{ threads: number; appliedMs: number }>;
  /** Unload gracefully (waits a little), then kill. Idempotent. */
  stop(): Promise<void>;
  /** Called once when the runner exits for any reason; `expected` is false for crashes, stalls and OOM kills. */
  onExit(listener: (info: RunnerExit) => void): void;
}

/**
 * How a runner ended: `expected` is false for crashes, stalls and OOM kills; `oomKilled` when the kernel stopped it
 * at its memory limit.
 */
export interface RunnerExit {
  expected: boolean;
  code: number | null;
  signal: string | null;
  oomKilled: boolean;
  /** True when the progress watchdog killed it: it had work and made no progress (`runner_stalled`). */
  stalled?: boolean;
  /** Its memory limit and the most memory it used, when its cgroup said (null otherwise). */
  memoryLimitBytes: number | null;
  peakMemoryBytes: number | null;
}

/** What the scheduler decided a runner may use. */
export interface RunnerResources {
  /** The scheduler's memory estimate for the runner (RAM bytes); its limit adds a margin. */
  memoryEstimateBytes: number | null;
  /** CPUs and CPU time (default: the daemon's CPUs, uncapped). */
  cpu?: CgroupCpuLimit;
}

export interface RunnerFactory {
  start(spec: RunnerLoadSpec, label: string, resources?: RunnerResources): Promise<RunnerHandle>;
  /**
   * Keeps one runner started ahead of the next load, its engine up and no model (null: none), limited to
   * `memoryEstimateBytes` until a load takes it (runtime/prestarted-runner.ts). Optional: a factory without it
   * starts every runner at its load.
   */
  prestart?(engine: RunnerEngineSpec | null, memoryEstimateBytes: number | null): void;
  /** The prestarted runner: none, starting (its process and engine coming up: it uses a core), ready or failed. */
  prestartedState?(): PrestartedState;
  /** How long the last prestarted runner took to come up (spawn to engine up), ms; null before the first. */
  prestartedStartMs?(): number | null;
  /** Calls `listener` when the prestarted runner's state changes; returns the unsubscribe function. */
  onPrestartedChange?(listener: () => void): () => void;
}
