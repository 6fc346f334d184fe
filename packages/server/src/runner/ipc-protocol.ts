/**
 * The typed IPC protocol between the daemon (runtime) and a runner process.
 *
 * Requests with one answer are listed in {@link RunnerRequests}: each names its parameters and its reply, so the
 * daemon's `request("tokenize", ...)` returns `number[]` and the runner's handler for `tokenize` must return one.
 * The runner answers with `result` (carrying the request's type, checked on arrival) or `error` (a
 * {@link WireFailure} whose kind was decided where the failure was raised). A generation streams `chunk` messages
 * and ends with `done` or `error`; `cancel` stops it.
 */
import type { CpuBackendStatus, ErrorCode } from "@llmos/protocol";
import type {
  CpuAllotment,
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

/** What a runner's engine is made from, before any model: what a prestarted runner is prepared with. */
export type RunnerEngineSpec = Pick<RunnerLoadSpec, "engine" | "gpu" | "cpuBackendDir" | "threads">;

/** The engine part of a load spec (a prestarted runner serves a load whose engine part is the same). */
export function engineSpecOf(spec: RunnerEngineSpec): RunnerEngineSpec {
  return { engine: spec.engine, gpu: spec.gpu, cpuBackendDir: spec.cpuBackendDir, threads: spec.threads };
}

/** Answer to `prepare`: the engine is up, no model yet. */
export interface PrepareReply {
  /** RSS with the engine library initialised and no model: the runner's own overhead. */
  baselineRssBytes: number;
  cpuBackend: CpuBackendStatus | null;
}

export interface RunnerStatsReply {
  engine: EngineStats;
  rssBytes: number;
  /** The most RSS the runner has had (bytes). */
  peakRssBytes?: number;
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

/**
 * Which log lines a runner sends to the daemon: `all`, or `warnings` (warnings and errors only). The daemon writes
 * a runner's other lines at debug level, so below debug they would be dropped on arrival; llama.cpp writes about
 * 400 of them for each load, and sending them cost the load 5-10 ms.
 */
export type RunnerLogLines = "all" | "warnings";

/** Every request with a single answer: its parameters and its reply. */
export interface RunnerRequests {
  /** Starts the engine without a model (a prestarted runner); a later `load` with the same engine part uses it. */
  prepare: { params: { spec: RunnerEngineSpec; logLines: RunnerLogLines }; reply: PrepareReply };
  load: { params: { spec: RunnerLoadSpec; logLines: RunnerLogLines }; reply: LoadReply };
  /** `truncate`: inputs longer than a sequence's context are cut (else refused with context_overflow). */
  embed: { params: { texts: string[]; truncate?: boolean }; reply: EmbedReply };
  tokenize: { params: { text: string; addBos: boolean; parseSpecial: boolean }; reply: number[] };
  detokenize: { params: { tokens: number[] }; reply: string };
  stats: { params: Record<string, never>; reply: RunnerStatsReply };
  /** Applies a CPU allotment between two decode steps; answers once applied, with the runner's time to do so. */
  setCpu: { params: CpuAllotment; reply: { threads: number; appliedMs: number } };
  /** Frees the model and exits the runner. */
  unload: { params: Record<string, never>; reply: true };
}

export type RequestType = keyof RunnerRequests;
export type ParamsOf<K extends RequestType> = RunnerRequests[K]["params"];
export type ReplyOf<K extends RequestType> = RunnerRequests[K]["reply"];

/** A request message of type `K` (a union over all request types when `K` is not narrowed). */
export type RequestMessage<K extends RequestType = RequestType> = {
  [T in K]: { type: T; id: number; params: ParamsOf<T> };
}[K];

/** The answer to a request of type `K`: it names the request's type so the daemon can check it. */
export type ResultMessage<K extends RequestType = RequestType> = {
  [T in K]: { type: "result"; id: number; request: T; value: ReplyOf<T> };
}[K];

/** `cancel` stops a generation or an embedding (the runner stops at its next step). */
export type DaemonToRunner =
  RequestMessage | { type: "generate"; id: number; params: GenerateParams } | { type: "cancel"; id: number };

/**
 * Why a runner request failed, decided where the failure was raised (the engine's error class, or the runner's
 * step that failed), never by reading an error message:
 * - `oom`: the engine ran out of memory (loading or decoding);
 * - `load_failed`: the model, an adapter or its context could not be loaded;
 * - `context_overflow`: the input is longer than a sequence's context;
 * - `busy`: every sequence was taken (the scheduler should never let that happen);
 * - `rejected`: the engine refused the input and said why with an llmos error `code`;
 * - `internal`: any other error in the runner;
 * - `crashed`: the runner process went away (raised by the daemon, never sent by a runner);
 * - `stalled`: the runner had work and made no progress, and the daemon's watchdog killed it (daemon only);
 * - `oom_killed`: the kernel stopped the runner for going past its cgroup's memory limit (daemon only).
 */
export type RunnerFailureKind =
  "oom" | "load_failed" | "context_overflow" | "busy" | "rejected" | "internal" | "crashed" | "stalled" | "oom_killed";

/** A failure as a runner sends it. */
export interface WireFailure {
  kind: Exclude<RunnerFailureKind, "crashed" | "stalled" | "oom_killed">;
  name: string;
  message: string;
  /** The llmos error code of a `rejected` input. */
  code?: ErrorCode;
  details?: Record<string, unknown>;
}

export type RunnerToDaemon =
  | { type: "ready"; pid: number }
  | ResultMessage
  | { type: "error"; id: number; error: WireFailure }
  | { type: "chunk"; id: number; chunk: GenerateChunk }
  | { type: "done"; id: number; result: GenerateResult }
  /** The engine made progress (a load, decode or embedding step); at most a few a second, for the daemon's watchdog. */
  | { type: "progress" }
  | { type: "log"; level: "error" | "warn" | "info" | "debug"; message: string };
