/**
 * The IPC protocol between the daemon (runtime/tool-worker.ts) and a model-tool worker (runner/model-tool-worker.ts):
 * one process per job (quantize, imatrix, eval), so a crash or a cancel (SIGKILL) never touches the daemon.
 *
 *   daemon -> worker   start {job}
 *   worker -> daemon   estimate {bytes}           quantize only: llama.cpp's dry run, before anything is written
 *   daemon -> worker   proceed                    the daemon checked the disk (else it kills the worker)
 *   worker -> daemon   progress* then result | error
 */
import type { EvaluateTextResult } from "../engine/llama-ffi/evaluate-text.js";
import type { KvCacheTypeName } from "../engine/llama-ffi/chunk-evaluator.js";

/** K and V cache element types. */
export interface KvCacheTypes {
  k: KvCacheTypeName;
  v: KvCacheTypeName;
}

/** One job a worker runs. */
export type ToolJob =
  | {
      kind: "quantize";
      input: string;
      output: string;
      fileType: number;
      threads: number;
      pure: boolean;
      allowRequantize: boolean;
      /** An imatrix GGUF file (validated by the daemon against the model). */
      imatrixPath?: string;
    }
  | {
      kind: "imatrix";
      modelPath: string;
      text: string;
      datasetName: string;
      output: string;
      contextSize: number;
      threads: number;
      maxChunks?: number;
    }
  | {
      kind: "eval";
      modelPath: string;
      basePath?: string;
      text: string;
      contextSize: number;
      threads: number;
      kvCacheType?: KvCacheTypes;
      baseKvCacheType?: KvCacheTypes;
      maxChunks?: number;
    };

/** What a quantize job reports when done. */
export interface QuantizeResult {
  tensors: number;
  fallbackTensors: number;
}

/** What an imatrix job reports when done (the file is at the job's `output`). */
export interface ImatrixResult {
  entries: number;
  chunks: number;
  chunkSize: number;
}

/** What an eval job reports when done. */
export type EvalResult = EvaluateTextResult;

/** Why a job failed, for the daemon's error codes. */
export type ToolFailureKind =
  "imatrix_required" | "imatrix_mismatch" | "requantize_not_allowed" | "invalid_request" | "load_failed" | "failed";

export type DaemonToWorker = { type: "start"; job: ToolJob } | { type: "proceed" };

export type WorkerToDaemon =
  | { type: "ready"; pid: number }
  | { type: "estimate"; bytes: number; tensors: number }
  | { type: "progress"; done: number; total: number; bytes?: number; detail?: Record<string, number> }
  | { type: "result"; value: QuantizeResult | ImatrixResult | EvalResult }
  | { type: "error"; kind: ToolFailureKind; message: string; details?: Record<string, unknown> }
  | { type: "log"; level: "error" | "warn" | "info" | "debug"; message: string };
