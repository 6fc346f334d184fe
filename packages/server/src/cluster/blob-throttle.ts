/**
 * Bandwidth limits of blob transfers between peers (LLMOS_CLUSTER_TRANSFER_RATE): a node sending a blob and a node
 * receiving one each pace the bytes of that one transfer, so a model being copied never takes the whole link from
 * forwarded requests and heartbeats. The pacing is a virtual clock (when the bytes passed so far will have been
 * "paid for" at the rate) with a little slack, so idle time earns no burst; `delayFor` is pure given the clock.
 */
import { Transform, pipeline, type Readable } from "node:stream";
import { setTimeout as delay } from "node:timers/promises";

/** How far ahead of the rate a transfer may run (smooths over timer granularity). */
const SLACK_MS = 50;

export class Throttle {
  /** The time at which every byte taken so far is paid for at the rate. */
  private paidUntil = 0;

  /** `bytesPerSecond` <= 0 means unlimited. */
  constructor(
    readonly bytesPerSecond: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** Takes `bytes` and returns how many milliseconds to wait before passing them on. */
  delayFor(bytes: number): number {
    if (!(this.bytesPerSecond > 0) || bytes <= 0) return 0;
    const now = this.now();
    this.paidUntil = Math.max(this.paidUntil, now) + (bytes * 1000) / this.bytesPerSecond;
    return Math.max(0, this.paidUntil - now - SLACK_MS);
  }

  /** Waits until `bytes` may be passed on (rejects when `signal` aborts). */
  async take(bytes: number, signal?: AbortSignal): Promise<void> {
    const ms = this.delayFor(bytes);
    if (ms > 0) await delay(ms, undefined, signal ? { signal } : {});
  }
}

/**
 * A web stream (a fetch response's body) paced by `throttle`; `onBytes` hears of every chunk passed on. A failure
 * of the source (the peer went away) reaches the reader unchanged, so the downloader treats it as a network error.
 */
export function throttleWebStream(
  body: ReadableStream<Uint8Array>,
  throttle: Throttle,
  onBytes: (bytes: number) => void,
  signal?: AbortSignal,
): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const { done, value } = await reader.read();
      if (done) return controller.close();
      await throttle.take(value.length, signal);
      onBytes(value.length);
      controller.enqueue(value);
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  });
}

/** A file stream paced by `throttle` (the serving side); destroying the result destroys `source`. */
export function throttleReadable(source: Readable, throttle: Throttle): Readable {
  const paced = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      const ms = throttle.delayFor(chunk.length);
      if (ms <= 0) return callback(null, chunk);
      setTimeout(() => callback(null, chunk), ms);
    },
  });
  pipeline(source, paced, () => undefined);
  return paced;
}
