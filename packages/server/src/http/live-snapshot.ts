import os from "node:os";
import type { DaemonSnapshot, LoadedModel } from "@llmos/protocol";
import type { HttpDeps } from "./deps.js";
import { visibleModel, visibleRequest, type LiveAccess } from "./live-access.js";

/** The part of a snapshot that is the same for every caller. */
type SharedSnapshot = Omit<DaemonSnapshot, "access" | "history">;

/**
 * Builds the live snapshots of `/api/events` from the sources `/api/ps`, `/api/system` and `/metrics` read (the
 * scheduler's ps view, the node inventory, the metrics registry through LiveStats), shared between connected
 * clients: one build per interval whatever the number of dashboards open, then filtered per caller.
 */
export class LiveSnapshots {
  private last: { at: number; value: Promise<SharedSnapshot> } | undefined;

  constructor(private readonly deps: HttpDeps) {}

  async forCaller(access: LiveAccess, withHistory: boolean): Promise<DaemonSnapshot> {
    const shared = await this.shared();
    return {
      ...shared,
      models: shared.models.filter((m) => visibleModel(access, m.name)),
      lastUsed: Object.fromEntries(Object.entries(shared.lastUsed).filter(([name]) => visibleModel(access, name))),
      requests: shared.requests.filter((r) => visibleRequest(access, r)),
      access: {
        admin: access.admin,
        modelsWrite: access.modelsWrite,
        modelsRead: access.modelsRead,
        inference: access.inference,
        metrics: access.metrics,
      },
      ...(withHistory ? { history: this.deps.live.history() } : {}),
    };
  }

  private shared(): Promise<SharedSnapshot> {
    const now = Date.now();
    if (this.last && now - this.last.at < this.deps.live.intervalMs / 2) return this.last.value;
    const value = this.build();
    value.catch(() => (this.last = undefined));
    this.last = { at: now, value };
    return value;
  }

  private async build(): Promise<SharedSnapshot> {
    const { scheduler } = this.deps;
    const [ps, inventory, point] = await Promise.all([scheduler.ps(), this.deps.inventory(), this.deps.live.latest()]);
    return {
      time: Date.now(),
      version: this.deps.version,
      node: {
        memory: { totalBytes: inventory.memory.totalBytes, availableBytes: inventory.memory.availableBytes },
        cpu: { cores: inventory.cpu.cores, model: inventory.cpu.model, loadAverage1m: os.loadavg()[0] ?? 0 },
        gpus: inventory.gpus.map((g) => ({
          name: g.name,
          totalVramBytes: g.totalVramBytes,
          freeVramBytes: g.freeVramBytes,
        })),
        budget: { budgetBytes: scheduler.budgetBytes, reservedBytes: scheduler.reservedBytes() },
      },
      models: ps.models as LoadedModel[],
      queue: ps.queue,
      ...(ps.policy ? { policy: ps.policy } : {}),
      requests: this.deps.metrics.requests.list(),
      lastUsed: this.deps.metrics.requests.lastUsedByModel(),
      point,
    };
  }
}
