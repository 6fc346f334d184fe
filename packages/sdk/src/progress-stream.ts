import { APIUserAbortError, LlmosError } from "./errors.js";
import type { ModelInfo } from "@llmos/protocol";
import type { ProgressEvent } from "./types.js";

/**
 * Progress of a long model operation (`pull`, `create`). Iterate it for {@link ProgressEvent}s, or `await` it
 * (or call `done()`) for the resulting {@link ModelInfo}. The request is sent on first use; it is not retried once
 * progress has started. A server error line is thrown as a typed `LlmosError`.
 */
export class ProgressStream<T = ModelInfo> implements AsyncIterable<ProgressEvent>, PromiseLike<T> {
  readonly #source: () => AsyncGenerator<ProgressEvent>;
  readonly #result: (event: ProgressEvent) => T | undefined;
  #started = false;
  #resolve!: (value: T) => void;
  #reject!: (error: unknown) => void;
  readonly #done: Promise<T>;

  /**
   * @param source - starts the request and yields its NDJSON lines.
   * @param result - the operation's result from the success line; default its `model`.
   */
  constructor(
    source: () => AsyncGenerator<ProgressEvent>,
    result: (event: ProgressEvent) => T | undefined = (event) => event.model as T | undefined,
  ) {
    this.#source = source;
    this.#result = result;
    this.#done = new Promise<T>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    this.#done.catch(() => {});
  }

  /** Resolves with the model once the operation succeeds; consumes the stream if nobody iterates it. */
  done(): Promise<T> {
    if (!this.#started) {
      void (async () => {
        try {
          for await (const _ of this) {
            // consume
          }
        } catch {
          // delivered through #reject
        }
      })();
    }
    return this.#done;
  }

  /** Makes the stream awaitable: `const info = await client.pull("...")`. */
  then<A = T, B = never>(
    onfulfilled?: ((value: T) => A | PromiseLike<A>) | null,
    onrejected?: ((reason: unknown) => B | PromiseLike<B>) | null,
  ): Promise<A | B> {
    return this.done().then(onfulfilled, onrejected);
  }

  /** Yields progress events, ending with `{status: "success"}`. Can be iterated once. */
  async *[Symbol.asyncIterator](): AsyncGenerator<ProgressEvent, void, undefined> {
    if (this.#started) throw new TypeError("a ProgressStream can be iterated only once");
    this.#started = true;
    let settled = false;
    try {
      for await (const event of this.#source()) {
        if (event.status === "success") {
          settled = true;
          const result = this.#result(event);
          if (result !== undefined) this.#resolve(result);
          else this.#reject(new LlmosError("success line carried no result", { code: "invalid_response" }));
          yield event;
          continue;
        }
        yield event;
      }
      if (!settled) {
        settled = true;
        this.#reject(new LlmosError("stream ended without a success line", { code: "invalid_response" }));
      }
    } catch (error) {
      if (!settled) this.#reject(error);
      settled = true;
      throw error;
    } finally {
      if (!settled)
        this.#reject(new APIUserAbortError("progress stream closed before it finished", { code: "aborted" }));
    }
  }
}
