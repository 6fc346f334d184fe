import { APIUserAbortError } from "./errors.js";
import type { Usage } from "./types.js";

/**
 * A stream of text deltas that also settles to a final result.
 *
 * Iterate it once with `for await`; the request is sent when iteration starts. `result` resolves after the last
 * delta (awaiting it without iterating consumes the stream); `usage` is a shortcut to `result.usage`.
 * Breaking out of the loop closes the connection; `result` then rejects with `APIUserAbortError`.
 * A server error in the middle of the stream is thrown from the loop as a typed `LlmosError`. Never retried.
 */
export class TextStream<R extends { text: string; usage: Usage | undefined }> implements AsyncIterable<string> {
  readonly #source: () => AsyncGenerator<string, R>;
  #started = false;
  #resolve!: (value: R) => void;
  #reject!: (error: unknown) => void;
  readonly #result: Promise<R>;

  readonly #signal: AbortSignal | undefined;

  /**
   * @param source - starts the request and yields deltas, returning the final result.
   * @param signal - once aborted, no further delta is yielded (even one already received): iteration throws
   * `APIUserAbortError`.
   */
  constructor(source: () => AsyncGenerator<string, R>, signal?: AbortSignal) {
    this.#source = source;
    this.#signal = signal;
    this.#result = new Promise<R>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    // The result is optional to observe; an unobserved rejection must not crash the process.
    this.#result.catch(() => {});
  }

  /** The final result (full text, finish reason, usage). Consumes the stream if nobody iterates it. */
  get result(): Promise<R> {
    if (!this.#started) void this.#drain();
    return this.#result;
  }

  /** Token usage reported at the end of the stream. */
  get usage(): Promise<Usage | undefined> {
    return this.result.then((r) => r.usage);
  }

  /** Collects the whole text (same as `(await stream.result).text`). */
  async text(): Promise<string> {
    return (await this.result).text;
  }

  async #drain(): Promise<void> {
    try {
      for await (const _ of this) {
        // consume
      }
    } catch {
      // already delivered through #reject
    }
  }

  /** Yields text deltas as they arrive. A stream can be iterated only once. */
  async *[Symbol.asyncIterator](): AsyncGenerator<string, void, undefined> {
    if (this.#started) throw new TypeError("a TextStream can be iterated only once");
    this.#started = true;
    const source = this.#source();
    let finished = false;
    try {
      for (;;) {
        const step = await source.next();
        if (this.#signal?.aborted) throw new APIUserAbortError("the request was aborted", { code: "aborted" });
        if (step.done) {
          finished = true;
          this.#resolve(step.value);
          return;
        }
        yield step.value;
      }
    } catch (error) {
      finished = true;
      this.#reject(error);
      throw error;
    } finally {
      if (!finished) {
        await source.return(undefined as never).catch(() => {});
        this.#reject(new APIUserAbortError("stream closed before it finished", { code: "aborted" }));
      }
    }
  }
}
