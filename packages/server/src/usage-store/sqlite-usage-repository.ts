import fs from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";
import { UsageStoreCorruptError, type StoredModelUsage, type UsageMerge, type UsageRepository } from "./repository.js";
import { fromRow, toRow, upsertSql, type UsageRow } from "./usage-rows.js";

/**
 * Numbered migrations of the usage tables (SQLite dialect), with their own version table so that they never
 * interleave with the security tables' migrations in the same database. Append only; PostgreSQL's list
 * (postgres-usage-repository.ts) keeps the same numbers.
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

/** The usage records in a SQLite file (the daemon's `llmos.db`, beside the security tables; WAL mode). */
export class SqliteUsageRepository implements UsageRepository {
  private closed = false;
  private readonly upsert;
  private readonly selectOne;

  private constructor(private readonly db: Database.Database) {
    this.upsert = db.prepare(upsertSql((column) => `@${column}`));
    this.selectOne = db.prepare("SELECT * FROM model_usage WHERE model = ?");
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

  loadAll(): Promise<StoredModelUsage[]> {
    let rows: UsageRow[];
    try {
      rows = this.db.prepare("SELECT * FROM model_usage ORDER BY model").all() as UsageRow[];
    } catch (error) {
      return Promise.reject(new UsageStoreCorruptError(`model_usage cannot be read: ${(error as Error).message}`));
    }
    try {
      return Promise.resolve(rows.map(fromRow));
    } catch (error) {
      return Promise.reject(error as Error);
    }
  }

  add(batches: readonly StoredModelUsage[], merge: UsageMerge): Promise<StoredModelUsage[]> {
    if (this.closed || batches.length === 0) return Promise.resolve([]);
    try {
      // IMMEDIATE: the write lock is taken before the read, so another connection cannot merge in between.
      const merged = this.db
        .transaction(() =>
          batches.map((b) => {
            const row = this.selectOne.get(b.model) as UsageRow | undefined;
            const record = merge(row ? fromRow(row) : undefined, b);
            this.upsert.run(toRow(record));
            return record;
          }),
        )
        .immediate();
      return Promise.resolve(merged);
    } catch (error) {
      return Promise.reject(error as Error);
    }
  }

  save(records: readonly StoredModelUsage[]): Promise<void> {
    if (this.closed || records.length === 0) return Promise.resolve();
    try {
      this.db.transaction(() => {
        for (const r of records) this.upsert.run(toRow(r));
      })();
      return Promise.resolve();
    } catch (error) {
      return Promise.reject(error as Error);
    }
  }

  close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      this.db.close();
    }
    return Promise.resolve();
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
