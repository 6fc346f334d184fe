import type { SecurityLogger } from "./logger.js";

/**
 * Collects items and writes them in batches off the caller's path: `push` is synchronous and cheap,
 * the write runs later (next turn of the event loop, or after `delayMs`) in one call of `write`.
 * Writes never overlap. A failed batch is logged and dropped: losing a record must not stall inference.
 */
export class WriteQueue<T> {
  private pending: T[] = [];
  private scheduled: NodeJS.Immediate | NodeJS.Timeout | undefined;
  private writing: Promise<void> = Promise.resolve();
  private closed = false;

  constructor(
    private readonly write: (batch: T[]) => Promise<void>,
    private readonly logger: SecurityLogger,
    private readonly what: string,
    /** 0 = next turn (setImmediate); otherwise a timer, so more items share one transaction. */
    private readonly delayMs = 0,
  ) {}

  push(item: T): void {
    if (this.closed) {
      this.logger.warn({ what: this.what }, "security write queue is closed; record dropped");
      return;
    }
    this.pending.push(item);
    this.schedule();
  }

  /** Number of items not yet handed to `write`. */
  get size(): number {
    return this.pending.length;
  }

  /** Resolves when every item pushed so far is written (or has failed and been logged). */
  async flush(): Promise<void> {
    this.cancel();
    this.drain();
    await this.writing;
  }

  /** Flushes and refuses further items. Idempotent. */
  async close(): Promise<void> {
    await this.flush();
    this.closed = true;
  }

  private schedule(): void {
    if (this.scheduled) return;
    const run = () => {
      this.scheduled = undefined;
      this.drain();
    };
    // unref: a pending write must not keep the process alive; close() flushes on shutdown.
    this.scheduled = this.delayMs > 0 ? setTimeout(run, this.delayMs).unref() : setImmediate(run).unref();
  }

  private cancel(): void {
    if (!this.scheduled) return;
    clearTimeout(this.scheduled as NodeJS.Timeout);
    clearImmediate(this.scheduled as NodeJS.Immediate);
    this.scheduled = undefined;
  }

  private drain(): void {
    if (this.pending.length === 0) return;
    const batch = this.pending;
    this.pending = [];
    this.writing = this.writing.then(async () => {
      try {
        await this.write(batch);
      } catch (error) {
        this.logger.error({ err: error, what: this.what, dropped: batch.length }, "security write failed");
      }
    });
  }
}
