/**
 * The `model_usage` table's row, the same in SQLite and PostgreSQL: arrays as JSON text, times as integer epoch
 * milliseconds (BIGINT), weights as doubles. Both repositories map records through here, so a record reads back the
 * same from either, and a row that cannot be read is refused the same way.
 */
import { UsageStoreCorruptError, type StoredModelUsage } from "./repository.js";

export interface UsageRow {
  model: string;
  layout: number;
  gaps: string;
  hourly: string;
  requests: number;
  load_ms: number | null;
  size_bytes: number | null;
  first_seen: number;
  last_arrival: number | null;
  updated_at: number;
}

/** The columns, in the order `toRow`'s values are listed (for INSERT statements). */
export const USAGE_COLUMNS = [
  "model",
  "layout",
  "gaps",
  "hourly",
  "requests",
  "load_ms",
  "size_bytes",
  "first_seen",
  "last_arrival",
  "updated_at",
] as const satisfies ReadonlyArray<keyof UsageRow>;

/**
 * The statement that inserts a row or replaces every column of the model's row, in both dialects
 * (`ON CONFLICT ... DO UPDATE`: SQLite >= 3.24, PostgreSQL >= 9.5). `placeholder(column, i)` names each value.
 */
export function upsertSql(placeholder: (column: string, index: number) => string): string {
  const values = USAGE_COLUMNS.map((c, i) => placeholder(c, i)).join(", ");
  const updates = USAGE_COLUMNS.filter((c) => c !== "model")
    .map((c) => `${c} = excluded.${c}`)
    .join(", ");
  return `INSERT INTO model_usage (${USAGE_COLUMNS.join(", ")}) VALUES (${values}) ON CONFLICT (model) DO UPDATE SET ${updates}`;
}

/** A record as a row. Times are rounded to whole milliseconds (a simulated clock may have fractions; BIGINT has none). */
export function toRow(r: StoredModelUsage): UsageRow {
  const ms = (t: number) => Math.round(t);
  return {
    model: r.model,
    layout: r.layout,
    gaps: JSON.stringify(r.gaps),
    hourly: JSON.stringify(r.hourly),
    requests: r.requests,
    load_ms: r.loadMs,
    size_bytes: r.sizeBytes === null ? null : Math.round(r.sizeBytes),
    first_seen: ms(r.firstSeen),
    last_arrival: r.lastArrival === null ? null : ms(r.lastArrival),
    updated_at: ms(r.updatedAt),
  };
}

/** A row's values in `USAGE_COLUMNS` order (for positional parameters). */
export function rowValues(row: UsageRow): unknown[] {
  return USAGE_COLUMNS.map((c) => row[c]);
}

/** A row as a record. @throws UsageStoreCorruptError naming the model and the column when an array is not JSON numbers. */
export function fromRow(row: UsageRow): StoredModelUsage {
  const where = `model_usage row ${JSON.stringify(row.model)}`;
  return {
    model: row.model,
    layout: row.layout,
    gaps: numbers(row.gaps, `${where}: gaps`),
    hourly: numbers(row.hourly, `${where}: hourly`),
    requests: row.requests,
    loadMs: row.load_ms,
    sizeBytes: row.size_bytes,
    firstSeen: row.first_seen,
    lastArrival: row.last_arrival,
    updatedAt: row.updated_at,
  };
}

function numbers(text: string, what: string): number[] {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new UsageStoreCorruptError(`${what} is not JSON`);
  }
  if (!Array.isArray(value) || !value.every((v) => typeof v === "number"))
    throw new UsageStoreCorruptError(`${what} is not an array of numbers`);
  return value as number[];
}
