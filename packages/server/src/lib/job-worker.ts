import { Worker } from "node:worker_threads";

/** How a job ended badly: its own error (as the worker reported it), or the worker's limits. */
export type JobFailure =
  | { kind: "error"; error: { code?: string; message: string; details?: Record<string, unknown> } }
  | { kind: "timeout"; ms: number }
  | { kind: "out_of_memory"; heapMb: number }
  | { kind: "crashed"; message: string }
  | { kind: "closed" };

/** Options of {@link JobWorker}. */
export interface JobWorkerOptions {
  /** The worker's entry file (a `.ts` URL when running from source under tsx, `.js` when built). */
  entry: URL;
  /** Heap of the worker thread, MiB. */
  heapMb: number;
  /** A job taking longer is abandoned and the worker replaced. */
  timeoutMs: number;
  /** The worker exits after this long without work. Default 30 s. */
  idleMs?: number;
}

interface Pending<J, R> {
  job: J & { id: number };
  resolve: (value: R) => void;
  reject: (failure: JobFailure) => void;
  timer?: NodeJS.Timeout;
}

function startWorker(entry: URL, heapMb: number): Worker {
  const resourceLimits = { maxOldGenerationSizeMb: heapMb };
  if (!entry.pathname.endsWith(".ts")) return new Worker(entry, { resourceLimits });
  // From source, the thread registers tsx itself (the main thread's loader flags do not reach workers).
  const tsx = import.meta.resolve("tsx/esm/api");
  const code = `import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(entry.href)}); });`;
  return new Worker(code, { eval: true, resourceLimits });
}

/**
 * Runs jobs one at a time in one worker thread with a bounded heap and a time limit per job: work on untrusted
 * input (GGUF headers, chat templates) costs that thread, never the daemon's event loop. A job that runs out of
 * heap or time fails (rejecting with a {@link JobFailure}) and the worker is replaced for the next one. The worker
 * starts on first use and exits when idle; it never keeps the process alive.
 *
 * Protocol: the worker posts `{ ready: true }` once it listens (the time limit counts from then, not from the
 * thread's start-up), then gets `{ id, ...job }` and answers `{ id, result }` or `{ id, error: { code?, message } }`.
 */
export class JobWorker<J extends object, R> {
  readonly #queue: Array<Pending<J, R>> = [];
  #worker: Worker | undefined;
  #ready = false;
  #current: Pending<J, R> | undefined;
  #idleTimer: NodeJS.Timeout | undefined;
  #nextId = 1;
  #disposed = false;

  constructor(readonly options: JobWorkerOptions) {}

  /** Runs `job`; rejects with a {@link JobFailure}. */
  run(job: J): Promise<R> {
    if (this.#disposed) return Promise.reject({ kind: "closed" } satisfies JobFailure);
    return new Promise((resolve, reject) => {
      this.#queue.push({ job: { ...job, id: this.#nextId++ }, resolve, reject });
      this.#pump();
    });
  }

  /** Stops the worker; pending jobs fail with `closed`. Idempotent. */
  async dispose(): Promise<void> {
    this.#disposed = true;
    for (const p of this.#queue.splice(0)) p.reject({ kind: "closed" });
    this.#finish(this.#current, { kind: "closed" });
    await this.#stop();
  }

  #pump(): void {
    if (this.#current || this.#queue.length === 0) return;
    clearTimeout(this.#idleTimer);
    const next = this.#queue.shift()!;
    this.#current = next;
    this.#ensureWorker().postMessage(next.job);
    // A fresh thread gets a minute to start (loading modules); the job's own limit starts once it listens.
    this.#arm(next, this.#ready ? this.options.timeoutMs : 60_000);
  }

  #arm(p: Pending<J, R>, ms: number): void {
    clearTimeout(p.timer);
    p.timer = setTimeout(() => {
      this.#finish(p, { kind: "timeout", ms: this.options.timeoutMs });
      void this.#stop().then(() => this.#pump());
    }, ms);
  }

  #ensureWorker(): Worker {
    if (this.#worker) return this.#worker;
    const worker = startWorker(this.options.entry, this.options.heapMb);
    this.#ready = false;
    worker.unref();
    worker.on(
      "message",
      (msg: { id: number; ready?: true; result?: R; error?: { code?: string; message: string } }) => {
        if (msg.ready) {
          this.#ready = true;
          if (this.#current) this.#arm(this.#current, this.options.timeoutMs);
          return;
        }
        const current = this.#current;
        if (!current || current.job.id !== msg.id) return;
        if (msg.error) this.#finish(current, { kind: "error", error: msg.error });
        else this.#finish(current, undefined, msg.result as R);
        this.#pump();
        this.#armIdle();
      },
    );
    const onGone = (error?: Error) => {
      if (this.#worker !== worker) return;
      this.#worker = undefined;
      const outOfMemory = (error as { code?: string } | undefined)?.code === "ERR_WORKER_OUT_OF_MEMORY";
      this.#finish(
        this.#current,
        outOfMemory
          ? { kind: "out_of_memory", heapMb: this.options.heapMb }
          : { kind: "crashed", message: error?.message ?? "the worker exited" },
      );
      this.#pump();
    };
    worker.on("error", onGone);
    worker.on("exit", () => onGone());
    this.#worker = worker;
    return worker;
  }

  #finish(p: Pending<J, R> | undefined, failure: JobFailure | undefined, result?: R): void {
    if (!p) return;
    clearTimeout(p.timer);
    if (this.#current === p) this.#current = undefined;
    if (failure) p.reject(failure);
    else p.resolve(result!);
  }

  #armIdle(): void {
    if (this.#current || this.#queue.length > 0) return;
    clearTimeout(this.#idleTimer);
    this.#idleTimer = setTimeout(() => void this.#stop(), this.options.idleMs ?? 30_000);
    this.#idleTimer.unref();
  }

  async #stop(): Promise<void> {
    clearTimeout(this.#idleTimer);
    const worker = this.#worker;
    this.#worker = undefined;
    await worker?.terminate();
  }
}

/** The entry file `name` beside `base` (the calling module's `import.meta.url`), `.ts` from source, `.js` built. */
export function siblingEntry(name: string, base: string): URL {
  return new URL(`./${name}${base.endsWith(".ts") ? ".ts" : ".js"}`, base);
}
