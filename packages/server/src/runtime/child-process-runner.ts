/**
 * A runner as a child process: spawns it as its launch plan says, talks to it over Node's IPC channel (requests with
 * typed replies, generation streams, cancellation, its log lines within a budget), watches its progress (a runner
 * with work and no progress is killed with its process group), and turns its exit (crash, stall, OOM kill at its
 * cgroup's limit) into typed failures of everything it had in hand.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { rmSync } from "node:fs";
import { EventEmitter } from "node:events";
import type { CpuAllotment, GenerateChunk, GenerateParams, GenerateResult, ModelFacts } from "../engine/engine.js";
import type { CpuBackendStatus, RunnerSandboxStatus } from "@llmos/protocol";
import { AsyncChannel } from "../lib/async-channel.js";
import type {
  DaemonToRunner,
  EmbedReply,
  LoadReply,
  ParamsOf,
  PrepareReply,
  ReplyOf,
  RequestMessage,
  RequestType,
  ResultMessage,
  RunnerEngineSpec,
  RunnerLoadSpec,
  RunnerStatsReply,
  RunnerToDaemon,
} from "../runner/ipc-protocol.js";
import { engineSpecOf } from "../runner/ipc-protocol.js";
import { crashFailure, failureFromWire, oomKillFailure, stallFailure, type RunnerFailure } from "./runner-failure.js";
import type { RemoteGeneration, RunnerExit, RunnerHandle } from "./runner-handle.js";
import type { CgroupCpuLimit } from "./sandbox/runner-cgroup.js";
import { RunnerLauncher, type LaunchPlan } from "./sandbox/runner-launcher.js";
import type { Logger } from "../telemetry/logger.js";
import { killProcessGroup } from "./process-group.js";
import { LogBudget, logThroughBudget, runnerLogLines } from "./log-budget.js";
import { ProgressWatchdog } from "./progress-watchdog.js";
import { LlmosError } from "../errors.js";

/** A request waiting for its answer: `settle` checks the answer is of the request's type. */
interface Pending {
  settle: (m: ResultMessage) => void;
  reject: (error: unknown) => void;
}

interface Streaming {
  channel: AsyncChannel<GenerateChunk>;
  resolve: (r: GenerateResult) => void;
  reject: (error: unknown) => void;
}

/** True when `m` answers a request of `type` (so its value is that request's reply). */
function isAnswerTo<K extends RequestType>(m: ResultMessage | ResultMessage<K>, type: K): m is ResultMessage<K> {
  return m.request === type;
}

export class ChildProcessRunner implements RunnerHandle {
  private child: ChildProcess;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly streams = new Map<number, Streaming>();
  private readonly events = new EventEmitter();
  private stopping = false;
  private exitedFlag = false;
  private loadReply: LoadReply | undefined;
  private readonly watchdog: ProgressWatchdog;
  /** Set when the watchdog killed the runner: its requests fail with this instead of `runner_crashed`. */
  private stallError: RunnerFailure | undefined;
  /** Marks each request or generation answered, for the watchdog. */
  private readonly answered = new Map<number, () => void>();
  /** The last lines the runner wrote to stderr. */
  private stderrTail = "";
  private readonly logBudget = new LogBudget();
  private finalPeakBytes: number | null = null;
  private prepared: PrepareReply | undefined;
  /** Started ahead of its load (a prestarted runner, see prestarted-runner.ts). */
  prestarted = false;

  constructor(
    private readonly engineSpec: RunnerEngineSpec,
    private label: string,
    private logger: Logger,
    private readonly plan: LaunchPlan,
    stallMs: number,
  ) {
    this.watchdog = new ProgressWatchdog(stallMs, (idleMs) => this.onStall(idleMs));
    // Detached: the runner (or the sandbox around it, which takes everything inside with it) leads its own process
    // group, so a kill reaches whatever it forked too.
    this.child = spawn(plan.command, plan.args, {
      stdio: ["ignore", "inherit", "pipe", "ipc"],
      serialization: "advanced",
      env: plan.env,
      cwd: plan.cwd,
      detached: true,
    });
    // llama.cpp writes why it aborts (GGML_ASSERT file:line) to stderr: passed through, and the tail kept for the
    // crash log.
    this.child.stderr?.on("data", (chunk: Buffer) => {
      process.stderr.write(chunk);
      this.stderrTail = (this.stderrTail + chunk.toString("utf8")).slice(-2000);
    });
    this.child.on("message", (m: RunnerToDaemon) => this.onMessage(m));
    this.child.on("error", (error) => {
      this.logger.error({ err: error }, "runner process error");
      // A process that never started emits no exit: end it here, so its requests fail instead of waiting.
      if (this.child.pid === undefined && !this.exitedFlag) this.onChildExit(null, null);
    });
    this.child.on("exit", (code, signal) => this.onChildExit(code, signal));
  }

  get pid(): number | null {
    return this.exitedFlag ? null : (this.child.pid ?? null);
  }
  get facts(): ModelFacts {
    return this.loadReply!.facts;
  }
  get engine(): string {
    return this.loadReply?.engine ?? this.engineSpec.engine;
  }
  get loadMs(): number {
    return this.loadReply?.loadMs ?? 0;
  }
  get baselineRssBytes(): number | null {
    return this.loadReply?.baselineRssBytes ?? this.prepared?.baselineRssBytes ?? null;
  }
  get cpuBackend(): CpuBackendStatus | null {
    return this.loadReply?.cpuBackend ?? this.prepared?.cpuBackend ?? null;
  }
  /** The launch plan it was started from (a prestarted runner's is completed for its model at load). */
  get launchPlan(): LaunchPlan {
    return this.plan;
  }
  get exited(): boolean {
    return this.exitedFlag;
  }
  get sandbox(): RunnerSandboxStatus {
    return RunnerLauncher.status(this.plan);
  }
  get memoryLimitBytes(): number | null {
    return this.plan.cgroup?.memoryLimitBytes ?? null;
  }
  peakMemoryBytes(): number | null {
    return this.exitedFlag ? this.finalPeakBytes : (this.plan.cgroup?.peakBytes() ?? null);
  }
  placeCpus(placement: CgroupCpuLimit): void {
    if (!this.exitedFlag) this.plan.cgroup?.place(placement);
  }

  /** Starts the engine with no model yet (a prestarted runner). Kills the runner when that fails. */
  async prepare(): Promise<PrepareReply> {
    try {
      const logLines = runnerLogLines(this.logger);
      this.prepared = await this.request("prepare", { spec: engineSpecOf(this.engineSpec), logLines });
      return this.prepared;
    } catch (error) {
      this.kill();
      throw error;
    }
  }

  /** Names the runner after the model it is about to load (a prestarted runner is named `prestarted` until then). */
  rename(label: string, logger: Logger): void {
    this.label = label;
    this.logger = logger;
  }

  async load(spec: RunnerLoadSpec): Promise<void> {
    try {
      this.loadReply = await this.request("load", { spec, logLines: runnerLogLines(this.logger) });
    } catch (error) {
      this.kill();
      throw error;
    }
  }

  onExit(listener: (info: RunnerExit) => void): void {
    this.events.once("exit", listener);
  }

  generate(params: GenerateParams): RemoteGeneration {
    const id = this.nextId++;
    let cancelled = false;
    const cancel = () => {
      if (cancelled) return;
      cancelled = true;
      this.post({ type: "cancel", id });
    };
    const channel = new AsyncChannel<GenerateChunk>(cancel);
    const result = new Promise<GenerateResult>((resolve, reject) => this.streams.set(id, { channel, resolve, reject }));
    result.catch(() => undefined);
    this.answered.set(id, this.watchdog.begin());
    if (!this.post({ type: "generate", id, params })) {
      const error = crashFailure(this.label);
      this.settle(id);
      this.streams.delete(id);
      channel.fail(error);
      return { result: Promise.reject(error), cancel, [Symbol.asyncIterator]: () => channel[Symbol.asyncIterator]() };
    }
    return { result, cancel, [Symbol.asyncIterator]: () => channel[Symbol.asyncIterator]() };
  }

  embed(texts: string[], opts: { signal?: AbortSignal; truncate?: boolean } = {}): Promise<EmbedReply> {
    return this.request("embed", { texts, ...(opts.truncate ? { truncate: true } : {}) }, opts.signal);
  }
  tokenize(text: string, opts?: { addBos?: boolean; parseSpecial?: boolean }): Promise<number[]> {
    return this.request("tokenize", {
      text,
      addBos: opts?.addBos ?? false,
      parseSpecial: opts?.parseSpecial ?? false,
    });
  }
  detokenize(tokens: number[]): Promise<string> {
    return this.request("detokenize", { tokens });
  }
  stats(): Promise<RunnerStatsReply> {
    return this.request("stats", {});
  }
  setCpu(allotment: CpuAllotment): Promise<{ threads: number; appliedMs: number }> {
    return this.request("setCpu", allotment);
  }

  async stop(): Promise<void> {
    if (this.exitedFlag) return;
    this.stopping = true;
    const exited = new Promise<void>((resolve) => this.events.once("exit", () => resolve()));
    this.request("unload", {}).catch(() => undefined);
    const timer = setTimeout(() => this.kill(), 3000);
    await exited;
    clearTimeout(timer);
  }

  private kill(): void {
    this.stopping = true;
    if (!this.exitedFlag) killProcessGroup(this.child.pid);
  }

  /** The watchdog found the runner with work and no progress: kill it (and what it forked); fail its requests. */
  private onStall(idleMs: number): void {
    if (this.exitedFlag) return;
    this.logger.error(
      { pid: this.child.pid, idleMs, pending: this.pending.size + this.streams.size },
      "runner made no progress; killing it and its process group",
    );
    this.stallError = stallFailure(this.label, idleMs);
    killProcessGroup(this.child.pid);
  }

  /**
   * Sends a request; resolves with its reply, of the type `RunnerRequests` declares for `type`. An abort of `signal`
   * tells the runner to cancel it and rejects at once with `client_closed` (the runner stops at its next check; its
   * late answer is dropped).
   */
  private request<K extends RequestType>(type: K, params: ParamsOf<K>, signal?: AbortSignal): Promise<ReplyOf<K>> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        if (!this.pending.has(id)) return;
        this.pending.delete(id);
        this.settle(id);
        this.post({ type: "cancel", id });
        reject(new LlmosError("client_closed", "the request was cancelled"));
      };
      const done = () => signal?.removeEventListener("abort", onAbort);
      const settle = (m: ResultMessage) => {
        done();
        if (isAnswerTo(m, type)) resolve(m.value);
        else reject(new Error(`runner answered a ${m.request} request to ${type}`));
      };
      this.pending.set(id, { settle, reject: (e) => (done(), reject(e)) });
      this.answered.set(id, this.watchdog.begin());
      const message: RequestMessage<K> = { type, id, params };
      if (!this.post(message)) {
        this.pending.delete(id);
        this.settle(id);
        done();
        reject(crashFailure(this.label));
        return;
      }
      if (signal?.aborted) onAbort();
      else signal?.addEventListener("abort", onAbort, { once: true });
    });
  }

  /** The request `id` is answered (or will never be): it no longer counts as work for the watchdog. */
  private settle(id: number): void {
    this.answered.get(id)?.();
    this.answered.delete(id);
  }

  private post<K extends RequestType>(message: DaemonToRunner | RequestMessage<K>): boolean {
    if (this.exitedFlag || !this.child.connected) return false;
    try {
      this.child.send(message);
      return true;
    } catch {
      return false;
    }
  }

  private onMessage(m: RunnerToDaemon): void {
    this.watchdog.progress();
    switch (m.type) {
      case "ready":
      case "progress":
        return;
      case "log":
        return logThroughBudget(this.logBudget, this.logger, { llama: true }, m.level, m.message);
      case "result": {
        const p = this.pending.get(m.id);
        this.pending.delete(m.id);
        this.settle(m.id);
        p?.settle(m);
        return;
      }
      case "error": {
        this.settle(m.id);
        const error = failureFromWire(m.error, this.label);
        const p = this.pending.get(m.id);
        if (p) {
          this.pending.delete(m.id);
          p.reject(error);
          return;
        }
        const s = this.streams.get(m.id);
        if (s) {
          this.streams.delete(m.id);
          s.channel.fail(error);
          s.reject(error);
        }
        return;
      }
      case "chunk":
        this.streams.get(m.id)?.channel.push(m.chunk);
        return;
      case "done": {
        this.settle(m.id);
        const s = this.streams.get(m.id);
        this.streams.delete(m.id);
        if (s) {
          s.channel.close();
          s.resolve(m.result);
        }
        return;
      }
    }
  }

  private onChildExit(code: number | null, signal: NodeJS.Signals | null): void {
    const cgroup = this.plan.cgroup;
    // Read the cgroup before it goes: did the kernel stop the runner at its memory limit, and how high did it get?
    const oomKilled = (cgroup?.oomKills() ?? 0) > 0;
    this.finalPeakBytes = cgroup?.peakBytes() ?? null;
    this.exitedFlag = true;
    this.watchdog.dispose();
    // Whatever the runner forked and left behind goes with it.
    killProcessGroup(this.child.pid);
    void cgroup?.remove();
    if (this.plan.dropDir) rmSync(this.plan.dropDir, { recursive: true, force: true });
    const stalled = this.stallError !== undefined && !oomKilled;
    const expected = this.stopping && !stalled && !oomKilled;
    const memoryLimitBytes = this.memoryLimitBytes;
    if (oomKilled)
      this.logger.error(
        { code, signal, memoryLimitBytes, peakMemoryBytes: this.finalPeakBytes },
        "runner went past its memory limit; the kernel stopped it",
      );
    else if (!expected && !stalled) {
      // Logged once stderr is drained, so the log holds llama.cpp's last words.
      const report = () =>
        this.logger.error(
          { code, signal, stderr: this.stderrTail.trim().split("\n").slice(-5) },
          "runner exited unexpectedly",
        );
      if (this.child.stderr && !this.child.stderr.closed) this.child.stderr.once("close", report);
      else report();
    }
    const error = oomKilled
      ? oomKillFailure(this.label, memoryLimitBytes)
      : (this.stallError ?? crashFailure(this.label));
    for (const settle of this.answered.values()) settle();
    this.answered.clear();
    for (const p of this.pending.values()) p.reject(error);
    this.pending.clear();
    for (const s of this.streams.values()) {
      s.channel.fail(error);
      s.reject(error);
    }
    this.streams.clear();
    const exit: RunnerExit = {
      expected,
      code,
      signal,
      oomKilled,
      stalled,
      memoryLimitBytes,
      peakMemoryBytes: this.finalPeakBytes,
    };
    this.events.emit("exit", exit);
  }
}
