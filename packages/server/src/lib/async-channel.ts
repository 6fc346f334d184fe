/**
 * A single-consumer async queue: producers `push`, end with `close()` or `fail(error)`; the consumer
 * iterates with `for await`. Breaking out of the loop calls `onCancel` once.
 */
export class AsyncChannel<T> implements AsyncIterable<T> {
  private readonly buffer: T[] = [];
  private waiter: { resolve: (r: IteratorResult<T>) => void; reject: (e: unknown) => void } | undefined;
  private done = false;
  private error: unknown;
  private failed = false;

  constructor(private readonly onCancel?: () => void) {}

  push(value: T): void {
    if (this.done) return;
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = undefined;
      w.resolve({ value, done: false });
    } else this.buffer.push(value);
  }

  close(): void {
    if (this.done) return;
    this.done = true;
    this.settleWaiter();
  }

  fail(error: unknown): void {
    if (this.done) return;
    this.done = true;
    this.failed = true;
    this.error = error;
    this.settleWaiter();
  }

  get closed(): boolean {
    return this.done;
  }

  private settleWaiter(): void {
    if (!this.waiter || this.buffer.length) return;
    const w = this.waiter;
    this.waiter = undefined;
    if (this.failed) w.reject(this.error);
    else w.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return {
      next: () => {
        if (this.buffer.length) return Promise.resolve({ value: this.buffer.shift()!, done: false });
        if (this.done)
          return this.failed ? Promise.reject(this.error) : Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve, reject) => (this.waiter = { resolve, reject }));
      },
      return: () => {
        if (!this.done) {
          this.done = true;
          this.onCancel?.();
        }
        return Promise.resolve({ value: undefined, done: true });
      },
    };
  }
}
