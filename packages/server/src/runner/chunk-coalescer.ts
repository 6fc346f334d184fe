/**
 * Streams a generation's chunks to the daemon with at most one message per `intervalMs`.
 *
 * Every IPC message costs a wake-up of the daemon (and of the HTTP client after it). On a machine whose cores all
 * decode, each wake-up preempts a decode thread, so a small model making hundreds of tokens a second loses a fifth
 * of its speed to messaging alone. The first chunk goes out at once (time to first token is unchanged); later
 * chunks that arrive within the interval are merged, and a timer sends what is held when the interval ends, so no
 * text waits longer than `intervalMs`. A model slower than one token per interval is streamed token by token.
 */
import type { GenerateChunk } from "../engine/engine.js";

export interface ChunkCoalescerOptions {
  /** Minimum time between two messages, ms; 0 sends every chunk as it comes. */
  intervalMs: number;
  /** Sends one (possibly merged) chunk. */
  send: (chunk: GenerateChunk) => void;
  /** Clock and timer, replaceable in tests. */
  now?: () => number;
  setTimer?: (fn: () => void, ms: number) => unknown;
  clearTimer?: (timer: unknown) => void;
}

export class ChunkCoalescer {
  private held: GenerateChunk | undefined;
  private lastSentAt = Number.NEGATIVE_INFINITY;
  private timer: unknown;
  private readonly now: () => number;
  private readonly setTimer: NonNullable<ChunkCoalescerOptions["setTimer"]>;
  private readonly clearTimer: NonNullable<ChunkCoalescerOptions["clearTimer"]>;

  constructor(private readonly o: ChunkCoalescerOptions) {
    this.now = o.now ?? (() => performance.now());
    this.setTimer = o.setTimer ?? ((fn, ms) => setTimeout(fn, ms));
    this.clearTimer = o.clearTimer ?? ((t) => clearTimeout(t as NodeJS.Timeout));
  }

  /** Take one chunk from the engine: send it now, or hold it (merged with what is held) until the interval ends. */
  push(chunk: GenerateChunk): void {
    this.held = this.held ? merge(this.held, chunk) : chunk;
    const wait = this.lastSentAt + this.o.intervalMs - this.now();
    if (wait <= 0) this.flush();
    else if (this.timer === undefined) this.timer = this.setTimer(() => this.flush(), wait);
  }

  /** Send whatever is held (call before reporting the end of the generation). */
  flush(): void {
    if (this.timer !== undefined) {
      this.clearTimer(this.timer);
      this.timer = undefined;
    }
    if (!this.held) return;
    const chunk = this.held;
    this.held = undefined;
    this.lastSentAt = this.now();
    this.o.send(chunk);
  }
}

function merge(a: GenerateChunk, b: GenerateChunk): GenerateChunk {
  const logprobs = a.logprobs || b.logprobs ? [...(a.logprobs ?? []), ...(b.logprobs ?? [])] : undefined;
  return { text: a.text + b.text, tokens: a.tokens + b.tokens, ...(logprobs ? { logprobs } : {}) };
}
