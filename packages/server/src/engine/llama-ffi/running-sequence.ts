/** A generation's state in the batch scheduler: the job as queued, then its decoding and text-output state. */
import { TextDecoder } from "node:util";
import type { TokenLogprob } from "../engine.js";
import { StopStringFilter } from "../text/stop-strings.js";
import type { Ptr } from "./bindings.js";
import type { FfiGeneration } from "./ffi-generation.js";

/** One generation as the scheduler runs it. */
export interface SequenceJob {
  readonly generation: FfiGeneration;
  readonly prompt: Int32Array;
  readonly sampler: Ptr;
  readonly maxTokens: number;
  readonly stop: readonly string[];
  readonly stopAtEog: boolean;
  /** Alternatives per token for logprobs; undefined = no logprobs. */
  readonly logprobs: number | undefined;
  /** performance.now() when generate() was called. */
  readonly startedAt: number;
  /** Reuse cached cells for a common prefix of the prompt. */
  readonly cachePrompt: boolean;
}

/** A job placed on a slot, with its decoding state. */
export interface Running extends SequenceJob {
  seqId: number;
  /** Prompt tokens taken from the slot's cached cells. */
  readonly reused: number;
  /** Prompt tokens already put in a batch (starts at `reused`). */
  promptDone: number;
  /** Prompt tokens put in the batch being decoded, from `promptDone` before the step (recorded once decoded). */
  stepPromptFrom: number;
  stepPromptCount: number;
  /** Tokens of this sequence in the KV cache (= next position). */
  nPast: number;
  /** Sampled token waiting to be decoded, or -1. */
  nextToken: number;
  /** Index of this sequence's output row in the current batch, or -1. */
  outIndex: number;
  completionTokens: number;
  promptDoneAt: number;
  readonly decoder: TextDecoder;
  readonly filter: StopStringFilter;
  /** Tokens and logprobs not yet covered by an emitted chunk (their text is held back). */
  pendingTokens: number;
  pendingLogprobs: TokenLogprob[];
}

/** The state of `job` placed on `seqId`, whose cells already hold the prompt's first `reused` tokens. */
export function runningSequence(job: SequenceJob, seqId: number, reused: number): Running {
  return {
    ...job,
    seqId,
    reused,
    promptDone: reused,
    stepPromptFrom: 0,
    stepPromptCount: 0,
    nPast: reused,
    nextToken: -1,
    outIndex: -1,
    completionTokens: 0,
    promptDoneAt: 0,
    decoder: new TextDecoder("utf-8"),
    filter: new StopStringFilter(job.stop),
    pendingTokens: 0,
    pendingLogprobs: [],
  };
}

/** Send `text` with the tokens and logprobs it covers. */
export function emitText(r: Running, text: string): void {
  r.generation.push({
    text,
    tokens: r.pendingTokens,
    ...(r.logprobs !== undefined ? { logprobs: r.pendingLogprobs } : {}),
  });
  r.pendingTokens = 0;
  r.pendingLogprobs = [];
}

/**
 * The sequence ends: send the text held back (unless a stop string ended it) and any tokens not yet reported.
 * True when that held text completes a stop string (the finish reason becomes "stop").
 */
export function flushText(r: Running, byStopString: boolean): boolean {
  let stopped = false;
  if (!byStopString) {
    const tail = r.filter.push(r.decoder.decode());
    stopped = tail.stopped;
    const out = stopped ? tail.text : tail.text + r.filter.flush();
    if (out.length > 0) emitText(r, out);
  }
  if (r.pendingTokens > 0) emitText(r, "");
  return stopped;
}
