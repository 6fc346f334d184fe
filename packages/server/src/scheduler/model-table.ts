import { EventEmitter } from "node:events";
import type { ModelEntry } from "./model-entry.js";

/** What the table announces: a model went idle, went away, or a load lost its last waiting request. */
export type TableEvent = "idle" | "unloaded" | "abandoned";

/**
 * The models the scheduler holds (loading or ready), by canonical name, with the sums placement decisions need
 * and the events that waiting loads and unloads wake on.
 */
export class ModelTable {
  private readonly entries = new Map<string, ModelEntry>();
  private readonly events = new EventEmitter();

  constructor() {
    this.events.setMaxListeners(0);
  }

  get(name: string): ModelEntry | undefined {
    return this.entries.get(name);
  }

  add(entry: ModelEntry): void {
    this.entries.set(entry.name, entry);
  }

  /** Removes `entry` if the table still holds it under its name (a fresh load may have replaced it). */
  remove(entry: ModelEntry): void {
    if (this.entries.get(entry.name) === entry) this.entries.delete(entry.name);
  }

  /** True while `entry` is the table's model of its name. */
  holds(entry: ModelEntry): boolean {
    return this.entries.get(entry.name) === entry;
  }

  all(): ModelEntry[] {
    return [...this.entries.values()];
  }

  others(entry: ModelEntry): ModelEntry[] {
    return this.all().filter((e) => e !== entry);
  }

  /** Memory reserved by loaded and loading models (estimates), except `entry`'s. */
  reservedBytes(except?: ModelEntry): number {
    let sum = 0;
    for (const e of this.entries.values()) if (e !== except) sum += e.reservedBytes;
    return sum;
  }

  /** Memory held by models that can never be evicted (pinned or kept alive forever), other than `entry`. */
  unmovableBytes(except: ModelEntry): number {
    let sum = 0;
    for (const e of this.entries.values())
      if (e !== except && (e.pinned || e.keepAliveMs === -1)) sum += e.reservedBytes;
    return sum;
  }

  /** GPU memory of the models other than `entry`. */
  vramBytes(except: ModelEntry): number {
    let sum = 0;
    for (const e of this.entries.values()) if (e !== except) sum += e.vramBytes;
    return sum;
  }

  queuedTotal(): number {
    let n = 0;
    for (const e of this.entries.values()) n += e.queue.size;
    return n;
  }

  countReady(): number {
    let n = 0;
    for (const e of this.entries.values()) if (e.state === "ready") n++;
    return n;
  }

  emit(event: TableEvent, model: string): void {
    this.events.emit(event, model);
  }

  /** Resolves at the next of these events. */
  nextEvent(names: TableEvent[]): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        for (const n of names) this.events.off(n, done);
        resolve();
      };
      for (const n of names) this.events.on(n, done);
    });
  }

  /** Resolves once `condition` holds, checked when a model goes idle (and every 50 ms). */
  waitUntil(condition: () => boolean): Promise<void> {
    return new Promise((resolve) => {
      if (condition()) return resolve();
      const check = () => {
        if (!condition()) return;
        this.events.off("idle", check);
        clearInterval(poll);
        resolve();
      };
      const poll = setInterval(check, 50);
      this.events.on("idle", check);
    });
  }
}
