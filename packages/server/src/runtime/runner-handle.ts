import { fork, type ChildProcess } from "node:child_process";
import { EventEmitter } from "node:events";
import { fileURLToPath } from "node:url";
import type { GenerateChunk, GenerateParams, GenerateResult, ModelFacts } from "../engine/engine.js";
import type { CpuBackendStatus } from "@llmos/protocol";
import { AsyncChannel } from "../lib/async-channel.js";
import type {
  DaemonToRunner,
  EmbedReply,
  LoadReply,
  ParamsOf,
  ReplyOf,
  RequestMessage,
  RequestType,
  ResultMessage,
  RunnerLoadSpec,
  RunnerStatsReply,
  RunnerToDaemon,
} from "../runner/ipc-protocol.js";
import { crashFailure, failureFromWire } from "./runner-failure.js";
import type { Logger } from "../telemetry/logger.js";

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
  /** The runner's memory with its engine loaded and no model (measured), or null when unknown. */
  readonly baselineRssBytes: number | null;
  /** The CPU backend the runner computes on (llama-ffi), or null when not known. */
  readonly cpuBackend?: CpuBackendStatus | null;
  readonly exited: boolean;
  generate(params: GenerateParams): RemoteGeneration;
  embed(texts: string[]): Promise<EmbedReply>;
  tokenize(text: string, opts?: { addBos?: boolean; parseSpecial?: boolean }): Promise<number[]>;
  detokenize(tokens: number[]): Promise<string>;
  stats(): Promise<RunnerStatsReply>;
  /** Unload gracefully (waits a little), then kill. Idempotent. */
  stop(): Promise<void>;
  /** Called once when the runner exits for any reason; `expected` is false for crashes. */
  onExit(listener: (info: { expected: boolean; code: number | null; signal: string | null }) => void): void;
}

export interface RunnerFactory {
  start(spec: RunnerLoadSpec, label: string): Promise<RunnerHandle>;
}

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

const runnerEntry = (() => {
  const self = fileURLToPath(import.meta.url);
  const ext = self.endsWith(".ts") ? ".ts" : ".js";
  return fileURLToPath(new URL(`../runner/main${ext}`, import.meta.url));
})();

/** Starts runners as child processes (fork), so a crash in llama.cpp never takes the daemon down. */
export class ChildProcessRunnerFactory implements RunnerFactory {
  constructor(private readonly logger: Logger) {}

  async start(spec: RunnerLoadSpec, label: string): Promise<RunnerHandle> {
    const runner = new ChildProcessRunner(spec, label, this.logger.child({ runner: label }));
    await runner.load();
    return runner;
  }
}

class ChildProcessRunner implements RunnerHandle {
  private child: ChildProcess;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private readonly streams = new Map<number, Streaming>();
  private readonly events = new EventEmitter();
  private stopping = false;
  private exitedFlag = false;
  private loadReply: LoadReply | undefined;

  constructor(
    private readonly spec: RunnerLoadSpec,
    private readonly label: string,
    private readonly logger: Logger,
  ) {
    this.child = fork(runnerEntry, [], {
      stdio: ["ignore", "inherit", "inherit", "ipc"],
      serialization: "advanced",
    });
    this.child.on("message", (m: RunnerToDaemon) => this.onMessage(m));
    this.child.on("error", (error) => this.logger.error({ err: error }, "runner process error"));
    this.child.on("exit", (code, signal) => this.onChildExit(code, signal));
  }

  get pid(): number | null {
    return this.exitedFlag ? null : (this.child.pid ?? null);
  }
  get facts(): ModelFacts {
    return this.loadReply!.facts;
  }
  get engine(): string {
    return this.loadReply?.engine ?? this.spec.engine;
  }
  get loadMs(): number {
    return this.loadReply?.loadMs ?? 0;
  }
  get baselineRssBytes(): number | null {
    return this.loadReply?.baselineRssBytes ?? null;
  }
  get cpuBackend(): CpuBackendStatus | null {
    return this.loadReply?.cpuBackend ?? null;
  }
  get exited(): boolean {
    return this.exitedFlag;
  }

  async load(): Promise<void> {
    try {
      this.loadReply = await this.request("load", { spec: this.spec });
    } catch (error) {
      this.kill();
      throw error;
    }
  }

  onExit(listener: (info: { expected: boolean; code: number | null; signal: string | null }) => void): void {
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
    if (!this.post({ type: "generate", id, params })) {
      const error = this.crashError();
      this.streams.delete(id);
      channel.fail(error);
      return { result: Promise.reject(error), cancel, [Symbol.asyncIterator]: () => channel[Symbol.asyncIterator]() };
    }
    return { result, cancel, [Symbol.asyncIterator]: () => channel[Symbol.asyncIterator]() };
  }

  embed(texts: string[]): Promise<EmbedReply> {
    return this.request("embed", { texts });
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
    if (!this.exitedFlag) this.child.kill("SIGKILL");
  }

  /** Sends a request; resolves with its reply, of the type `RunnerRequests` declares for `type`. */
  private request<K extends RequestType>(type: K, params: ParamsOf<K>): Promise<ReplyOf<K>> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const settle = (m: ResultMessage) => {
        if (isAnswerTo(m, type)) resolve(m.value);
        else reject(new Error(`runner answered a ${m.request} request to ${type}`));
      };
      this.pending.set(id, { settle, reject });
      const message: RequestMessage<K> = { type, id, params };
      if (!this.post(message)) {
        this.pending.delete(id);
        reject(this.crashError());
      }
    });
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
    switch (m.type) {
      case "ready":
        return;
      case "log":
        this.logger[m.level === "error" ? "error" : m.level === "warn" ? "warn" : "debug"]({ llama: true }, m.message);
        return;
      case "result": {
        const p = this.pending.get(m.id);
        this.pending.delete(m.id);
        p?.settle(m);
        return;
      }
      case "error": {
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

  private crashError() {
    return crashFailure(this.label);
  }

  private onChildExit(code: number | null, signal: NodeJS.Signals | null): void {
    this.exitedFlag = true;
    const expected = this.stopping;
    if (!expected) this.logger.error({ code, signal }, "runner exited unexpectedly");
    const error = this.crashError();
    for (const p of this.pending.values()) p.reject(error);
    this.pending.clear();
    for (const s of this.streams.values()) {
      s.channel.fail(error);
      s.reject(error);
    }
    this.streams.clear();
    this.events.emit("exit", { expected, code, signal });
  }
}
