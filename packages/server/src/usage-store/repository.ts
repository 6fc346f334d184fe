/**
 * Where the scheduler's usage model (scheduler/usage/) is kept between runs: one record per model with its
 * idle-time histogram, request rate by time of day, load cost and size. A single node keeps it in its own SQLite
 * database (sqlite-usage-repository.ts); a cluster keeps one record per model in PostgreSQL
 * (postgres-usage-repository.ts), shared by every node: each node adds the samples it learned, so the record is
 * the cluster's. This layer stores, locks and returns plain records; what their arrays mean, and how two of them
 * add up, is the usage model's business (it passes the merge in).
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

/**
 * How a batch of new samples joins a model's stored record (undefined: the model has none yet). Pure; it may
 * throw (a stored record it cannot read), which fails the whole `add`.
 */
export type UsageMerge = (stored: StoredModelUsage | undefined, batch: StoredModelUsage) => StoredModelUsage;

/**
 * Async because PostgreSQL is (the SQLite and memory implementations answer at once). Several writers (the nodes
 * of a cluster) may share one repository: `add` is the write they use, atomic per model against each other.
 */
export interface UsageRepository {
  /** Every stored record, by model name. @throws UsageStoreCorruptError when a record cannot be read back. */
  loadAll(): Promise<StoredModelUsage[]>;
  /**
   * Adds each batch (new samples for one model) to that model's stored record with `merge`, under a lock on the
   * record, in one transaction: two writers adding to the same model at once both count. Returns the records as
   * stored now.
   */
  add(batches: readonly StoredModelUsage[], merge: UsageMerge): Promise<StoredModelUsage[]>;
  /** Inserts or replaces these records (one transaction): seeding a store, copying one, tests. */
  save(records: readonly StoredModelUsage[]): Promise<void>;
  /** Idempotent. */
  close(): Promise<void>;
}

/** The stored usage cannot be read back (bad JSON, wrong shapes, an unknown layout, an unreadable table). */
export class UsageStoreCorruptError extends Error {
  override readonly name = "UsageStoreCorruptError";
}

/** A repository that keeps records in memory only (the simulator, tests, a daemon whose store is corrupt). */
export class MemoryUsageRepository implements UsageRepository {
  private readonly records = new Map<string, StoredModelUsage>();

  loadAll(): Promise<StoredModelUsage[]> {
    const all = [...this.records.values()].sort((a, b) => (a.model < b.model ? -1 : 1));
    return Promise.resolve(all.map((r) => structuredClone(r)));
  }

  add(batches: readonly StoredModelUsage[], merge: UsageMerge): Promise<StoredModelUsage[]> {
    try {
      // All or nothing, as a transaction: merge everything before storing anything.
      const staged = new Map<string, StoredModelUsage>();
      for (const b of batches) staged.set(b.model, merge(staged.get(b.model) ?? this.records.get(b.model), b));
      for (const r of staged.values()) this.records.set(r.model, structuredClone(r));
      return Promise.resolve([...staged.values()].map((r) => structuredClone(r)));
    } catch (error) {
      return Promise.reject(error as Error);
    }
  }

  save(records: readonly StoredModelUsage[]): Promise<void> {
    for (const r of records) this.records.set(r.model, structuredClone(r));
    return Promise.resolve();
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
