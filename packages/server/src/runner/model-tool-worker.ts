/**
 * Entry point of a model-tool worker: one process runs one job on model files (quantize, imatrix, eval) with the
 * llama-ffi engine's libraries, reports progress over IPC and exits. The daemon cancels a job by killing the
 * process; the worker also exits when the daemon goes away.
 */
import { statSync } from "node:fs";
import { imatrixWeights, readImatrix, writeImatrix } from "@llmos/gguf";
import { LlmosError } from "../errors.js";
import { evaluateText } from "../engine/llama-ffi/evaluate-text.js";
import { computeImatrix } from "../engine/llama-ffi/imatrix-collector.js";
import { getNativeRuntime, type NativeRuntime } from "../engine/llama-ffi/native-runtime.js";
import { QuantizeError, quantizeFile } from "../engine/llama-ffi/quantize.js";
import type { DaemonToWorker, ToolFailureKind, ToolJob, WorkerToDaemon } from "./tool-ipc-protocol.js";

function send(message: WorkerToDaemon): void {
  if (process.connected) process.send!(message);
}

let proceed: (() => void) | undefined;

async function runQuantize(runtime: NativeRuntime, job: Extract<ToolJob, { kind: "quantize" }>): Promise<void> {
  const imatrix = job.imatrixPath ? await loadWeights(job.imatrixPath) : undefined;
  const base = {
    input: job.input,
    output: job.output,
    fileType: job.fileType,
    threads: job.threads,
    pure: job.pure,
    allowRequantize: job.allowRequantize,
    ...(imatrix ? { imatrix } : {}),
  };
  // The dry run computes the output's size (and refuses what the real run would) before a byte is written.
  const plan = await quantizeFile(runtime, { ...base, dryRun: true });
  const go = new Promise<void>((resolve) => (proceed = resolve));
  send({ type: "estimate", bytes: plan.quantBytes, tensors: plan.tensors });
  await go;
  let lastSent = 0;
  const outcome = await quantizeFile(runtime, base, (index, total) => {
    const now = performance.now();
    if (index !== total && now - lastSent < 100) return;
    lastSent = now;
    send({ type: "progress", done: index - 1, total, bytes: fileSize(job.output) });
  });
  send({ type: "progress", done: outcome.tensors, total: outcome.tensors, bytes: fileSize(job.output) });
  send({ type: "result", value: { tensors: outcome.tensors, fallbackTensors: outcome.fallbackTensors } });
}

async function loadWeights(path: string): Promise<Map<string, Float32Array>> {
  const imatrix = await readImatrix(path);
  return new Map([...imatrix.entries].map(([name, entry]) => [name, imatrixWeights(entry)]));
}

function fileSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

async function run(job: ToolJob): Promise<void> {
  const runtime = getNativeRuntime({ logger: null });
  switch (job.kind) {
    case "quantize":
      return runQuantize(runtime, job);
    case "eval": {
      const result = await evaluateText(runtime.bindings, job, (done, total, partial) =>
        send({ type: "progress", done, total, detail: { perplexity: partial.perplexity } }),
      );
      send({ type: "result", value: result });
      return;
    }
    case "imatrix": {
      const imatrix = await computeImatrix(runtime.bindings, runtime.files, job, (done, total) =>
        send({ type: "progress", done, total }),
      );
      await writeImatrix(job.output, imatrix);
      send({
        type: "result",
        value: { entries: imatrix.entries.size, chunks: imatrix.chunkCount, chunkSize: imatrix.chunkSize },
      });
      return;
    }
  }
}

function failureOf(error: unknown): { kind: ToolFailureKind; message: string; details?: Record<string, unknown> } {
  if (error instanceof QuantizeError) return { kind: error.kind, message: error.message };
  if (error instanceof LlmosError) {
    const kind =
      error.code === "invalid_request"
        ? "invalid_request"
        : error.code === "model_load_failed"
          ? "load_failed"
          : "failed";
    return { kind, message: error.message, ...(error.details ? { details: error.details } : {}) };
  }
  return { kind: "failed", message: error instanceof Error ? error.message : String(error) };
}

/** Exits once the IPC channel has taken every message sent so far. */
function exitAfterFlush(code: number): void {
  if (!process.connected) process.exit(code);
  process.send!({ type: "log", level: "debug", message: `worker exits (${code})` } satisfies WorkerToDaemon, () =>
    process.exit(code),
  );
}

process.on("message", (msg: DaemonToWorker) => {
  if (msg.type === "proceed") return proceed?.();
  run(msg.job).then(
    () => exitAfterFlush(0),
    (error: unknown) => {
      send({ type: "error", ...failureOf(error) });
      exitAfterFlush(1);
    },
  );
});
// The daemon is gone: never outlive it.
process.on("disconnect", () => process.exit(0));
process.on("SIGINT", () => undefined);
send({ type: "ready", pid: process.pid });
