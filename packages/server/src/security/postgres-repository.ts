import type pg from "pg";
import { CLUSTER_CHANNEL, inTransaction, migratePostgres, query } from "../db/postgres.js";
import type { AuditEntry, AuditInput, UsageRow } from "./records.js";
import { POSTGRES_MIGRATIONS } from "./postgres-migrations.js";
import { PostgresResponseStore } from "./postgres-responses.js";
import {
  auditFilter,
  auditLimit,
  fromAuditRow,
  fromKeyRow,
  fromUsageRow,
  KEY_COLUMNS,
  keyValues,
  NO_KEY,
  toKeyRow,
  usageFilter,
  type AuditRow,
  type KeyRow,
  type UsageDbRow,
} from "./security-rows.js";
import type {
  AuditQuery,
  AuditStore,
  KeyStore,
  ResponseStore,
  SecurityRepository,
  StoredKey,
  UsageDelta,
  UsageQuery,
  UsageStore,
} from "./repository.js";

/** The event published on the cluster channel when a key is revoked or rotated, so nodes drop cached copies. */
export interface KeyChangedEvent {
  type: "key.changed";
  id: string;
}

/**
 * SecurityRepository on PostgreSQL (the `pg` pool the cluster shares), used in cluster mode so every node sees the
 * same keys, usage, audit log and stored responses. Same tables, numbers and semantics as the SQLite implementation; changes to a key
 * are announced with NOTIFY on the cluster channel in the same transaction, so other nodes drop their cached copy.
 * An unreachable database surfaces as `unavailable` (503).
 */
export class PostgresSecurityRepository implements SecurityRepository {
  readonly keys: KeyStore;
  readonly usage: UsageStore;
  readonly audit: AuditStore;
  readonly responses: ResponseStore;
  private closed = false;

  private constructor(
    private readonly pool: pg.Pool,
    private readonly ownsPool: boolean,
  ) {
    this.keys = new PostgresKeyStore(pool);
    this.usage = new PostgresUsageStore(pool);
    this.audit = new PostgresAuditStore(pool);
    this.responses = new PostgresResponseStore(pool);
  }

  /** Migrates the security tables and returns the repository. `ownsPool`: `close()` ends the pool too. */
  static async open(pool: pg.Pool, options: { ownsPool?: boolean } = {}): Promise<PostgresSecurityRepository> {
    await migratePostgres(pool, "security_schema_migrations", POSTGRES_MIGRATIONS);
    return new PostgresSecurityRepository(pool, options.ownsPool ?? false);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.ownsPool) await this.pool.end();
  }
}

class PostgresKeyStore implements KeyStore {
  constructor(private readonly pool: pg.Pool) {}

  async insert(key: StoredKey): Promise<void> {
    await query(
      this.pool,
      `INSERT INTO api_keys (${KEY_COLUMNS.join(", ")}) VALUES (${KEY_COLUMNS.map((_, i) => `$${i + 1}`).join(", ")})`,
      keyValues(toKeyRow(key)),
    );
  }

  async get(id: string): Promise<StoredKey | undefined> {
    const { rows } = await query<KeyRow>(this.pool, "SELECT * FROM api_keys WHERE id = $1", [id]);
    return rows[0] ? fromKeyRow(rows[0]) : undefined;
  }

  async list(): Promise<StoredKey[]> {
    const { rows } = await query<KeyRow>(this.pool, "SELECT * FROM api_keys ORDER BY created_at, id");
    return rows.map(fromKeyRow);
  }

  async updateSecret(id: string, secretHash: string, rotatedAt: number): Promise<boolean> {
    return this.changeAndNotify(
      "UPDATE api_keys SET secret_hash = $2, rotated_at = $3 WHERE id = $1 AND revoked_at IS NULL RETURNING id",
      [id, secretHash, rotatedAt],
    );
  }

  async revoke(id: string, revokedAt: number): Promise<boolean> {
    return this.changeAndNotify(
      "UPDATE api_keys SET revoked_at = COALESCE(revoked_at, $2) WHERE id = $1 RETURNING id",
      [id, revokedAt],
    );
  }

  async countActive(): Promise<number> {
    const { rows } = await query<{ n: number }>(
      this.pool,
      "SELECT COUNT(*)::int AS n FROM api_keys WHERE revoked_at IS NULL",
    );
    return rows[0]?.n ?? 0;
  }

  /** Runs an UPDATE ... RETURNING id and, when it changed a row, NOTIFYs the change in the same transaction. */
  private async changeAndNotify(sql: string, values: unknown[]): Promise<boolean> {
    return inTransaction(this.pool, async (client) => {
      const { rows } = await client.query<{ id: string }>(sql, values);
      for (const row of rows) {
        const event: KeyChangedEvent = { type: "key.changed", id: row.id };
        await client.query("SELECT pg_notify($1, $2)", [CLUSTER_CHANNEL, JSON.stringify(event)]);
      }
      return rows.length > 0;
    });
  }
}

class PostgresUsageStore implements UsageStore {
  constructor(private readonly pool: pg.Pool) {}

  async add(deltas: readonly UsageDelta[]): Promise<void> {
    if (deltas.length === 0) return;
    // One statement for the batch: arrays unnested into rows, upserted (adds to what other nodes wrote).
    await query(
      this.pool,
      `INSERT INTO usage_daily (key_id, model, day, prompt_tokens, completion_tokens, requests)
        SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::bigint[])
        ON CONFLICT (key_id, model, day) DO UPDATE SET
          prompt_tokens = usage_daily.prompt_tokens + excluded.prompt_tokens,
          completion_tokens = usage_daily.completion_tokens + excluded.completion_tokens,
          requests = usage_daily.requests + excluded.requests`,
      [
        deltas.map((d) => d.keyId ?? NO_KEY),
        deltas.map((d) => d.model),
        deltas.map((d) => d.day),
        deltas.map((d) => d.promptTokens),
        deltas.map((d) => d.completionTokens),
        deltas.map((d) => d.requests),
      ],
    );
  }

  async query(q: UsageQuery): Promise<UsageRow[]> {
    const { where, args } = usageFilter(q, (n) => `$${n}`);
    const { rows } = await query<UsageDbRow>(
      this.pool,
      `SELECT key_id, model, day, prompt_tokens, completion_tokens, requests FROM usage_daily
        ${where} ORDER BY day, key_id, model`,
      args,
    );
    return rows.map(fromUsageRow);
  }

  async tokensOnDay(keyId: string, day: string): Promise<number> {
    const { rows } = await query<{ n: number }>(
      this.pool,
      "SELECT COALESCE(SUM(prompt_tokens + completion_tokens), 0)::bigint AS n FROM usage_daily WHERE key_id = $1 AND day = $2",
      [keyId, day],
    );
    return rows[0]?.n ?? 0;
  }
}

class PostgresAuditStore implements AuditStore {
  constructor(private readonly pool: pg.Pool) {}

  async append(entries: readonly (AuditInput & { time: number })[]): Promise<void> {
    if (entries.length === 0) return;
    await query(
      this.pool,
      `INSERT INTO audit_log (occurred_at, key_id, action, target, result, remote_address, details)
        SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[])`,
      [
        entries.map((e) => e.time),
        entries.map((e) => e.keyId ?? null),
        entries.map((e) => e.action),
        entries.map((e) => e.target ?? null),
        entries.map((e) => e.result),
        entries.map((e) => e.remoteAddress ?? null),
        entries.map((e) => (e.details ? JSON.stringify(e.details) : null)),
      ],
    );
  }

  async query(q: AuditQuery): Promise<AuditEntry[]> {
    const { where, args } = auditFilter(q, (n) => `$${n}`);
    const { rows } = await query<AuditRow>(
      this.pool,
      `SELECT * FROM audit_log ${where} ORDER BY id DESC LIMIT ${auditLimit(q)}`,
      args,
    );
    return rows.map(fromAuditRow);
  }
}
