/**
 * The typed IPC protocol between the daemon (runtime) and a runner process.
 * Every request carries an id; the runner answers with `result`/`error`, and streams
 * `chunk` messages followed by `done` for generations.
 */
import type { CpuBackendStatus } from "@llmos/protocol";
import type {
  EngineLoadOptions,
  EngineStats,
  GenerateChunk,
  GenerateParams,
  GenerateResult,
  ModelFacts,
} from "../engine/engine.js";

export type EngineName = "llama-ffi" | "llama-node";

export interface RunnerLoadSpec extends EngineLoadOptions {
  engine: EngineName;
  gpu: boolean;
  /** Folder of a CPU backend built on this machine (llama-ffi); null: the shipped one. */
  cpuBackendDir: string | null;
  /** Minimum ms between two chunk messages of one generation (0 = every chunk at once); see ChunkCoalescer. */
  streamIntervalMs: number;
}

export type DaemonToRunner =
  | { type: "load"; id: number; spec: RunnerLoadSpec }
  | { type: "generate"; id: number; params: GenerateParams }
  | { type: "cancel"; id: number }
  | { type: "embed"; id: number; texts: string[] }
  | { type: "tokenize"; id: number; text: string; addBos: boolean; parseSpecial: boolean }
  | { type: "detokenize"; id: number; tokens: number[] }
  | { type: "stats"; id: number }
  | { type: "unload"; id: number };

export interface RunnerStatsReply {
  engine: EngineStats;
  rssBytes: number;
  activeGenerations: number;
}

/** Answer to `embed`: one vector per text, and the tokens the texts made (for usage accounting). */
export interface EmbedReply {
  vectors: number[][];
  promptTokens: number;
}

export interface LoadReply {
  facts: ModelFacts;
  engine: EngineName;
  loadMs: number;
  rssBytes: number;
  /** RSS with the engine library initialised and no model: the runner's own overhead. */
  baselineRssBytes: number;
  /** The CPU backend the llama-ffi engine registered; null for llama-node. */
  cpuBackend: CpuBackendStatus | null;
}

export interface WireError {
  name: string;
  message: string;
  /** ContextOverflowError etc. */
  kind?: "context_overflow" | "busy" | "load_failed" | "out_of_memory";
  details?: Record<string, unknown>;
}

export type RunnerToDaemon =
  | { type: "ready"; pid: number }
  | { type: "result"; id: number; value: unknown }
  | { type: "error"; id: number; error: WireError }
  | { type: "chunk"; id: number; chunk: GenerateChunk }
  | { type: "done"; id: number; result: GenerateResult }
  | { type: "log"; level: "error" | "warn" | "info" | "debug"; message: string };
