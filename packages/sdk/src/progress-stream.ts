import { APIUserAbortError, LlmosError } from "./errors.js";
import type { ModelInfo } from "@llmos/protocol";
import type { ProgressEvent } from "./types.js";

/**
 * Progress of a long model operation (`pull`, `create`). Iterate it for {@link ProgressEvent}s, or `await` it
 * (or call `done()`) for the resulting {@link ModelInfo}. The request is sent on first use; it is not retried once
 * progress has started. A server error line is thrown as a typed `LlmosError`.
 */
export class ProgressStream implements AsyncIterable<ProgressEvent>, PromiseLike<ModelInfo> {
  readonly #source: () => AsyncGenerator<ProgressEvent>;
  #started = false;
  #resolve!: (value: ModelInfo) => void;
  #reject!: (error: unknown) => void;
  readonly #done: Promise<ModelInfo>;

  /** @param source - starts the request and yields its NDJSON lines. */
  constructor(source: () => AsyncGenerator<ProgressEvent>) {
    this.#source = source;
    this.#done = new Promise<ModelInfo>((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
    this.#done.catch(() => {});
  }

  /** Resolves with the model once the operation succeeds; consumes the stream if nobody iterates it. */
  done(): Promise<ModelInfo> {
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
  then<A = ModelInfo, B = never>(
    onfulfilled?: ((value: ModelInfo) => A | PromiseLike<A>) | null,
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
          if (event.model) this.#resolve(event.model);
          else this.#reject(new LlmosError("success line carried no model", { code: "invalid_response" }));
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
