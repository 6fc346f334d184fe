import { setMaxListeners } from "node:events";
import type { FastifyReply, FastifyRequest } from "fastify";
import { LlmosError } from "../errors.js";

declare module "fastify" {
  interface FastifyRequest {
    /** Aborted (with a `shutting_down` LlmosError) when a drain ran out of time: cancel the work, say why. */
    drainSignal: AbortSignal | null;
  }
}

/** How long cancelled requests get to send their final error event before the server closes anyway. */
const CANCEL_GRACE_MS = 5_000;

/**
 * Graceful shutdown of the HTTP side. Once `drain()` starts, new requests get 503 `shutting_down`; requests in
 * flight (streams included) may finish until the timeout, then they are cancelled through `drainSignal` (a
 * stream ends with a final error event) and get a short grace to say so.
 *
 * States: open -> draining -> (all finished | timed out -> cancelling) -> drained.
 */
export class Drain {
  readonly #inFlight = new Set<FastifyRequest>();
  readonly #cancel = new AbortController();
  #draining = false;
  #idle: (() => void) | undefined;

  constructor() {
    // Every request in flight listens on the one cancel signal (and stops when it ends): dozens at once are normal,
    // not the leak Node's default limit of 10 listeners warns about.
    setMaxListeners(0, this.#cancel.signal);
  }

  /** True once `drain()` was called. */
  get draining(): boolean {
    return this.#draining;
  }

  /** Requests being served now. */
  get inFlight(): number {
    return this.#inFlight.size;
  }

  /** `onRequest` hook: refuses new requests while draining, else tracks the request until its response ends. */
  readonly onRequest = async (request: FastifyRequest, reply: FastifyReply): Promise<void> => {
    if (this.#draining) {
      reply.header("connection", "close");
      throw new LlmosError("shutting_down", "llmos is shutting down and takes no new requests", {
        retryAfterSeconds: 5,
      });
    }
    request.drainSignal = this.#cancel.signal;
    this.#inFlight.add(request);
    reply.raw.once("close", () => this.#done(request));
  };

  /**
   * Stops taking requests and waits for those in flight, at most `timeoutMs`; then cancels the rest and waits a
   * short grace for their final events. Idempotent (a second call waits for the same drain).
   */
  async drain(timeoutMs: number): Promise<{ finished: boolean; cancelled: number }> {
    this.#draining = true;
    if (await this.#waitIdle(timeoutMs)) return { finished: true, cancelled: 0 };
    const cancelled = this.#inFlight.size;
    this.#cancel.abort(
      new LlmosError("shutting_down", `llmos is shutting down: the request did not finish within ${timeoutMs} ms`),
    );
    await this.#waitIdle(CANCEL_GRACE_MS);
    return { finished: false, cancelled };
  }

  #done(request: FastifyRequest): void {
    this.#inFlight.delete(request);
    if (this.#inFlight.size === 0) this.#idle?.();
  }

  /** Resolves true when nothing is in flight, false after `ms`. */
  #waitIdle(ms: number): Promise<boolean> {
    if (this.#inFlight.size === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#idle = undefined;
        resolve(false);
      }, ms);
      this.#idle = () => {
        clearTimeout(timer);
        this.#idle = undefined;
        resolve(true);
      };
    });
  }
}
