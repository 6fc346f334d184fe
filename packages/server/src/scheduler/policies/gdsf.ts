/**
 * `gdsf`: Greedy-Dual-Size-Frequency eviction (Cao and Irani; FaasCache, ASPLOS'21, for serverless functions).
 * Loaded models are a cache kept until memory is needed; each has a priority `L + frequency x cost / size`, set when
 * it is used, where cost is its measured load time, size the memory it reserves, frequency its uses since it was
 * loaded, and L the "inflation" clock: the priority of the last model evicted. The lowest priority goes first, so a
 * model that is cheap to reload, large, or rarely used goes before one that is expensive, small or hot, and L
 * ages models that were hot long ago.
 */
import type { SchedulerEvent } from "../events.js";
import type { SchedulingPolicy, VictimRequest } from "../policy.js";
import type { ModelView } from "../snapshot.js";
import type { UsageModel } from "../usage/usage-model.js";
import { evictInOrder } from "./evict-in-order.js";

/** Load time assumed for a model never loaded in this usage model's memory (ms). */
const UNKNOWN_LOAD_MS = 1000;

export class GdsfPolicy implements SchedulingPolicy {
  readonly name: string = "gdsf";
  /** L: the priority of the last model evicted. */
  private inflation = 0;
  /** Per loaded model: uses since it was loaded, and L when it was last used. */
  private readonly entries = new Map<string, { frequency: number; base: number }>();

  constructor(private readonly usage?: UsageModel) {}

  observe(event: SchedulerEvent): void {
    if (event.type === "request.arrived") {
      const e = this.entries.get(event.model) ?? { frequency: 0, base: this.inflation };
      e.frequency++;
      e.base = this.inflation;
      this.entries.set(event.model, e);
    } else if (event.type === "model.unloading" && (event.reason === "evicted" || event.reason === "oom_retry")) {
      const e = this.entries.get(event.model);
      if (e) this.inflation = Math.max(this.inflation, this.priorityOf(event.model, e, undefined));
    } else if (event.type === "model.unloaded" || event.type === "model.crashed") {
      this.entries.delete(event.model);
    }
  }

  /** The model's current priority (what `chooseVictims` sorts by; exported for `/api/ps` and tests). */
  priority(model: ModelView): number {
    const e = this.entries.get(model.name) ?? { frequency: 0, base: this.inflation };
    return this.priorityOf(model.name, e, model.reservedBytes);
  }

  chooseVictims(candidates: readonly ModelView[], request: VictimRequest): string[] | undefined {
    const ranked = [...candidates].sort((a, b) => this.priority(a) - this.priority(b) || a.lastUsed - b.lastUsed);
    return evictInOrder(ranked, request.neededBytes);
  }

  expiresAt(): number | null {
    return null;
  }

  preload(): string[] {
    return [];
  }

  explain(model: ModelView): string {
    const e = this.entries.get(model.name);
    return `kept until its memory is needed; priority ${this.priority(model).toExponential(2)} (${e?.frequency ?? 0} uses since loaded)`;
  }

  private priorityOf(model: string, e: { frequency: number; base: number }, reservedBytes: number | undefined): number {
    const u = this.usage?.get(model);
    const cost = u?.loadMs ?? UNKNOWN_LOAD_MS;
    const size = Math.max(1, reservedBytes ?? u?.sizeBytes ?? 1);
    return e.base + (e.frequency * cost) / size;
  }
}
