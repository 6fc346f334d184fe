/** Priority classes: interactive requests are always served before batch ones. */
export type Priority = "interactive" | "batch";
const PRIORITIES: Priority[] = ["interactive", "batch"];

interface TenantQueue<T> {
  items: T[];
  /** Virtual time of the tenant's next service (start-time fair queuing). */
  vtime: number;
}

/**
 * Weighted fair queue across tenants within priority classes. Each dequeue serves the tenant with the smallest
 * virtual time and advances it by 1/weight, so a tenant with a burst cannot starve one with a few requests,
 * and an idle tenant banks no credit (its virtual time catches up to the queue's on return).
 */
export class FairQueue<T> {
  private readonly classes = new Map<Priority, Map<string, TenantQueue<T>>>(PRIORITIES.map((p) => [p, new Map()]));
  private virtualNow = 0;
  private count = 0;

  constructor(private readonly weightOf: (tenant: string) => number = () => 1) {}

  get size(): number {
    return this.count;
  }

  push(item: T, tenant: string, priority: Priority): void {
    const tenants = this.classes.get(priority)!;
    let q = tenants.get(tenant);
    if (!q) {
      q = { items: [], vtime: this.virtualNow };
      tenants.set(tenant, q);
    } else if (q.items.length === 0) q.vtime = Math.max(q.vtime, this.virtualNow);
    q.items.push(item);
    this.count++;
  }

  /** Removes and returns the next item to serve, or undefined when empty. */
  shift(): T | undefined {
    for (const priority of PRIORITIES) {
      const tenants = this.classes.get(priority)!;
      let best: [string, TenantQueue<T>] | undefined;
      for (const entry of tenants) {
        if (entry[1].items.length === 0) continue;
        if (!best || entry[1].vtime < best[1].vtime) best = entry;
      }
      if (!best) continue;
      const [tenant, q] = best;
      const item = q.items.shift()!;
      this.virtualNow = Math.max(this.virtualNow, q.vtime);
      q.vtime += 1 / Math.max(1e-6, this.weightOf(tenant));
      if (q.items.length === 0 && q.vtime <= this.virtualNow) tenants.delete(tenant);
      this.count--;
      return item;
    }
    return undefined;
  }

  /** Removes a specific item (a cancelled or timed-out request). */
  remove(item: T): boolean {
    for (const tenants of this.classes.values()) {
      for (const [tenant, q] of tenants) {
        const i = q.items.indexOf(item);
        if (i !== -1) {
          q.items.splice(i, 1);
          if (q.items.length === 0) tenants.delete(tenant);
          this.count--;
          return true;
        }
      }
    }
    return false;
  }

  /** 1-based position an item would be served at if nothing else arrived (for visibility). */
  positionOf(item: T): number {
    const order = this.snapshot();
    const i = order.indexOf(item);
    return i === -1 ? 0 : i + 1;
  }

  /** The service order of everything queued now (simulated on copies). */
  snapshot(): T[] {
    const copy = new FairQueue<T>(this.weightOf);
    copy.virtualNow = this.virtualNow;
    for (const [p, tenants] of this.classes) {
      const dst = copy.classes.get(p)!;
      for (const [t, q] of tenants) dst.set(t, { items: [...q.items], vtime: q.vtime });
      copy.count += [...tenants.values()].reduce((n, q) => n + q.items.length, 0);
    }
    const out: T[] = [];
    for (let item = copy.shift(); item !== undefined; item = copy.shift()) out.push(item);
    return out;
  }

  /** The weight of `tenant` (what its virtual time advances by the inverse of). */
  weight(tenant: string): number {
    return this.weightOf(tenant);
  }

  /** Queued items per priority class and tenant. */
  counts(): Array<{ priority: Priority; tenant: string; count: number }> {
    const out: Array<{ priority: Priority; tenant: string; count: number }> = [];
    for (const [priority, tenants] of this.classes)
      for (const [tenant, q] of tenants) if (q.items.length) out.push({ priority, tenant, count: q.items.length });
    return out;
  }

  /** Queued items per tenant. */
  tenants(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const tenants of this.classes.values())
      for (const [t, q] of tenants) if (q.items.length) out[t] = (out[t] ?? 0) + q.items.length;
    return out;
  }

  drain(): T[] {
    const out: T[] = [];
    for (let item = this.shift(); item !== undefined; item = this.shift()) out.push(item);
    return out;
  }
}
