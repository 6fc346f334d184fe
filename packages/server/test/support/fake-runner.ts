/**
 * A runner factory for the scheduler's and the generation pipeline's fast tests: runners that start at once (or
 * when told), never load a model, and generate scripted text. The product never uses it; end-to-end tests use
 * real runners.
 */
import type {
  CpuAllotment,
  GenerateChunk,
  GenerateParams,
  GenerateResult,
  ModelFacts,
} from "../../src/engine/engine.js";
import { AsyncChannel } from "../../src/lib/async-channel.js";
import { crashFailure, oomKillFailure, RunnerFailure } from "../../src/runtime/runner-failure.js";
import type {
  PrestartedState,
  RemoteGeneration,
  RunnerEngineSpec,
  RunnerExit,
  RunnerFactory,
  RunnerHandle,
  RunnerResources,
} from "../../src/runtime/runner-handle.js";
import type { EmbedReply, RunnerLoadSpec, RunnerStatsReply } from "../../src/runner/ipc-protocol.js";

/** What one generation does: stream `chunks`, then end with `result` (or fail with `error`). */
export interface GenerationScript {
  chunks: string[];
  finishReason?: GenerateResult["finishReason"];
  promptTokens?: number;
  /** Fails the generation after the chunks. */
  error?: Error;
  /** Keeps the generation open after its chunks until `FakeRunner.finishAll()` (or cancel). */
  hold?: boolean;
}

const FACTS: ModelFacts = {
  trainContextSize: 2048,
  vocabSize: 32000,
  embeddingSize: 8,
  bosToken: 1,
  eosToken: 2,
  bosText: "<s>",
  eosText: "</s>",
};

export class FakeRunners implements RunnerFactory {
  readonly started: FakeRunner[] = [];
  /** Errors the next starts fail with, in order (e.g. an `oom` RunnerFailure). */
  readonly failures: unknown[] = [];
  /** While set, runners apply CPU allotments only once it settles (a decode step under way). */
  cpuGate: Promise<void> | undefined;
  /** While set, starts wait for it (to hold a load in its `starting` step). */
  gate: Promise<void> | undefined;
  /** What generations do (default: two chunks, then stop). */
  script: (params: GenerateParams) => GenerationScript = () => ({ chunks: ["Once", " upon"] });
  private nextPid = 1000;

  async start(spec: RunnerLoadSpec, label: string, resources?: RunnerResources): Promise<RunnerHandle> {
    await this.gate;
    const failure = this.failures.shift();
    if (failure) throw failure;
    const runner = new FakeRunner(this, label, spec, this.nextPid++, resources);
    this.started.push(runner);
    return runner;
  }

  /** Runners of `model` that have not exited. */
  live(model?: string): FakeRunner[] {
    return this.started.filter((r) => !r.exited && (model === undefined || r.label === model));
  }
}

/** Fake runners that keep a prestarted runner as told (ready at once) and count the loads that took it. */
export class PrestartingRunners extends FakeRunners {
  readonly asked: Array<RunnerEngineSpec | null> = [];
  held: RunnerEngineSpec | null = null;
  took = 0;
  private listener: (() => void) | undefined;

  prestart(engine: RunnerEngineSpec | null): void {
    this.asked.push(engine);
    const changed = (engine === null) !== (this.held === null);
    this.held = engine;
    if (changed) queueMicrotask(() => this.listener?.());
  }
  prestartedState(): PrestartedState {
    return this.held ? "ready" : "none";
  }
  onPrestartedChange(listener: () => void): () => void {
    this.listener = listener;
    return () => (this.listener = undefined);
  }
  override async start(...args: Parameters<FakeRunners["start"]>) {
    if (this.held) {
      this.took++;
      this.held = null;
    }
    return super.start(...args);
  }
}

/** An `oom` failure as a runner would report it. */
export function oomFailure(): RunnerFailure {
  return new RunnerFailure("oom", "insufficient_memory", "runner ran out of memory: fake");
}

export class FakeRunner implements RunnerHandle {
  readonly facts = FACTS;
  readonly engine = "fake";
  readonly loadMs = 5;
  readonly baselineRssBytes = null;
  readonly cpuBackend = null;
  readonly sandbox = null;
  exited = false;
  stops = 0;
  /** CPU allotments received, in order. */
  readonly allotments: CpuAllotment[] = [];
  /** `setCpu` and `generate` calls in the order they came (`cpu:<threads>`, `generate`). */
  readonly calls: string[] = [];
  /** Threads the runner decodes with now (starts with those it was loaded with). */
  threads: number;
  private readonly exitListeners: Array<(info: RunnerExit) => void> = [];
  private readonly open = new Set<{
    channel: AsyncChannel<GenerateChunk>;
    finish: () => void;
    fail: (e: unknown) => void;
  }>();

  constructor(
    private readonly factory: FakeRunners,
    readonly label: string,
    readonly spec: RunnerLoadSpec,
    private readonly fakePid: number,
    /** What the scheduler gave this runner (its memory estimate). */
    readonly resources: RunnerResources | undefined,
  ) {
    this.threads = spec.threads;
  }

  get pid(): number | null {
    return this.exited ? null : this.fakePid;
  }

  /** A fake limit: the estimate plus 15%, as the sandbox's cgroup would have it. */
  get memoryLimitBytes(): number | null {
    const estimate = this.resources?.memoryEstimateBytes;
    return estimate ? Math.ceil(estimate * 1.15) : null;
  }
  peakMemoryBytes(): number | null {
    return null;
  }
  placeCpus(): void {}

  generate(params: GenerateParams): RemoteGeneration {
    this.calls.push("generate");
    const script = this.factory.script(params);
    let settle!: { resolve: (r: GenerateResult) => void; reject: (e: unknown) => void };
    const result = new Promise<GenerateResult>((resolve, reject) => (settle = { resolve, reject }));
    result.catch(() => undefined);
    let finished = false;
    const completionTokens = script.chunks.length;
    const end = (reason: GenerateResult["finishReason"]) => {
      if (finished) return;
      finished = true;
      this.open.delete(handle);
      channel.close();
      settle.resolve({
        finishReason: reason,
        promptTokens: script.promptTokens ?? 4,
        cachedPromptTokens: 0,
        completionTokens,
        promptMs: 1,
        generateMs: 1,
      });
    };
    const fail = (error: unknown) => {
      if (finished) return;
      finished = true;
      this.open.delete(handle);
      channel.fail(error);
      settle.reject(error);
    };
    const channel = new AsyncChannel<GenerateChunk>(() => end("cancelled"));
    const handle = { channel, finish: () => end(script.finishReason ?? "stop"), fail };
    this.open.add(handle);
    for (const text of script.chunks) channel.push({ text, tokens: 1 });
    if (script.error) fail(script.error);
    else if (!script.hold) handle.finish();
    return { result, cancel: () => end("cancelled"), [Symbol.asyncIterator]: () => channel[Symbol.asyncIterator]() };
  }

  /** Ends every held generation normally. */
  finishAll(): void {
    for (const g of [...this.open]) g.finish();
  }

  async embed(texts: string[]): Promise<EmbedReply> {
    return { vectors: texts.map(() => [1, 0, 0]), promptTokens: texts.length * 3 };
  }
  async tokenize(text: string): Promise<number[]> {
    return [...text].map((c) => c.charCodeAt(0));
  }
  async detokenize(tokens: number[]): Promise<string> {
    return String.fromCharCode(...tokens);
  }
  async setCpu(allotment: CpuAllotment): Promise<{ threads: number; appliedMs: number }> {
    if (this.exited) throw crashFailure(this.label);
    await this.factory.cpuGate;
    this.allotments.push({ ...allotment });
    this.calls.push(`cpu:${allotment.threads}`);
    this.threads = allotment.threads;
    return { threads: allotment.threads, appliedMs: 0 };
  }

  async stats(): Promise<RunnerStatsReply> {
    return {
      engine: {
        decodeBatches: 0,
        multiSequenceBatches: 0,
        maxSequencesInBatch: 0,
        tokensGenerated: 0,
        promptTokens: 0,
        contendedBatches: 0,
        cachedPromptTokens: 0,
        prefixCopies: 0,
      },
      rssBytes: 1,
      activeGenerations: this.open.size,
    };
  }

  async stop(): Promise<void> {
    this.stops++;
    this.exit(true);
  }

  /** The process dies: in-flight generations fail with `runner_crashed`, listeners hear an unexpected exit. */
  crash(): void {
    this.exit(false);
  }

  /** The kernel stops the runner at its memory limit: in-flight generations fail with `runner_oom`. */
  oomKill(): void {
    this.exit(false, true);
  }

  onExit(listener: (info: RunnerExit) => void): void {
    this.exitListeners.push(listener);
  }

  private exit(expected: boolean, oomKilled = false): void {
    if (this.exited) return;
    this.exited = true;
    const limit = this.memoryLimitBytes;
    for (const g of [...this.open]) g.fail(oomKilled ? oomKillFailure(this.label, limit) : crashFailure(this.label));
    const info: RunnerExit = {
      expected,
      code: expected ? 0 : null,
      signal: expected ? null : "SIGKILL",
      oomKilled,
      memoryLimitBytes: oomKilled ? limit : null,
      peakMemoryBytes: oomKilled ? limit : null,
    };
    for (const l of this.exitListeners) l(info);
  }
}
