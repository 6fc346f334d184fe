/**
 * In-process locks of the store: a reader/writer lock over the whole store (writers: gc, verify) and exclusive
 * locks per model name. Mutations hold the store lock shared and their names exclusively, so two operations on
 * different names run at once, two on the same name queue, and garbage collection never sees a blob that an
 * operation has written but not yet referenced from a manifest.
 */
export class StoreLocks {
  #readers = 0;
  #writer = false;
  #waiting: Array<{ write: boolean; wake: () => void }> = [];
  #names = new Map<string, Promise<void>>();

  /** Runs `fn` holding the store lock shared and each of `names` exclusively (taken in sorted order: no deadlock). */
  async withNames<T>(names: readonly string[], fn: () => Promise<T>): Promise<T> {
    const unique = [...new Set(names)].sort();
    await this.#acquire(false);
    const releases: Array<() => void> = [];
    try {
      for (const name of unique) releases.push(await this.#lockName(name));
      return await fn();
    } finally {
      for (const release of releases.reverse()) release();
      this.#release(false);
    }
  }

  /** Runs `fn` holding the store lock exclusively (no other store operation runs meanwhile). */
  async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    await this.#acquire(true);
    try {
      return await fn();
    } finally {
      this.#release(true);
    }
  }

  async #lockName(name: string): Promise<() => void> {
    const previous = this.#names.get(name) ?? Promise.resolve();
    let release!: () => void;
    const current = new Promise<void>((resolve) => (release = resolve));
    const tail = previous.then(() => current);
    this.#names.set(name, tail);
    await previous;
    return () => {
      release();
      if (this.#names.get(name) === tail) this.#names.delete(name);
    };
  }

  #acquire(write: boolean): Promise<void> {
    // Writers are served in arrival order: a reader that arrives while a writer waits queues behind it.
    if (this.#waiting.length === 0 && (write ? !this.#writer && this.#readers === 0 : !this.#writer)) {
      if (write) this.#writer = true;
      else this.#readers++;
      return Promise.resolve();
    }
    return new Promise((wake) => this.#waiting.push({ write, wake }));
  }

  #release(write: boolean): void {
    if (write) this.#writer = false;
    else this.#readers--;
    while (this.#waiting.length > 0) {
      const next = this.#waiting[0]!;
      if (next.write) {
        if (this.#writer || this.#readers > 0) return;
        this.#writer = true;
      } else {
        if (this.#writer) return;
        this.#readers++;
      }
      this.#waiting.shift();
      next.wake();
    }
  }
}
