/**
 * Entry point of a runner process: one model, one context with N sequences, driven over IPC.
 * Only runner processes import engines. Exits when the daemon goes away, so no runner is orphaned.
 */
import {
  ContextOverflowError,
  EngineBusyError,
  type Engine,
  type EngineModel,
  type Generation,
} from "../engine/engine.js";
import type { CpuBackendStatus } from "@llmos/protocol";
import { cpuVariantOf } from "../engine/llama-ffi/cpu-backend.js";
import { ChunkCoalescer } from "./chunk-coalescer.js";
import type {
  DaemonToRunner,
  EmbedReply,
  LoadReply,
  RunnerLoadSpec,
  RunnerToDaemon,
  WireError,
} from "./ipc-protocol.js";

let engine: Engine | undefined;
let model: EngineModel | undefined;
let streamIntervalMs = 0;
let cpuBackend: CpuBackendStatus | null = null;
const generations = new Map<number, Generation>();

function send(message: RunnerToDaemon): void {
  if (process.connected) process.send!(message);
}

function log(level: "error" | "warn" | "info" | "debug", message: string): void {
  send({ type: "log", level, message });
}

function toWire(error: unknown): WireError {
  if (error instanceof ContextOverflowError)
    return {
      name: error.name,
      message: error.message,
      kind: "context_overflow",
      details: { needed: error.needed, available: error.available },
    };
  if (error instanceof EngineBusyError) return { name: error.name, message: error.message, kind: "busy" };
  const e = error instanceof Error ? error : new Error(String(error));
  const oom = /out of memory|failed to allocate|unable to allocate|bad_alloc/i.test(e.message);
  return { name: e.name, message: e.message, ...(oom ? { kind: "out_of_memory" as const } : {}) };
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

async function handle(msg: DaemonToRunner): Promise<void> {
  switch (msg.type) {
    case "load": {
      const started = performance.now();
      streamIntervalMs = msg.spec.streamIntervalMs;
      engine = await createEngine(msg.spec);
      const baselineRssBytes = process.memoryUsage.rss();
      model = await engine.load(msg.spec);
      const reply: LoadReply = {
        facts: model.facts,
        engine: msg.spec.engine,
        loadMs: performance.now() - started,
        rssBytes: process.memoryUsage.rss(),
        baselineRssBytes,
        cpuBackend,
      };
      send({ type: "result", id: msg.id, value: reply });
      return;
    }
    case "generate": {
      const generation = requireModel().generate(msg.params);
      generations.set(msg.id, generation);
      const out = new ChunkCoalescer({
        intervalMs: streamIntervalMs,
        send: (chunk) => send({ type: "chunk", id: msg.id, chunk }),
      });
      try {
        for await (const chunk of generation) out.push(chunk);
        const result = await generation.result;
        out.flush();
        send({ type: "done", id: msg.id, result });
      } finally {
        out.flush(); // text made before a failure still goes out, ahead of the error
        generations.delete(msg.id);
      }
      return;
    }
    case "cancel":
      generations.get(msg.id)?.cancel();
      return;
    case "embed": {
      const m = requireModel();
      const vectors: number[][] = [];
      let promptTokens = 0;
      for (const text of msg.texts) {
        vectors.push(await m.embed(text));
        promptTokens += m.tokenize(text, { addBos: true }).length;
      }
      const reply: EmbedReply = { vectors, promptTokens };
      send({ type: "result", id: msg.id, value: reply });
      return;
    }
    case "tokenize":
      send({
        type: "result",
        id: msg.id,
        value: requireModel().tokenize(msg.text, { addBos: msg.addBos, parseSpecial: msg.parseSpecial }),
      });
      return;
    case "detokenize":
      send({ type: "result", id: msg.id, value: requireModel().detokenize(msg.tokens) });
      return;
    case "stats":
      send({
        type: "result",
        id: msg.id,
        value: {
          engine: requireModel().stats(),
          rssBytes: process.memoryUsage.rss(),
          activeGenerations: generations.size,
        },
      });
      return;
    case "unload":
      for (const g of generations.values()) g.cancel();
      await model?.dispose();
      await engine?.dispose();
      model = undefined;
      send({ type: "result", id: msg.id, value: true });
      setImmediate(() => process.exit(0));
      return;
  }
}

process.on("message", (msg: DaemonToRunner) => {
  handle(msg).catch((error) => {
    const wire = toWire(error);
    if (msg.type === "load") wire.kind ??= "load_failed";
    send({ type: "error", id: msg.id, error: wire });
  });
});
// The daemon is gone: never outlive it.
process.on("disconnect", () => process.exit(0));
process.on("SIGINT", () => undefined);
send({ type: "ready", pid: process.pid });
