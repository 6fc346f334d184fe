/**
 * Idle memory-seconds: the memory held by models that are loaded and serve nothing (ready, no request running or
 * queued), integrated over time, per model. What a keep-alive policy spends to avoid cold starts; the benchmark
 * compares policies on it and `/metrics` exports it (`llmos_idle_memory_byte_seconds_total`).
 */
import { isIdle, type SchedulerSnapshot } from "../snapshot.js";

export class IdleMemoryMeter {
  private lastAt: number | null = null;
  /** Bytes of each model idle since `lastAt`. */
  private idle = new Map<string, number>();
  private readonly totals = new Map<string, number>();

  /** `onAdd(model, byteSeconds)` is called with each increment (the Prometheus counter). */
  constructor(private readonly onAdd: (model: string, byteSeconds: number) => void = () => {}) {}

  /** Counts the time since the last update at the idle set then, and takes the idle set of `snapshot`. */
  update(snapshot: SchedulerSnapshot): void {
    this.advance(snapshot.now);
    this.idle = new Map(snapshot.models.filter(isIdle).map((m) => [m.name, m.reservedBytes]));
  }

  /** Counts up to `now` without changing the idle set (before a read). */
  advance(now: number): void {
    if (this.lastAt !== null && now > this.lastAt) {
      const seconds = (now - this.lastAt) / 1000;
      for (const [model, bytes] of this.idle) {
        if (bytes <= 0) continue;
        const add = bytes * seconds;
        this.totals.set(model, (this.totals.get(model) ?? 0) + add);
        this.onAdd(model, add);
      }
    }
    this.lastAt = Math.max(this.lastAt ?? now, now);
  }

  /** Byte-seconds so far, per model. */
  byModel(): Map<string, number> {
    return new Map(this.totals);
  }

  /** Byte-seconds so far, all models. */
  total(): number {
    let n = 0;
    for (const v of this.totals.values()) n += v;
    return n;
  }
}
