import { LlmosError } from "../errors.js";
import { JobWorker, siblingEntry, type JobFailure } from "../lib/job-worker.js";
import type { JinjaJob } from "./jinja-worker.js";

/** Limits of chat-template rendering. */
export interface JinjaLimits {
  /** Most interpreter steps (nodes evaluated) per render. Default 1,000,000. */
  maxSteps: number;
  /** Longest string a template may build, and its output, in characters. Default 16 Mi. */
  maxOutputChars: number;
  /** Wall time per render (then the worker is replaced). Default 5 s. */
  timeoutMs: number;
  /** Heap of the worker, MiB. Default 128. */
  heapMb: number;
}

export const DEFAULT_JINJA_LIMITS: Readonly<JinjaLimits> = Object.freeze({
  maxSteps: 1_000_000,
  maxOutputChars: 16 * 1024 * 1024,
  timeoutMs: 5_000,
  heapMb: 128,
});

/**
 * Renders Jinja chat templates, which come from GGUF files and so are untrusted code, in a worker thread: a step
 * limit (loops, recursion), an output limit and a bounded heap inside, a time limit outside. A template that hits
 * one fails its request with a 400; the daemon's event loop never runs template code.
 */
export class JinjaSandbox {
  readonly limits: JinjaLimits;
  readonly #worker: JobWorker<Omit<JinjaJob, "id">, string>;

  constructor(limits: Partial<JinjaLimits> = {}) {
    this.limits = { ...DEFAULT_JINJA_LIMITS, ...limits };
    this.#worker = new JobWorker({
      entry: siblingEntry("jinja-worker", import.meta.url),
      heapMb: this.limits.heapMb,
      timeoutMs: this.limits.timeoutMs,
    });
  }

  /**
   * Renders `template` with `context` (plain JSON-like values).
   * @throws LlmosError `invalid_request` when the template fails or exceeds a limit.
   */
  async render(template: string, context: Record<string, unknown>): Promise<string> {
    try {
      return await this.#worker.run({
        template,
        context,
        maxSteps: this.limits.maxSteps,
        maxOutputChars: this.limits.maxOutputChars,
      });
    } catch (failure) {
      const f = failure as JobFailure;
      const why =
        f.kind === "error"
          ? f.error.message
          : f.kind === "timeout"
            ? `the chat template was stopped: it ran longer than ${f.ms / 1000} s`
            : f.kind === "out_of_memory"
              ? `the chat template was stopped: it needs more than ${f.heapMb} MiB`
              : f.kind === "closed"
                ? "llmos is shutting down"
                : `the chat template could not run: ${f.message}`;
      throw new LlmosError(f.kind === "closed" ? "unavailable" : "invalid_request", why);
    }
  }

  /** Stops the worker. Idempotent. */
  dispose(): Promise<void> {
    return this.#worker.dispose();
  }
}
