/**
 * Where the scheduler's usage model (scheduler/usage/) is kept between runs: one record per model with its
 * idle-time histogram, request rate by time of day, load cost and size. SQLite now (sqlite-usage-repository.ts,
 * in the daemon's database); a cluster puts PostgreSQL behind the same interface. This layer stores and returns
 * plain records; what their arrays mean is the usage model's business.
 */

/** One model's learned usage, as stored. */
export interface StoredModelUsage {
  /** Canonical `name:tag`. */
  model: string;
  /** Layout of `gaps` (bin edges) the record was written with; a reader refuses layouts it does not know. */
  layout: number;
  /** Decayed weights of idle gaps per histogram bin (the last entry: gaps beyond the last edge). */
  gaps: number[];
  /** Decayed request counts per hour of the (possibly compressed) day. */
  hourly: number[];
  /** Decayed count of requests. */
  requests: number;
  /** Load time (smoothed), ms; null before the first load. */
  loadMs: number | null;
  /** Bytes the model last reserved in the memory budget; null before the first load. */
  sizeBytes: number | null;
  /** When the model was first asked for or loaded (ms since the epoch). */
  firstSeen: number;
  /** When the model was last asked for (ms since the epoch); null if never. */
  lastArrival: number | null;
  /** When the weights were last decayed to (ms since the epoch). */
  updatedAt: number;
}

export interface UsageRepository {
  /** Every stored record. @throws UsageStoreCorruptError when a record cannot be read back. */
  loadAll(): StoredModelUsage[];
  /** Inserts or replaces these records (one transaction). */
  save(records: readonly StoredModelUsage[]): void;
  close(): void;
}

/** The stored usage cannot be read back (bad JSON, wrong shapes, an unknown layout, an unreadable table). */
export class UsageStoreCorruptError extends Error {
  override readonly name = "UsageStoreCorruptError";
}

/** A repository that keeps records in memory only (the simulator, tests, a daemon whose store is corrupt). */
export class MemoryUsageRepository implements UsageRepository {
  private readonly records = new Map<string, StoredModelUsage>();

  loadAll(): StoredModelUsage[] {
    return [...this.records.values()].map((r) => structuredClone(r));
  }

  save(records: readonly StoredModelUsage[]): void {
    for (const r of records) this.records.set(r.model, structuredClone(r));
  }

  close(): void {}
}
