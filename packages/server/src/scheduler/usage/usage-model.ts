/**
 * The scheduler's usage model: per model, the idle-time histogram, request rate by time of day, load cost and
 * size (model-usage.ts), learned from the scheduler's own events and kept in a repository (the daemon's
 * database), so it survives restarts; old samples decay with a half-life. Learned policies (policies/) read it.
 */
import type { UsageRepository } from "../../usage-store/index.js";
import type { Clock } from "../clock.js";
import type { SchedulerEvent } from "../events.js";
import {
  decayTo,
  fromStored,
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
  /** Delay before changed records are written (default 2 s); null: only when `flush` or `close` is called. */
  flushDelayMs?: number | null;
}

const DAY_MS = 24 * 60 * 60 * 1000;

export class UsageModel {
  readonly dayMs: number;
  readonly halfLifeMs: number;
  private readonly byModel = new Map<string, ModelUsage>();
  private readonly dirty = new Set<string>();
  private readonly flushDelayMs: number | null;
  private cancelFlush: (() => void) | undefined;
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
  }

  /**
   * Reads every stored record. @throws UsageStoreCorruptError when one cannot be read back (the caller falls
   * back to the fixed policy and leaves the store as it is).
   */
  static open(
    repository: UsageRepository,
    clock: Clock,
    options: UsageModelOptions = {},
    onWriteError: (error: unknown) => void = () => {},
  ): UsageModel {
    const model = new UsageModel(repository, clock, options, onWriteError);
    for (const stored of repository.loadAll()) model.byModel.set(stored.model, fromStored(stored));
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
      case "request.arrived":
        recordArrival(this.usage(event.model, event.at), event.at, this);
        break;
      case "request.finished":
      case "request.rejected":
        recordEnd(this.usage(event.model, event.at), event.at);
        break;
      case "model.loaded":
        recordLoad(this.usage(event.model, event.at), event.loadMs, event.reservedBytes);
        break;
      default:
        return;
    }
    this.dirty.add(event.model);
    this.scheduleFlush();
  }

  /** Writes the changed records now. */
  flush(): void {
    this.cancelFlush?.();
    this.cancelFlush = undefined;
    if (this.dirty.size === 0) return;
    const now = this.clock.now();
    const records = [...this.dirty].flatMap((name) => {
      const u = this.byModel.get(name);
      if (!u) return [];
      decayTo(u, now, this.halfLifeMs);
      return [toStored(u)];
    });
    this.dirty.clear();
    try {
      this.repository.save(records);
    } catch (error) {
      this.onWriteError(error);
    }
  }

  /** Writes what changed and stops recording. Idempotent. */
  close(): void {
    if (this.closed) return;
    this.flush();
    this.closed = true;
  }

  private usage(model: string, now: number): ModelUsage {
    let u = this.byModel.get(model);
    if (!u) {
      u = newUsage(model, now);
      this.byModel.set(model, u);
    }
    return u;
  }

  private scheduleFlush(): void {
    if (this.cancelFlush || this.flushDelayMs === null) return;
    this.cancelFlush = this.clock.setTimer(() => {
      this.cancelFlush = undefined;
      this.flush();
    }, this.flushDelayMs);
  }
}
