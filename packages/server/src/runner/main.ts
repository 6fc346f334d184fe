/**
 * Entry point of a runner process: one model, one context with N sequences, driven over IPC.
 * Only runner processes import engines. Exits when the daemon goes away, so no runner is orphaned.
 */
import {
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
import type {
  DaemonToRunner,
  ParamsOf,
  ReplyOf,
  RequestMessage,
  RequestType,
  ResultMessage,
  RunnerLoadSpec,
  RunnerToDaemon,
  WireFailure,
} from "./ipc-protocol.js";

let engine: Engine | undefined;
let model: EngineModel | undefined;
let streamIntervalMs = 0;
let cpuBackend: CpuBackendStatus | null = null;
const generations = new Map<number, Generation>();

function send<K extends RequestType>(message: RunnerToDaemon | ResultMessage<K>): void {
  if (process.connected) process.send!(message);
}

function log(level: "error" | "warn" | "info" | "debug", message: string): void {
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
  if (error instanceof LlmosError)
    return { ...base, kind: "rejected", code: error.code, ...(error.details ? { details: error.details } : {}) };
  return { ...base, kind: "internal" };
}

async function createEngine(spec: RunnerLoadSpec): Promise<Engine> {
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
const handlers: { [K in RequestType]: (params: ParamsOf<K>) => Promise<ReplyOf<K>> } = {
  async load({ spec }) {
    const started = performance.now();
    streamIntervalMs = spec.streamIntervalMs;
    engine = await createEngine(spec);
    const baselineRssBytes = process.memoryUsage.rss();
    model = await engine.load(spec);
    return {
      facts: model.facts,
      engine: spec.engine,
      loadMs: performance.now() - started,
      rssBytes: process.memoryUsage.rss(),
      baselineRssBytes,
      cpuBackend,
    };
  },
  async embed({ texts }) {
    const m = requireModel();
    const vectors: number[][] = [];
    let promptTokens = 0;
    for (const text of texts) {
      vectors.push(await m.embed(text));
      promptTokens += m.tokenize(text, { addBos: true }).length;
    }
    return { vectors, promptTokens };
  },
  async tokenize({ text, addBos, parseSpecial }) {
    return requireModel().tokenize(text, { addBos, parseSpecial });
  },
  async detokenize({ tokens }) {
    return requireModel().detokenize(tokens);
  },
  async stats() {
    return { engine: requireModel().stats(), rssBytes: process.memoryUsage.rss(), activeGenerations: generations.size };
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
  const handler: (params: ParamsOf<K>) => Promise<ReplyOf<K>> = handlers[msg.type];
  const value = await handler(msg.params);
  const reply: ResultMessage<K> = { type: "result", id: msg.id, request: msg.type, value };
  send(reply);
}

/** Streams a generation's chunks (merged per stream interval), then `done`. */
async function generate(id: number, params: GenerateParams): Promise<void> {
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
    case "cancel":
      generations.get(msg.id)?.cancel();
      return Promise.resolve();
    default:
      return answer(msg);
  }
}

process.on("message", (msg: DaemonToRunner) => {
  handle(msg).catch((error) => send({ type: "error", id: msg.id, error: toWire(error, msg.type === "load") }));
});
// The daemon is gone: never outlive it.
process.on("disconnect", () => process.exit(0));
process.on("SIGINT", () => undefined);
send({ type: "ready", pid: process.pid });
