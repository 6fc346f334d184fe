import type pg from "pg";
import { inTransaction, migratePostgres, query, type PgMigration } from "../db/postgres.js";
import { UsageStoreCorruptError, type StoredModelUsage, type UsageMerge, type UsageRepository } from "./repository.js";
import { USAGE_COLUMNS, fromRow, rowValues, toRow, upsertSql, type UsageRow } from "./usage-rows.js";

/**
 * The usage tables in PostgreSQL's dialect, with the same version numbers as SQLite's (recorded in
 * `usage_schema_migrations`, apart from the security tables'). Append only. DOUBLE PRECISION where SQLite says
 * REAL (PostgreSQL's REAL has 4 bytes).
 */
const MIGRATIONS: readonly PgMigration[] = [
  {
    version: 1,
    name: "model usage",
    sql: `
      CREATE TABLE model_usage (
        model TEXT PRIMARY KEY,
        layout INTEGER NOT NULL,
        gaps TEXT NOT NULL,
        hourly TEXT NOT NULL,
        requests DOUBLE PRECISION NOT NULL,
        load_ms DOUBLE PRECISION,
        size_bytes BIGINT,
        first_seen BIGINT NOT NULL,
        last_arrival BIGINT,
        updated_at BIGINT NOT NULL
      );
    `,
  },
];

const COLUMNS = USAGE_COLUMNS.join(", ");
const PARAMS = USAGE_COLUMNS.map((_, i) => `$${i + 1}`).join(", ");
const UPSERT = upsertSql((_, i) => `$${i + 1}`);

/**
 * The usage records of a cluster, in the PostgreSQL database every node shares (the cluster's pool): one record per
 * model for the whole cluster. `add` locks the model's row (`SELECT ... FOR UPDATE`; a first record is inserted
 * with `ON CONFLICT DO NOTHING` and locked after), merges in the application and writes it back, so two nodes
 * adding to one model at once both count; rows are locked in model order, so two nodes never wait on each other in
 * a circle. An unreachable database surfaces as `unavailable` (the usage model logs it and keeps its samples).
 */
export class PostgresUsageRepository implements UsageRepository {
  private closed = false;

  private constructor(
    private readonly pool: pg.Pool,
    private readonly ownsPool: boolean,
  ) {}

  /** Migrates the usage tables and returns the repository. `ownsPool`: `close()` ends the pool too. */
  static async open(pool: pg.Pool, options: { ownsPool?: boolean } = {}): Promise<PostgresUsageRepository> {
    await migratePostgres(pool, "usage_schema_migrations", MIGRATIONS);
    return new PostgresUsageRepository(pool, options.ownsPool ?? false);
  }

  async loadAll(): Promise<StoredModelUsage[]> {
    let rows: UsageRow[];
    try {
      rows = (await query<UsageRow>(this.pool, `SELECT ${COLUMNS} FROM model_usage ORDER BY model`)).rows;
    } catch (error) {
      if (error instanceof Error && "code" in error && error.code === "42P01")
        throw new UsageStoreCorruptError(`model_usage cannot be read: ${error.message}`);
      throw error;
    }
    return rows.map(fromRow);
  }

  async add(batches: readonly StoredModelUsage[], merge: UsageMerge): Promise<StoredModelUsage[]> {
    if (this.closed || batches.length === 0) return [];
    const ordered = [...batches].sort((a, b) => (a.model < b.model ? -1 : a.model > b.model ? 1 : 0));
    return inTransaction(this.pool, async (client) => {
      const out: StoredModelUsage[] = [];
      for (const batch of ordered) {
        let stored = await this.locked(client, batch.model);
        if (!stored) {
          const first = merge(undefined, batch);
          const inserted = await client.query(
            `INSERT INTO model_usage (${COLUMNS}) VALUES (${PARAMS}) ON CONFLICT (model) DO NOTHING`,
            rowValues(toRow(first)),
          );
          if (inserted.rowCount === 1) {
            out.push(first);
            continue;
          }
          // Another node inserted it first (and committed: the insert waited for it); merge into theirs.
          stored = await this.locked(client, batch.model);
        }
        const merged = merge(stored, batch);
        await client.query(UPSERT, rowValues(toRow(merged)));
        out.push(merged);
      }
      return out;
    });
  }

  async save(records: readonly StoredModelUsage[]): Promise<void> {
    if (this.closed || records.length === 0) return;
    await inTransaction(this.pool, async (client) => {
      for (const r of records) await client.query(UPSERT, rowValues(toRow(r)));
    });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.ownsPool) await this.pool.end();
  }

  /** The model's record, its row locked until the transaction ends; undefined when there is none. */
  private async locked(client: pg.PoolClient, model: string): Promise<StoredModelUsage | undefined> {
    const r = await client.query<UsageRow>(`SELECT ${COLUMNS} FROM model_usage WHERE model = $1 FOR UPDATE`, [model]);
    return r.rows[0] ? fromRow(r.rows[0]) : undefined;
  }
}
