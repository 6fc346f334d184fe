import { LlmosError } from "../errors.js";
import type { AuditEntry, AuditInput } from "./records.js";
import type { AuditQuery, AuditStore } from "./repository.js";
import type { SecurityLogger } from "./logger.js";
import { toEpochMs, type Now } from "./time-scale.js";
import { WriteQueue } from "./write-queue.js";

/** What `AuditLog.query` takes. */
export interface AuditLogQuery {
  /** Date, epoch ms or ISO string (inclusive). */
  since?: Date | string | number;
  action?: AuditQuery["action"];
  /** Newest first; default 100. */
  limit?: number;
}

/**
 * The append-only audit log. `record` only queues (no I/O on the caller's path); entries are written
 * in one transaction on the next turn of the event loop.
 */
export class AuditLog {
  private readonly queue: WriteQueue<AuditInput & { time: number }>;

  constructor(
    private readonly store: AuditStore,
    logger: SecurityLogger,
    private readonly now: Now = Date.now,
  ) {
    this.queue = new WriteQueue((batch) => store.append(batch), logger, "audit");
  }

  /** Queues an entry; `time` is taken now unless given. */
  record(entry: AuditInput): void {
    this.queue.push({ ...entry, time: entry.time ?? this.now() });
  }

  /** Writes everything queued so far. */
  flush(): Promise<void> {
    return this.queue.flush();
  }

  /** Entries, newest first (queued entries are written first, so a query sees them). */
  async query(q: AuditLogQuery = {}): Promise<AuditEntry[]> {
    await this.flush();
    const since = q.since === undefined ? undefined : toEpochMs(q.since);
    if (since !== undefined && !Number.isFinite(since))
      throw new LlmosError("invalid_request", `since is not a valid time: ${String(q.since)}`);
    return this.store.query({
      ...(since !== undefined ? { since } : {}),
      ...(q.action ? { action: q.action } : {}),
      ...(q.limit !== undefined ? { limit: q.limit } : {}),
    });
  }

  /** Flushes and stops accepting entries. Idempotent. */
  close(): Promise<void> {
    return this.queue.close();
  }
}
