/** The Generation handle the engine returns: a single-consumer chunk stream plus the result promise. */
import type { GenerateChunk, GenerateResult, Generation } from "../engine.js";

export class FfiGeneration implements Generation {
  readonly result: Promise<GenerateResult>;
  private resolveResult!: (r: GenerateResult) => void;
  private rejectResult!: (e: unknown) => void;
  private readonly buffer: GenerateChunk[] = [];
  private waiter: { resolve: (r: IteratorResult<GenerateChunk>) => void; reject: (e: unknown) => void } | undefined;
  private ended = false;
  private error: unknown;
  private cancelRequested = false;

  /** @param onCancel told once when cancellation is first requested, so the scheduler can act promptly. */
  constructor(private readonly onCancel: () => void) {
    this.result = new Promise<GenerateResult>((resolve, reject) => {
      this.resolveResult = resolve;
      this.rejectResult = reject;
    });
    // The error is also delivered through the iterator; callers that only iterate must not see an unhandled rejection.
    this.result.catch(() => undefined);
  }

  /** True once `cancel()` was called (or the consumer stopped iterating). */
  get cancelled(): boolean {
    return this.cancelRequested;
  }

  cancel(): void {
    if (this.cancelRequested || this.ended) return;
    this.cancelRequested = true;
    this.onCancel();
  }

  /** Scheduler side: deliver a chunk. */
  push(chunk: GenerateChunk): void {
    if (this.ended) return;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      w.resolve({ value: chunk, done: false });
    } else this.buffer.push(chunk);
  }

  /** Scheduler side: end normally. */
  finish(result: GenerateResult): void {
    if (this.ended) return;
    this.ended = true;
    this.resolveResult(result);
    this.settleWaiter();
  }

  /** Scheduler side: end with an error. */
  fail(error: unknown): void {
    if (this.ended) return;
    this.ended = true;
    this.error = error;
    this.rejectResult(error);
    this.settleWaiter();
  }

  private settleWaiter(): void {
    if (!this.waiter) return;
    const w = this.waiter;
    this.waiter = undefined;
    if (this.error !== undefined) w.reject(this.error);
    else w.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterator<GenerateChunk> {
    return {
      next: () => {
        const chunk = this.buffer.shift();
        if (chunk) return Promise.resolve({ value: chunk, done: false });
        if (this.ended) {
          return this.error !== undefined
            ? Promise.reject(this.error)
            : Promise.resolve({ value: undefined, done: true });
        }
        return new Promise((resolve, reject) => (this.waiter = { resolve, reject }));
      },
      // Leaving a `for await` early cancels the generation.
      return: () => {
        this.cancel();
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}
