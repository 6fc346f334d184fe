import fs from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";
import { UsageStoreCorruptError, type StoredModelUsage, type UsageRepository } from "./repository.js";

/**
 * Numbered migrations of the usage tables (SQLite dialect), with their own version table so that they never
 * interleave with the security tables' migrations in the same database. Append only.
 */
const MIGRATIONS: ReadonlyArray<{ version: number; name: string; sql: string }> = [
  {
    version: 1,
    name: "model usage",
    sql: `
      CREATE TABLE model_usage (
        model TEXT PRIMARY KEY,
        layout INTEGER NOT NULL,
        gaps TEXT NOT NULL,
        hourly TEXT NOT NULL,
        requests REAL NOT NULL,
        load_ms REAL,
        size_bytes BIGINT,
        first_seen BIGINT NOT NULL,
        last_arrival BIGINT,
        updated_at BIGINT NOT NULL
      );
    `,
  },
];

interface Row {
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

/** The usage records in a SQLite file (the daemon's `llmos.db`, beside the security tables; WAL mode). */
export class SqliteUsageRepository implements UsageRepository {
  private closed = false;
  private readonly upsert;

  private constructor(private readonly db: Database.Database) {
    this.upsert = db.prepare(`INSERT INTO model_usage
      (model, layout, gaps, hourly, requests, load_ms, size_bytes, first_seen, last_arrival, updated_at)
      VALUES (@model, @layout, @gaps, @hourly, @requests, @load_ms, @size_bytes, @first_seen, @last_arrival, @updated_at)
      ON CONFLICT (model) DO UPDATE SET layout = excluded.layout, gaps = excluded.gaps, hourly = excluded.hourly,
        requests = excluded.requests, load_ms = excluded.load_ms, size_bytes = excluded.size_bytes,
        first_seen = excluded.first_seen, last_arrival = excluded.last_arrival, updated_at = excluded.updated_at`);
  }

  /** Opens (creating and migrating) the usage tables in the database at `databasePath`. */
  static open(databasePath: string): SqliteUsageRepository {
    fs.mkdirSync(path.dirname(databasePath), { recursive: true });
    const db = new Database(databasePath);
    try {
      db.pragma("journal_mode = WAL");
      db.pragma("busy_timeout = 5000");
      db.pragma("synchronous = NORMAL");
      migrate(db);
      return new SqliteUsageRepository(db);
    } catch (error) {
      db.close();
      throw error;
    }
  }

  loadAll(): StoredModelUsage[] {
    let rows: Row[];
    try {
      rows = this.db.prepare("SELECT * FROM model_usage ORDER BY model").all() as Row[];
    } catch (error) {
      throw new UsageStoreCorruptError(`model_usage cannot be read: ${(error as Error).message}`);
    }
    return rows.map(fromRow);
  }

  save(records: readonly StoredModelUsage[]): void {
    if (this.closed || records.length === 0) return;
    this.db.transaction(() => {
      for (const r of records)
        this.upsert.run({
          model: r.model,
          layout: r.layout,
          gaps: JSON.stringify(r.gaps),
          hourly: JSON.stringify(r.hourly),
          requests: r.requests,
          load_ms: r.loadMs,
          size_bytes: r.sizeBytes,
          first_seen: r.firstSeen,
          last_arrival: r.lastArrival,
          updated_at: r.updatedAt,
        });
    })();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.db.close();
  }
}

function migrate(db: Database.Database): void {
  db.exec(`CREATE TABLE IF NOT EXISTS usage_schema_migrations (
    version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)`);
  const applied = new Set(
    (db.prepare("SELECT version FROM usage_schema_migrations").all() as { version: number }[]).map((r) => r.version),
  );
  for (const m of MIGRATIONS) {
    if (applied.has(m.version)) continue;
    db.transaction(() => {
      db.exec(m.sql);
      db.prepare("INSERT INTO usage_schema_migrations (version, name, applied_at) VALUES (?, ?, ?)").run(
        m.version,
        m.name,
        Date.now(),
      );
    })();
  }
}

function fromRow(row: Row): StoredModelUsage {
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
