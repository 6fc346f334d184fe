/**
 * A model-tool worker process seen from the daemon: forks `runner/model-tool-worker`, starts one job, streams its
 * progress, and resolves with its result. `kill()` ends the process at once (SIGKILL): llama.cpp's quantizer cannot
 * be interrupted, and a killed worker leaves nothing but the files the caller owns and deletes.
 */
import { fork, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { LlmosError } from "../errors.js";
import type { DaemonToWorker, ToolFailureKind, ToolJob, WorkerToDaemon } from "../runner/tool-ipc-protocol.js";
import type { Logger } from "../telemetry/logger.js";

const workerEntry = (() => {
  const ext = fileURLToPath(import.meta.url).endsWith(".ts") ? ".ts" : ".js";
  return fileURLToPath(new URL(`../runner/model-tool-worker${ext}`, import.meta.url));
})();

/** Callbacks of a running job. */
export interface ToolWorkerHooks {
  /** Progress of the job (tensors for quantize, chunks for imatrix and eval). */
  onProgress?: (p: Extract<WorkerToDaemon, { type: "progress" }>) => void;
  /**
   * Quantize only: the output's size from llama.cpp's dry run, before anything is written. Throw to refuse (the
   * worker is killed and the error is the job's).
   */
  onEstimate?: (bytes: number, tensors: number) => Promise<void> | void;
}

/** The error code of each failure kind a worker reports. */
const CODES: Record<ToolFailureKind, LlmosError["code"]> = {
  imatrix_required: "imatrix_required",
  imatrix_mismatch: "imatrix_mismatch",
  requantize_not_allowed: "requantize_not_allowed",
  invalid_request: "invalid_request",
  load_failed: "model_load_failed",
  failed: "internal",
};

/** Starts worker processes; one per job. */
export class ToolWorkers {
  constructor(private readonly logger: Logger) {}

  /** Runs `job` in a new worker. Aborting `signal` kills the worker and rejects with `client_closed`. */
  run<T>(job: ToolJob, hooks: ToolWorkerHooks = {}, signal?: AbortSignal): Promise<T> {
    signal?.throwIfAborted();
    const child: ChildProcess = fork(workerEntry, [], {
      stdio: ["ignore", "inherit", "inherit", "ipc"],
      serialization: "advanced",
    });
    const log = this.logger.child({ worker: job.kind, pid: child.pid });
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      const exited = new Promise<void>((done) => child.once("exit", () => done()));
      // Settles once the process is gone, so the caller may delete the files it was writing.
      const finish = (error: unknown, value?: T) => {
        if (settled) return;
        settled = true;
        signal?.removeEventListener("abort", onAbort);
        if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
        void exited.then(() => (error ? reject(error) : resolve(value as T)));
      };
      const onAbort = () => finish(new LlmosError("client_closed", `${job.kind} cancelled`));
      signal?.addEventListener("abort", onAbort, { once: true });
      const post = (m: DaemonToWorker) => {
        if (child.connected) child.send(m);
      };
      child.on("message", (m: WorkerToDaemon) => {
        switch (m.type) {
          case "ready":
            return post({ type: "start", job });
          case "estimate":
            void (async () => {
              try {
                await hooks.onEstimate?.(m.bytes, m.tensors);
                post({ type: "proceed" });
              } catch (error) {
                finish(error);
              }
            })();
            return;
          case "progress":
            return hooks.onProgress?.(m);
          case "result":
            return finish(undefined, m.value as T);
          case "error":
            return finish(new LlmosError(CODES[m.kind], m.message, m.details));
          case "log":
            return log[m.level === "error" ? "error" : m.level === "warn" ? "warn" : "debug"](m.message);
        }
      });
      child.on("error", (error) => finish(new LlmosError("internal", `${job.kind} worker: ${error.message}`)));
      child.on("exit", (code, sig) =>
        finish(new LlmosError("internal", `the ${job.kind} worker stopped unexpectedly (${sig ?? `exit ${code}`})`)),
      );
    });
  }
}
