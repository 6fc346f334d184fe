/**
 * Entry of the GGUF worker thread: checks files for the store (see GgufChecker) so that a hostile header costs
 * this thread's time and bounded heap, never the daemon's event loop.
 */
import { parentPort } from "node:worker_threads";
import type { GgufLimits } from "@llmos/gguf";
import { LlmosError } from "../errors.js";
import { inspectGguf } from "./gguf-check.js";

/** A job sent to the worker. */
export interface GgufJob {
  id: number;
  file: string;
  what: string;
  limits: Partial<GgufLimits>;
  display: boolean;
}

parentPort?.on("message", (job: GgufJob) => {
  inspectGguf(job.file, job.what, job.limits, job.display).then(
    (result) => parentPort!.postMessage({ id: job.id, result }),
    (error: unknown) => {
      const e =
        error instanceof LlmosError
          ? { code: error.code, message: error.message, details: error.details }
          : { code: "internal", message: error instanceof Error ? error.message : String(error) };
      parentPort!.postMessage({ id: job.id, error: e });
    },
  );
});

parentPort?.postMessage({ ready: true });
