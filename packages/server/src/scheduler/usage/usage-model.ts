/**
 * The scheduler's usage model: per model, the idle-time histogram, request rate by time of day, load cost and
 * size (model-usage.ts), learned from the scheduler's own events and kept in a repository (the daemon's
 * database, or the cluster's), so it survives restarts; old samples decay with a half-life. Learned policies
 * (policies/) read it.
 *
 * What is learned goes to the repository as batches of new samples, merged into the stored record under its lock
 * (mergeUsage), never as a whole record that would overwrite what another writer added: in a cluster every node
 * adds its samples to the one record per model, and reads back the sum (after each write, and every `refreshMs`).
 * The view the policies read is that stored record plus the samples not yet written.
 */
import type { StoredModelUsage, UsageRepository } from "../../usage-store/index.js";
import type { Clock } from "../clock.js";
import type { SchedulerEvent } from "../events.js";
import {
  addRequest,
  decayTo,
  fromStored,
  mergeUsage,
  newUsage,
  recordArrival,
  recordEnd,
  recordLoad,
  toStored,
  type ModelUsage,
} from "./model-usage.js";

export interface UsageModelOptions {
  /** Length of the day the time-of-day rates follow (default 24 h; a benchmark compresses it). */
  dayMs?: number;
  /** Half-life of old samples (default 7 days, whatever the day's length: a compressed day compresses only the time-of-day buckets). */
  halfLifeMs?: number;
  /** Delay before new samples are written (default 2 s); null: only when `flush` or `close` is called. */
  flushDelayMs?: number | null;
  /**
   * Period of reading every record back (what other writers learned: the other nodes of a cluster); default null
   * (never: a single node's store has no other writer).
   */
  refreshMs?: number | null;
}

const DAY_MS = 24 * 60 * 60 * 1000;

export class UsageModel {
  readonly dayMs: number;
  readonly halfLifeMs: number;
  /** What the policies read: the stored record plus `pending`. */
  private readonly byModel = new Map<string, ModelUsage>();
  /** Samples not yet written, per model (decayed like records; only the fields a batch carries are used). */
  private readonly pending = new Map<string, ModelUsage>();
  private readonly flushDelayMs: number | null;
  private readonly refreshMs: number | null;
  private cancelFlush: (() => void) | undefined;
  private cancelRefresh: (() => void) | undefined;
  /** Writes and reads run one at a time, in order. */
  private queue: Promise<void> = Promise.resolve();
  private closed = false;

  private constructor(
    private readonly repository: UsageRepository,
    private readonly clock: Clock,
    options: UsageModelOptions,
    private readonly onWriteError: (error: unknown) => void,
  ) {
    this.dayMs = options.dayMs ?? DAY_MS;
    this.halfLifeMs = options.halfLifeMs ?? 7 * DAY_MS;
    this.flushDelayMs = options.flushDelayMs === undefined ? 2000 : options.flushDelayMs;
    this.refreshMs = options.refreshMs ?? null;
  }

  /**
   * Reads every stored record. @throws UsageStoreCorruptError when one cannot be read back (the caller falls
   * back to the fixed policy and leaves the store as it is).
   */
  static async open(
    repository: UsageRepository,
    clock: Clock,
    options: UsageModelOptions = {},
    onWriteError: (error: unknown) => void = () => {},
  ): Promise<UsageModel> {
    const model = new UsageModel(repository, clock, options, onWriteError);
    for (const stored of await repository.loadAll()) model.byModel.set(stored.model, fromStored(stored));
    model.scheduleRefresh();
    return model;
  }

  /** A model's usage, or undefined before its first request or load. */
  get(model: string): Readonly<ModelUsage> | undefined {
    return this.byModel.get(model);
  }

  models(): string[] {
    return [...this.byModel.keys()];
  }

  /** Idle gaps recorded for `model`, decayed to `now`. */
  gapWeight(model: string, now: number): number {
    const u = this.byModel.get(model);
    if (!u) return 0;
    return u.gapTotal * 2 ** (-Math.max(0, now - u.updatedAt) / this.halfLifeMs);
  }

  /** Updates the model from one scheduler event (subscribed by the scheduler). */
  observe(event: SchedulerEvent): void {
    if (this.closed) return;
    switch (event.type) {
      case "request.arrived": {
        const gapBin = recordArrival(this.usage(event.model, event.at), event.at, this);
        addRequest(this.batch(event.model, event.at), event.at, gapBin, this);
        break;
      }
      case "request.finished":
      case "request.rejected":
        // Only this process's in-flight count changes (a gap is timed from here); nothing to write.
        recordEnd(this.usage(event.model, event.at), event.at);
        return;
      case "model.loaded":
        recordLoad(this.usage(event.model, event.at), event.loadMs, event.reservedBytes);
        recordLoad(this.batch(event.model, event.at), event.loadMs, event.reservedBytes);
        break;
      default:
        return;
    }
    this.scheduleFlush();
  }

  /**
   * Writes the samples learned since the last write (merged into the stored records) and takes those back as the
   * view. Never rejects: a failed write is reported to `onWriteError` and its samples wait for the next one.
   */
  flush(): Promise<void> {
    this.cancelFlush?.();
    this.cancelFlush = undefined;
    return this.enqueue(() => this.write());
  }

  /** Writes what was learned, then reads every record back (what the other writers added). */
  refresh(): Promise<void> {
    return this.enqueue(async () => {
      await this.write();
      let all: StoredModelUsage[];
      try {
        all = await this.repository.loadAll();
      } catch (error) {
        this.onWriteError(error);
        return;
      }
      for (const stored of all) this.absorb(stored);
    });
  }

  /** Writes what was learned and stops recording. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return this.queue;
    this.cancelRefresh?.();
    this.cancelRefresh = undefined;
    const last = this.flush();
    this.closed = true;
    await last;
  }

  private async write(): Promise<void> {
    if (this.pending.size === 0) return;
    const now = this.clock.now();
    const batches = [...this.pending.values()].map((b) => {
      decayTo(b, now, this.halfLifeMs);
      return toStored(b);
    });
    // Samples that arrive while this write runs go to a fresh batch.
    this.pending.clear();
    try {
      const stored = await this.repository.add(batches, (s, b) => mergeUsage(s, b, this.halfLifeMs));
      for (const record of stored) this.absorb(record);
    } catch (error) {
      // Kept for the next write (the database may be back by then).
      for (const b of batches) this.keepPending(b);
      this.onWriteError(error);
    }
  }

  /** Takes a stored record (with what other writers added) as the view, plus the samples not written yet. */
  private absorb(stored: StoredModelUsage): void {
    const current = this.byModel.get(stored.model);
    const pending = this.pending.get(stored.model);
    let view: ModelUsage;
    try {
      view = fromStored(pending ? mergeUsage(stored, toStored(pending), this.halfLifeMs) : stored);
    } catch (error) {
      // A record this node cannot read (another layout, from a newer node): keep what it knows of that model.
      this.onWriteError(error);
      return;
    }
    view.lastEnd = current?.lastEnd ?? null;
    view.inflight = current?.inflight ?? 0;
    view.version = (current?.version ?? 0) + 1;
    this.byModel.set(stored.model, view);
  }

  /** Puts a batch that could not be written back in front of the samples that came since. */
  private keepPending(batch: StoredModelUsage): void {
    const since = this.pending.get(batch.model);
    this.pending.set(batch.model, fromStored(since ? mergeUsage(batch, toStored(since), this.halfLifeMs) : batch));
  }

  /** Runs `step` after the steps before it; it never rejects (errors go to `onWriteError`). */
  private enqueue(step: () => Promise<void>): Promise<void> {
    this.queue = this.queue.then(step).catch((error: unknown) => this.onWriteError(error));
    return this.queue;
  }

  private usage(model: string, now: number): ModelUsage {
    let u = this.byModel.get(model);
    if (!u) {
      u = newUsage(model, now);
      this.byModel.set(model, u);
    }
    return u;
  }

  private batch(model: string, now: number): ModelUsage {
    let b = this.pending.get(model);
    if (!b) {
      b = newUsage(model, now);
      this.pending.set(model, b);
    }
    return b;
  }

  private scheduleFlush(): void {
    if (this.cancelFlush || this.flushDelayMs === null) return;
    this.cancelFlush = this.clock.setTimer(() => {
      this.cancelFlush = undefined;
      void this.flush();
    }, this.flushDelayMs);
  }

  private scheduleRefresh(): void {
    if (this.refreshMs === null || this.closed) return;
    this.cancelRefresh = this.clock.setTimer(() => {
      this.cancelRefresh = undefined;
      void this.refresh().then(() => this.scheduleRefresh());
    }, this.refreshMs);
  }
}
