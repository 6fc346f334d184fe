import { LlmosError } from "../errors.js";
import type { UsageRow } from "./records.js";
import type { UsageStore } from "./repository.js";
import type { SecurityLogger } from "./logger.js";
import { toEpochMs, utcDay, type Now } from "./time-scale.js";
import { WriteQueue } from "./write-queue.js";

/** What `UsageRecorder.usage` takes. */
export interface UsageQueryInput {
  /** First day included: Date, epoch ms, `YYYY-MM-DD` or ISO string (its UTC day). */
  since?: Date | string | number;
  /** `null` selects requests made without a key. */
  keyId?: string | null;
  model?: string;
}

/**
 * Token and request counts per key, model and UTC day. `record` adds to an in-memory batch; the batch
 * is upserted in one transaction after `flushDelayMs`, so inference never waits on the database.
 */
export class UsageRecorder {
  private readonly queue: WriteQueue<UsageRow>;

  constructor(
    private readonly store: UsageStore,
    logger: SecurityLogger,
    private readonly now: Now = Date.now,
    flushDelayMs = 250,
  ) {
    this.queue = new WriteQueue((batch) => store.add(coalesce(batch)), logger, "usage", flushDelayMs);
  }

  /** Counts one request. `keyId` null = a request made without a key. */
  record(keyId: string | null, model: string, promptTokens: number, completionTokens: number): void {
    this.queue.push({
      keyId,
      // A bad row would fail the whole batch's transaction, so never let a non-string through.
      model: typeof model === "string" && model !== "" ? model : "unknown",
      day: utcDay(this.now()),
      promptTokens: nonNegativeInt(promptTokens),
      completionTokens: nonNegativeInt(completionTokens),
      requests: 1,
    });
  }

  flush(): Promise<void> {
    return this.queue.flush();
  }

  /** Rows ordered by day, key, model (pending counts are written first). */
  async usage(q: UsageQueryInput = {}): Promise<UsageRow[]> {
    await this.flush();
    let sinceDay: string | undefined;
    if (q.since !== undefined) {
      const t =
        typeof q.since === "string" && /^\d{4}-\d{2}-\d{2}$/.test(q.since)
          ? Date.parse(`${q.since}T00:00:00Z`)
          : toEpochMs(q.since);
      if (!Number.isFinite(t)) throw new LlmosError("invalid_request", `since is not a valid time: ${String(q.since)}`);
      sinceDay = utcDay(t);
    }
    return this.store.query({
      ...(sinceDay !== undefined ? { sinceDay } : {}),
      ...(q.keyId !== undefined ? { keyId: q.keyId } : {}),
      ...(q.model !== undefined ? { model: q.model } : {}),
    });
  }

  close(): Promise<void> {
    return this.queue.close();
  }
}

/** Adds up rows of the same (key, model, day) so a batch is one upsert per group. */
function coalesce(rows: UsageRow[]): UsageRow[] {
  const groups = new Map<string, UsageRow>();
  for (const r of rows) {
    const id = JSON.stringify([r.keyId, r.model, r.day]);
    const g = groups.get(id);
    if (g) {
      g.promptTokens += r.promptTokens;
      g.completionTokens += r.completionTokens;
      g.requests += r.requests;
    } else groups.set(id, { ...r });
  }
  return [...groups.values()];
}

function nonNegativeInt(n: number): number {
  return Number.isFinite(n) && n > 0 ? Math.round(n) : 0;
}
