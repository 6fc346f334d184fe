/**
 * A request's generations as they run: each choice streams from its runner slot, is cancelled when the request's
 * signal fires (the client went away), gives its slot back when it ends, and is counted in the metrics; the
 * request's token usage is recorded once, when every choice has ended. Both API styles get their generations from
 * here, so none of them can forget to record usage or to release a slot.
 */
import type { GenerateChunk, GenerateParams, GenerateResult } from "../engine/engine.js";
import { LlmosError } from "../errors.js";
import type { SlotLease } from "../scheduler/model-entry.js";
import type { Metrics } from "../telemetry/metrics.js";
import type { TrackedRequest } from "../telemetry/request-tracker.js";

/** Tokens one request used, for per-key accounting. */
export interface UsageRecord {
  /** The API key that made the request, or null without one. */
  keyId: string | null;
  model: string;
  promptTokens: number;
  completionTokens: number;
}

/** Where usage goes (the daemon records it per key, model and day). */
export type UsageSink = (usage: UsageRecord) => void;

/** What a finished generation measured. */
export interface GenerationOutcome extends GenerateResult {
  model: string;
  /** Wall time from the request's arrival at the service to the end. */
  totalMs: number;
  loadMs: number;
  queuedMs: number;
  /** Milliseconds to the first streamed chunk (TTFT, includes queue and load). */
  firstChunkMs: number | null;
}

/** A generation in flight: iterate its text chunks, await its outcome, or cancel it. */
export interface TextGeneration extends AsyncIterable<GenerateChunk> {
  readonly model: string;
  readonly prompt: string | number[];
  readonly result: Promise<GenerationOutcome>;
  cancel(): void;
}

/** The choices of one request (OpenAI's `n`; one for Ollama), sharing a prompt. */
export interface GenerationRun {
  readonly model: string;
  readonly prompt: string | number[];
  readonly choices: readonly TextGeneration[];
  /** Every choice's outcome, once all have ended; by then the request's usage has been recorded. */
  readonly result: Promise<GenerationOutcome[]>;
  cancel(): void;
}

export interface RunOptions {
  /** Performance time the request arrived at. */
  started: number;
  /** Keep-alive the model gets from this request on. */
  keepAliveMs?: number | undefined;
  metrics: Metrics;
  /** The request in the live request list; its signal fires when the client goes away or an admin cancels it. */
  tracked: TrackedRequest;
}

/** Starts a generation on the lease's runner; the slot is given back when it ends (however it ends). */
export function runGeneration(lease: SlotLease, params: GenerateParams, o: RunOptions): TextGeneration {
  let remote;
  try {
    remote = lease.handle.generate(params);
  } catch (error) {
    lease.release();
    o.tracked.finish(failure(error));
    throw error;
  }
  const generation = remote;
  const { metrics, tracked } = o;
  const signal = tracked.signal;
  const onAbort = () => generation.cancel();
  signal.addEventListener("abort", onAbort, { once: true });
  if (signal.aborted) generation.cancel();
  let firstChunkMs: number | null = null;
  const model = lease.model;
  const result = generation.result
    .then((r): GenerationOutcome => {
      metrics.tokens.inc({ model, kind: "prompt" }, r.promptTokens);
      metrics.tokens.inc({ model, kind: "completion" }, r.completionTokens);
      metrics.promptCacheTokens.inc({ model, result: "hit" }, r.cachedPromptTokens);
      metrics.promptCacheTokens.inc({ model, result: "miss" }, r.promptTokens - r.cachedPromptTokens);
      metrics.generations.inc({ model, reason: r.finishReason });
      if (r.completionTokens > 1)
        metrics.timePerOutputToken.observe({ model }, r.generateMs / 1000 / (r.completionTokens - 1));
      const cached = r.cachedPromptTokens;
      metrics.promptCacheLookups.inc({ model, result: cached > 0 ? "hit" : "miss" });
      if (cached > 0) metrics.promptCachedTokens.inc({ model }, cached);
      tracked.finish({
        outcome: r.finishReason === "cancelled" ? "cancelled" : "ok",
        promptTokens: r.promptTokens,
        completionTokens: r.completionTokens,
        finishReason: r.finishReason,
        loadMs: lease.loadMs,
        promptMs: r.promptMs,
        generateMs: r.generateMs,
      });
      return {
        ...r,
        model,
        totalMs: performance.now() - o.started,
        loadMs: lease.loadMs,
        queuedMs: lease.queuedMs,
        firstChunkMs,
      };
    })
    .catch((error: unknown) => {
      tracked.finish(failure(error));
      throw error;
    })
    .finally(() => {
      signal.removeEventListener("abort", onAbort);
      lease.release(o.keepAliveMs !== undefined ? { keepAliveMs: o.keepAliveMs } : undefined);
    });
  result.catch(() => undefined);
  return {
    model,
    prompt: params.prompt,
    result,
    cancel: () => generation.cancel(),
    async *[Symbol.asyncIterator]() {
      try {
        for await (const chunk of generation) {
          if (firstChunkMs === null) {
            firstChunkMs = performance.now() - o.started;
            metrics.timeToFirstToken.observe({ model }, firstChunkMs / 1000);
          }
          tracked.tokens(chunk.tokens, chunk.text);
          yield chunk;
        }
      } finally {
        tracked.endOfStream();
      }
      // Cancelled by the server with a reason for the client (a shutdown's drain ran out of time), not by the client
      // itself: end with that error, so the client gets an error event instead of a text that looks complete.
      const reason: unknown = signal.aborted ? signal.reason : undefined;
      if (reason instanceof LlmosError) throw reason;
    },
  };
}

/**
 * Joins a request's choices. Usage is recorded once all have ended: the prompt once (it is shared, as OpenAI counts
 * it), the completions of every choice. A choice that fails (its runner crashed) records nothing.
 */
export function joinChoices(
  choices: readonly TextGeneration[],
  usage: { sink: UsageSink | undefined; keyId: string | null },
): GenerationRun {
  const first = choices[0];
  if (!first) throw new Error("a generation run needs at least one choice");
  const result = Promise.all(choices.map((c) => c.result)).then((outcomes) => {
    usage.sink?.({
      keyId: usage.keyId,
      model: first.model,
      promptTokens: outcomes[0]?.promptTokens ?? 0,
      completionTokens: outcomes.reduce((n, o) => n + o.completionTokens, 0),
    });
    return outcomes;
  });
  result.catch(() => undefined);
  return {
    model: first.model,
    prompt: first.prompt,
    choices,
    result,
    cancel: () => {
      for (const c of choices) c.cancel();
    },
  };
}

/** A tracked request's end when it failed (aborted signals count as cancelled). */
export function failure(error: unknown) {
  const code = error instanceof LlmosError ? error.code : error instanceof Error ? error.name : "error";
  const cancelled = code === "client_closed" || code === "AbortError";
  return {
    outcome: cancelled ? ("cancelled" as const) : ("error" as const),
    promptTokens: 0,
    completionTokens: 0,
    finishReason: null,
    error: code,
  };
}
