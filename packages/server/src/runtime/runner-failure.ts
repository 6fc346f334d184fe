import type { ErrorCode } from "@llmos/protocol";
import { LlmosError } from "../errors.js";
import type { RunnerFailureKind, WireFailure } from "../runner/ipc-protocol.js";

/**
 * A runner request that failed, with the kind of failure decided where it was raised (see `RunnerFailureKind`).
 * It is an `LlmosError` whose code follows from the kind, so the HTTP layer maps it like any other error; the
 * scheduler acts on the kind (an `oom` load is retried once after evicting idle models).
 */
export class RunnerFailure extends LlmosError {
  constructor(
    readonly kind: RunnerFailureKind,
    code: ErrorCode,
    message: string,
    details?: Record<string, unknown>,
  ) {
    super(code, message, details);
  }
}

/** True when `error` is a runner failure (of `kind`, when given). */
export function isRunnerFailure(error: unknown, kind?: RunnerFailureKind): error is RunnerFailure {
  return error instanceof RunnerFailure && (kind === undefined || error.kind === kind);
}

/** The daemon's error for a failure a runner reported; `model` names the runner's model in messages. */
export function failureFromWire(e: WireFailure, model: string): RunnerFailure {
  switch (e.kind) {
    case "context_overflow":
      return new RunnerFailure(e.kind, "context_length_exceeded", contextOverflowMessage(e), e.details);
    case "oom":
      return new RunnerFailure(e.kind, "insufficient_memory", `runner ran out of memory: ${e.message}`);
    case "load_failed":
      return new RunnerFailure(e.kind, "model_load_failed", `model ${model} failed to load: ${e.message}`);
    case "busy":
      return new RunnerFailure(e.kind, "unavailable", e.message);
    case "rejected":
      return new RunnerFailure(e.kind, e.code ?? "internal", e.message, e.details);
    case "internal":
      return new RunnerFailure(e.kind, "internal", `runner error: ${e.message}`);
  }
}

/** The error of requests in flight when the kernel stopped a runner for going past its memory limit. */
export function oomKillFailure(model: string, limitBytes: number | null): RunnerFailure {
  const limit = limitBytes === null ? "" : ` of ${Math.round(limitBytes / 1024 / 1024)} MiB`;
  return new RunnerFailure(
    "oom_killed",
    "runner_oom",
    `the runner for ${model} went past its memory limit${limit} and was stopped; retry the request (the next load of ${model} gets more memory)`,
    { model, limitBytes },
  );
}

/** The error of requests in flight when a runner went away. */
export function crashFailure(model: string): RunnerFailure {
  return new RunnerFailure(
    "crashed",
    "runner_crashed",
    `the runner for ${model} stopped unexpectedly; retry the request`,
  );
}

/** The error of requests in flight when the watchdog killed a runner that had work and made no progress. */
export function stallFailure(model: string, idleMs: number): RunnerFailure {
  return new RunnerFailure(
    "stalled",
    "runner_stalled",
    `the runner for ${model} made no progress for ${Math.round(idleMs / 1000)} s and was stopped; the model is loaded again on the next request`,
    { idleMs },
  );
}

/**
 * OpenAI's wording, which clients match on ("maximum context length is N tokens") to recognise an overflow; the
 * stable code `context_length_exceeded` says the same to clients that read codes. N is the context of one
 * sequence (what a request can use), M the input's tokens.
 */
function contextOverflowMessage(e: WireFailure): string {
  const needed = e.details?.needed;
  const available = e.details?.available;
  if (typeof needed !== "number" || typeof available !== "number")
    return `the input does not fit this model's context: ${e.message}`;
  return `This model's maximum context length is ${available} tokens. However, your messages resulted in ${needed} tokens. Please reduce the length of the messages.`;
}
