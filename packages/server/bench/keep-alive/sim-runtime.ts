/**
 * The simulator's stand-ins below the scheduler: a model source whose models reserve exactly the bytes measured on
 * the real daemon, and runners that take the measured load time on the simulated clock. The scheduler above them
 * (decisions, policy, executor, loader, usage model) is the daemon's own code.
 */
import type { ModelDetails } from "@llmos/protocol";
import type { CpuAllotment, GenerateParams, ModelFacts } from "../../src/engine/engine.js";
import type {
  PrestartedState,
  RemoteGeneration,
  RunnerEngineSpec,
  RunnerExit,
  RunnerFactory,
  RunnerHandle,
} from "../../src/runtime/runner-handle.js";
import type { EmbedReply, RunnerLoadSpec, RunnerStatsReply } from "../../src/runner/ipc-protocol.js";
import { RUNNER_OVERHEAD_BYTES } from "../../src/scheduler/memory-estimator.js";
import type { ModelSource, ModelSpec } from "../../src/scheduler/model-spec.js";
import type { SimClock } from "./sim-clock.js";
import type { SharedCpu } from "./sim-cpu.js";

/** A model as the simulator runs it: what it reserves, how long it loads, how fast it answers. */
export interface SimModel {
  /** The name requests use. */
  name: string;
  /** Bytes it reserves in the memory budget (the daemon's estimate, e.g. from `/api/ps`). */
  bytes: number;
  loadMs: number;
  /** Prompt tokens per second (time to first token = prompt / this). */
  promptTokensPerSecond: number;
  /** Generated tokens per second. */
  tokensPerSecond: number;
}

/** Canonical `name:tag`, as the daemon's store spells it. */
export function canonical(name: string): string {
  return name.includes(":") ? name : `${name}:latest`;
}

export class SimSource implements ModelSource {
  private readonly models: Map<string, SimModel>;

  constructor(models: readonly SimModel[]) {
    this.models = new Map(models.map((m) => [canonical(m.name), m]));
  }

  canonicalName(name: string): string {
    return canonical(name);
  }

  model(name: string): SimModel {
    const m = this.models.get(canonical(name));
    if (!m) throw new Error(`simulator: unknown model ${name}`);
    return m;
  }

  async acquire(name: string): Promise<ModelSpec> {
    const m = this.model(name);
    // A shape whose estimate is exactly the measured reservation: all of it in "tensors", no KV or compute term.
    const overhead = RUNNER_OVERHEAD_BYTES["llama-ffi"]!;
    return {
      name: canonical(name),
      digest: `sha256:${"0".repeat(64)}`,
      modelPath: `/simulated/${m.name}.gguf`,
      adapterPaths: [],
      size: m.bytes,
      details: { format: "gguf", family: "llama" } as unknown as ModelDetails,
      shape: {
        tensorBytes: Math.max(0, m.bytes - overhead),
        blockCount: 0,
        headCount: 0,
        headCountKv: 0,
        embeddingLength: 0,
        feedForwardLength: 0,
        vocabSize: 0,
      },
      trainContextSize: 4096,
      defaults: {},
      release: () => {},
    };
  }

  async readAhead(): Promise<void> {}
}

const FACTS: ModelFacts = {
  trainContextSize: 4096,
  vocabSize: 32000,
  embeddingSize: 8,
  bosToken: 1,
  eosToken: 2,
  bosText: "<s>",
  eosText: "</s>",
};

/**
 * Simulated runners. A load takes the model's measured load time (calibrated on a daemon whose loads mostly found a
 * runner started ahead), plus `startMs` when it finds none: the scheduler keeps one, as the daemon does, and a
 * load that finds it still starting waits for the rest of its start.
 */
export class SimRunners implements RunnerFactory {
  private prestarted: { state: "starting" | "ready"; ready: Promise<void> } | null = null;
  private readonly listeners = new Set<() => void>();

  constructor(
    private readonly clock: SimClock,
    private readonly source: SimSource,
    /** Loads compute on the same processor as requests (a load amid busy models takes longer, as it does). */
    private readonly cpu?: SharedCpu,
    /** A runner's start (process and engine) before it can load, ms. */
    private readonly startMs = 0,
  ) {}

  async start(spec: RunnerLoadSpec, label: string): Promise<RunnerHandle> {
    const m = this.source.model(label);
    const held = this.prestarted;
    this.prestarted = null;
    if (held) {
      this.changed();
      await held.ready;
    } else await this.work(this.startMs);
    await this.work(m.loadMs);
    return new SimRunner(m.loadMs, m.bytes, held !== null);
  }

  prestart(engine: RunnerEngineSpec | null): void {
    if (engine === null) {
      if (this.prestarted) {
        this.prestarted = null;
        this.changed();
      }
      return;
    }
    if (this.prestarted) return;
    const held: { state: "starting" | "ready"; ready: Promise<void> } = { state: "starting", ready: Promise.resolve() };
    held.ready = this.work(this.startMs).then(() => {
      held.state = "ready";
      if (this.prestarted === held) this.changed();
    });
    this.prestarted = held;
    this.changed();
  }

  prestartedState(): PrestartedState {
    return this.prestarted?.state ?? "none";
  }

  prestartedStartMs(): number {
    return this.startMs;
  }

  onPrestartedChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private changed(): void {
    for (const l of this.listeners) l();
  }

  /** `ms` of solo work on the shared processor (or the clock without one). */
  private work(ms: number): Promise<void> {
    return new Promise((resolve) => {
      if (this.cpu) this.cpu.start({ firstMs: 0, totalMs: ms, onDone: resolve });
      else this.clock.setTimer(resolve, ms);
    });
  }
}

/** A runner that exists only to be held, stopped and measured; the simulator times requests itself. */
class SimRunner implements RunnerHandle {
  readonly facts = FACTS;
  readonly engine = "simulated";
  readonly baselineRssBytes = null;
  readonly cpuBackend = null;
  readonly pid = null;
  /** No sandbox or cgroup in a simulation: nothing to limit or measure. */
  readonly sandbox = null;
  readonly memoryLimitBytes = null;
  peakMemoryBytes(): number | null {
    return null;
  }
  placeCpus(): void {}
  exited = false;
  private readonly exitListeners: Array<(info: RunnerExit) => void> = [];

  constructor(
    readonly loadMs: number,
    private readonly bytes: number,
    readonly prestarted: boolean,
  ) {}

  generate(_params: GenerateParams): RemoteGeneration {
    throw new Error("simulated runners do not generate: the simulator times requests itself");
  }
  async embed(): Promise<EmbedReply> {
    throw new Error("simulated runners do not embed");
  }
  async tokenize(): Promise<number[]> {
    return [];
  }
  async detokenize(): Promise<string> {
    return "";
  }
  /** CPU allotments are taken as given: the simulator shares the processor among requests itself (sim-cpu.ts). */
  async setCpu(allotment: CpuAllotment): Promise<{ threads: number; appliedMs: number }> {
    return { threads: allotment.threads, appliedMs: 0 };
  }
  async stats(): Promise<RunnerStatsReply> {
    return {
      engine: {
        decodeBatches: 0,
        contendedBatches: 0,
        multiSequenceBatches: 0,
        maxSequencesInBatch: 0,
        tokensGenerated: 0,
        promptTokens: 0,
        cachedPromptTokens: 0,
        prefixCopies: 0,
      },
      rssBytes: this.bytes,
      activeGenerations: 0,
    };
  }
  async stop(): Promise<void> {
    if (this.exited) return;
    this.exited = true;
    for (const l of this.exitListeners)
      l({
        expected: true,
        code: 0,
        signal: null,
        oomKilled: false,
        memoryLimitBytes: null,
        peakMemoryBytes: null,
      });
  }
  onExit(listener: (info: RunnerExit) => void): void {
    this.exitListeners.push(listener);
  }
}
