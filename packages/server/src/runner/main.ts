/**
 * Entry point of a runner process: one model, one context with N sequences, driven over IPC.
 * Only runner processes import engines. Exits when the daemon goes away, so no runner is orphaned.
 */
import {
  CancelledError,
  ContextOverflowError,
  EngineBusyError,
  EngineOutOfMemoryError,
  InvalidInputError,
  type Engine,
  type EngineModel,
  type GenerateParams,
  type Generation,
} from "../engine/engine.js";
import type { CpuBackendStatus } from "@llmos/protocol";
import { cpuVariantOf } from "../engine/llama-ffi/cpu-backend.js";
import { LlmosError } from "../errors.js";
import { ChunkCoalescer } from "./chunk-coalescer.js";
import { startOrphanGuard } from "./orphan-guard.js";
import { stallIfTestAsks } from "./test-stall.js";
import type {
  DaemonToRunner,
  ParamsOf,
  ReplyOf,
  RequestMessage,
  RequestType,
  ResultMessage,
  RunnerEngineSpec,
  RunnerLogLines,
  RunnerToDaemon,
  WireFailure,
} from "./ipc-protocol.js";

let engine: Engine | undefined;
/** RSS once the engine was up, before any model (the runner's own overhead). */
let baselineRssBytes = 0;
let model: EngineModel | undefined;
let streamIntervalMs = 0;
let cpuBackend: CpuBackendStatus | null = null;
const generations = new Map<number, Generation>();
/** Embeddings in progress, by request id: `cancelled` is set by a `cancel` message. */
const embeddings = new Map<number, { cancelled: boolean }>();

/** Progress messages for the daemon's watchdog: at most one per interval (the first at once). */
const PROGRESS_INTERVAL_MS = 250;
let lastProgressAt = 0;
function reportProgress(): void {
  const now = Date.now();
  if (now - lastProgressAt < PROGRESS_INTERVAL_MS) return;
  lastProgressAt = now;
  send({ type: "progress" });
}

function send<K extends RequestType>(message: RunnerToDaemon | ResultMessage<K>): void {
  if (process.connected) process.send!(message);
}

/** Which log lines the daemon wants (set by `prepare` and `load`; see RunnerLogLines). */
let logLines: RunnerLogLines = "all";

function log(level: "error" | "warn" | "info" | "debug", message: string): void {
  if (logLines === "warnings" && level !== "warn" && level !== "error") return;
  send({ type: "log", level, message });
}

/** The failure's kind, from the class of the error where it was raised (and whether a load was under way). */
function toWire(error: unknown, loading: boolean): WireFailure {
  const e = error instanceof Error ? error : new Error(String(error));
  const base = { name: e.name, message: e.message };
  if (error instanceof EngineOutOfMemoryError) return { ...base, kind: "oom" };
  if (loading) return { ...base, kind: "load_failed" };
  if (error instanceof ContextOverflowError)
    return { ...base, kind: "context_overflow", details: { needed: error.needed, available: error.available } };
  if (error instanceof EngineBusyError) return { ...base, kind: "busy" };
  if (error instanceof InvalidInputError) return { ...base, kind: "rejected", code: "invalid_request" };
  if (error instanceof CancelledError) return { ...base, kind: "rejected", code: "client_closed" };
  if (error instanceof LlmosError)
    return { ...base, kind: "rejected", code: error.code, ...(error.details ? { details: error.details } : {}) };
  return { ...base, kind: "internal" };
}

async function createEngine(spec: RunnerEngineSpec): Promise<Engine> {
  if (spec.engine === "llama-ffi") {
    const { LlamaFfiEngine } = await import("../engine/llama-ffi/index.js");
    const engine = await LlamaFfiEngine.create({ logger: log, gpu: spec.gpu, cpuBackendDir: spec.cpuBackendDir });
    const cpu = engine.cpuBackend;
    if (cpu.fallbackReason)
      log("warn", `CPU backend built here not used: ${cpu.fallbackReason}; using the shipped one`);
    log("debug", `CPU backend: ${cpu.source} (${cpu.library ?? "library unknown"})`);
    cpuBackend = { source: cpu.source, variant: cpu.library ? cpuVariantOf(cpu.library) : null };
    return engine;
  }
  const { LlamaNodeEngine } = await import("../engine/llama-node/llama-node-engine.js");
  return LlamaNodeEngine.create({ threads: spec.threads, gpu: spec.gpu, logger: log });
}

function requireModel(): EngineModel {
  if (!model) throw new Error("no model loaded in this runner");
  return model;
}

/** One handler per request type; each must return that request's reply type (see `RunnerRequests`). */
const handlers: { [K in RequestType]: (params: ParamsOf<K>, id: number) => Promise<ReplyOf<K>> } = {
  async prepare({ spec, logLines: lines }) {
    logLines = lines;
    if (engine) throw new Error("this runner's engine is already up");
    engine = await createEngine(spec);
    baselineRssBytes = process.memoryUsage.rss();
    return { baselineRssBytes, cpuBackend };
  },
  async load({ spec, logLines: lines }) {
    const started = performance.now();
    logLines = lines;
    if (model) throw new Error("this runner already holds a model");
    streamIntervalMs = spec.streamIntervalMs;
    if (!engine) {
      engine = await createEngine(spec);
      baselineRssBytes = process.memoryUsage.rss();
    }
    model = await engine.load({ ...spec, onProgress: reportProgress });
    return {
      facts: model.facts,
      engine: spec.engine,
      loadMs: performance.now() - started,
      rssBytes: process.memoryUsage.rss(),
      baselineRssBytes,
      cpuBackend,
    };
  },
  async embed({ texts, truncate }, id) {
    const m = requireModel();
    const state = { cancelled: false };
    embeddings.set(id, state);
    try {
      const vectors: number[][] = [];
      let promptTokens = 0;
      // Cancellation is checked between inputs, and by the engine between chunks of a long one.
      for (const text of texts) {
        if (state.cancelled) throw new CancelledError("embedding cancelled");
        stallIfTestAsks(text);
        const e = await m.embed(text, { isCancelled: () => state.cancelled, truncate: truncate === true });
        vectors.push(e.vector);
        promptTokens += e.tokens;
        reportProgress();
      }
      return { vectors, promptTokens };
    } finally {
      embeddings.delete(id);
    }
  },
  async tokenize({ text, addBos, parseSpecial }) {
    return requireModel().tokenize(text, { addBos, parseSpecial });
  },
  async detokenize({ tokens }) {
    return requireModel().detokenize(tokens);
  },
  async setCpu(allotment) {
    const started = performance.now();
    await requireModel().setCpuAllotment(allotment);
    return { threads: allotment.threads, appliedMs: performance.now() - started };
  },
  async stats() {
    return {
      engine: requireModel().stats(),
      rssBytes: process.memoryUsage.rss(),
      peakRssBytes: process.resourceUsage().maxRSS * 1024,
      activeGenerations: generations.size,
    };
  },
  async unload() {
    for (const g of generations.values()) g.cancel();
    await model?.dispose();
    await engine?.dispose();
    model = undefined;
    setImmediate(() => process.exit(0));
    return true;
  },
};

async function answer<K extends RequestType>(msg: RequestMessage<K>): Promise<void> {
  const handler: (params: ParamsOf<K>, id: number) => Promise<ReplyOf<K>> = handlers[msg.type];
  const value = await handler(msg.params, msg.id);
  const reply: ResultMessage<K> = { type: "result", id: msg.id, request: msg.type, value };
  send(reply);
}

/** Streams a generation's chunks (merged per stream interval), then `done`. */
async function generate(id: number, params: GenerateParams): Promise<void> {
  if (typeof params.prompt === "string") stallIfTestAsks(params.prompt);
  const generation = requireModel().generate(params);
  generations.set(id, generation);
  const out = new ChunkCoalescer({ intervalMs: streamIntervalMs, send: (chunk) => send({ type: "chunk", id, chunk }) });
  try {
    for await (const chunk of generation) out.push(chunk);
    const result = await generation.result;
    out.flush();
    send({ type: "done", id, result });
  } finally {
    out.flush(); // text made before a failure still goes out, ahead of the error
    generations.delete(id);
  }
}

function handle(msg: DaemonToRunner): Promise<void> {
  switch (msg.type) {
    case "generate":
      return generate(msg.id, msg.params);
    case "cancel": {
      generations.get(msg.id)?.cancel();
      const embedding = embeddings.get(msg.id);
      if (embedding) embedding.cancelled = true;
      return Promise.resolve();
    }
    default:
      return answer(msg);
  }
}

process.on("message", (msg: DaemonToRunner) => {
  handle(msg).catch((error) =>
    send({ type: "error", id: msg.id, error: toWire(error, msg.type === "load" || msg.type === "prepare") }),
  );
});
// The daemon is gone: never outlive it, nor let anything this runner forked (it leads its process group).
process.on("disconnect", () => {
  try {
    process.kill(-process.pid, "SIGKILL");
  } catch {
    // not a group leader (started by hand): only this process
  }
  process.exit(0);
});
process.on("SIGINT", () => undefined);
startOrphanGuard();
send({ type: "ready", pid: process.pid });
