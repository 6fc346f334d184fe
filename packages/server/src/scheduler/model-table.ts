import type { ModelEntry } from "./model-entry.js";
import type { SchedulerSnapshot } from "./snapshot.js";

/**
 * The models the scheduler holds: by canonical name those loading, loaded or draining (the ones new requests
 * join), and apart from them those whose runner is stopping (they still hold memory until it has exited, while a
 * fresh load of the same name may already be under way).
 */
export class ModelTable {
  private readonly byName = new Map<string, ModelEntry>();
  private readonly leaving = new Set<ModelEntry>();
  /**
   * Models that went away under a keep-alive a request or load call gave (until the model's next request): the
   * caller said how long to keep it, so no prediction loads it back meanwhile.
   */
  readonly releasedByKeepAlive = new Set<string>();

  get(name: string): ModelEntry | undefined {
    return this.byName.get(name);
  }

  add(entry: ModelEntry): void {
    this.byName.set(entry.name, entry);
  }

  /** True while `entry` is the table's model of its name. */
  holds(entry: ModelEntry): boolean {
    return this.byName.get(entry.name) === entry;
  }

  /** Takes `entry` out of the name index (a fresh load may take the name); it may stay as leaving. */
  detach(entry: ModelEntry, leaving: boolean): void {
    if (this.byName.get(entry.name) === entry) this.byName.delete(entry.name);
    if (leaving) this.leaving.add(entry);
    else this.leaving.delete(entry);
  }

  /** Named entries (what `/api/ps` lists). */
  named(): ModelEntry[] {
    return [...this.byName.values()];
  }

  /** Every entry holding or about to hold memory: named ones and leaving ones. */
  all(): ModelEntry[] {
    return [...this.byName.values(), ...this.leaving];
  }

  queuedTotal(): number {
    let n = 0;
    for (const e of this.byName.values()) n += e.queue.size;
    return n;
  }

  countReady(): number {
    let n = 0;
    for (const e of this.byName.values()) if (e.kind === "ready") n++;
    return n;
  }

  /** Memory reserved by every model held (estimates). */
  reservedBytes(): number {
    let sum = 0;
    for (const e of this.all()) sum += e.reservedBytes;
    return sum;
  }

  snapshot(
    now: number,
    budgets: { memoryBudgetBytes: number; vramBudgetBytes: number | undefined },
    limits: SchedulerSnapshot["limits"],
    cpu: SchedulerSnapshot["cpu"],
  ): SchedulerSnapshot {
    return {
      now,
      ...budgets,
      models: this.all().map((e) => e.view(now)),
      queuedTotal: this.queuedTotal(),
      limits: { ...limits },
      cpu,
      releasedByKeepAlive: [...this.releasedByKeepAlive],
    };
  }
}
