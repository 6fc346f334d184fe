import type { GgufLimits } from "@llmos/gguf";
import { isErrorCode } from "@llmos/protocol";
import { LlmosError } from "../errors.js";
import { JobWorker, siblingEntry, type JobFailure } from "../lib/job-worker.js";
import type { GgufInspection } from "./gguf-check.js";
import type { GgufJob } from "./gguf-worker.js";

/**
 * GGUF limits of the store, tighter than the reader's defaults: a header above 64 MiB is refused before it is
 * parsed (real models stay under 16 MiB), and no array above 4096 elements (or beyond 256k elements in all) is
 * built as JS values: vocabularies and merges are checked from the header bytes.
 */
export const STORE_GGUF_LIMITS: Readonly<Partial<GgufLimits>> = Object.freeze({
  maxHeaderBytes: 64 * 1024 * 1024,
  maxMaterializedArray: 4096,
  maxMaterializedTotal: 256 * 1024,
});

/** Options of {@link GgufChecker}. */
export interface GgufCheckerOptions {
  limits?: Partial<GgufLimits>;
  /** Heap of the worker thread, MiB. Default 256. */
  heapMb?: number;
  /** A check taking longer is abandoned (the worker is replaced). Default 120 s. */
  timeoutMs?: number;
}

/**
 * Checks GGUF files in a worker thread, one at a time: reading a header (up to `maxHeaderBytes`), checking a
 * vocabulary for duplicates and summarising take that thread's CPU and bounded heap, not the daemon's event loop.
 * A check that runs out of heap or time fails with `invalid_model_file`.
 */
export class GgufChecker {
  readonly limits: Partial<GgufLimits>;
  readonly #worker: JobWorker<Omit<GgufJob, "id">, GgufInspection>;

  constructor(options: GgufCheckerOptions = {}) {
    this.limits = { ...STORE_GGUF_LIMITS, ...options.limits };
    this.#worker = new JobWorker({
      entry: siblingEntry("gguf-worker", import.meta.url),
      heapMb: options.heapMb ?? 256,
      timeoutMs: options.timeoutMs ?? 120_000,
    });
  }

  /**
   * Validates `file` as a GGUF model or adapter and summarises it (with display metadata when asked).
   * @throws LlmosError `invalid_model_file` naming `what`, `not_found`, `unavailable` once disposed.
   */
  async check(file: string, what: string, opts: { display?: boolean } = {}): Promise<GgufInspection> {
    try {
      return await this.#worker.run({ file, what, limits: this.limits, display: opts.display === true });
    } catch (failure) {
      throw toError(failure as JobFailure, what);
    }
  }

  /** Stops the worker; pending checks fail with `unavailable`. Idempotent. */
  dispose(): Promise<void> {
    return this.#worker.dispose();
  }
}

function toError(f: JobFailure, what: string): LlmosError {
  switch (f.kind) {
    case "error":
      return new LlmosError(isErrorCode(f.error.code) ? f.error.code : "internal", f.error.message, f.error.details);
    case "timeout":
      return new LlmosError("invalid_model_file", `${what}: checking the GGUF header took over ${f.ms / 1000} s`);
    case "out_of_memory":
      return new LlmosError(
        "invalid_model_file",
        `${what}: the GGUF header needs more memory than a check may use (${f.heapMb} MiB)`,
      );
    case "crashed":
      return new LlmosError("internal", `${what}: the GGUF check failed: ${f.message}`);
    case "closed":
      return new LlmosError("unavailable", "the model store is closed");
  }
}
