import type pg from "pg";
import { migratePostgres, query } from "../db/postgres.js";
import { POSTGRES_RATE_LIMIT_MIGRATIONS } from "./postgres-migrations.js";
import type { AdmitRequest, AdmitResult, ChargeDelta, RateLimitStore } from "./shared-rate-limiter.js";

interface AdmitRow {
  ok: boolean;
  limited: AdmitResult["limited"];
  retry_ms: number;
  requests_level: number | null;
  tokens_level: number | null;
  day_used: number;
  day_reset_ms: number;
}

/** Cluster-wide rate limits in PostgreSQL: the functions of migration 1001 do the work, one round trip each. */
export class PostgresRateLimitStore implements RateLimitStore {
  private constructor(private readonly pool: pg.Pool) {}

  static async open(pool: pg.Pool): Promise<PostgresRateLimitStore> {
    await migratePostgres(pool, "security_schema_migrations", POSTGRES_RATE_LIMIT_MIGRATIONS);
    return new PostgresRateLimitStore(pool);
  }

  async admit(r: AdmitRequest): Promise<AdmitResult> {
    const { rows } = await query<AdmitRow>(this.pool, "SELECT * FROM llmos_rate_admit($1, $2, $3, $4, $5, $6, $7)", [
      r.keyId,
      r.rpm,
      r.tpm,
      r.tokensPerDay,
      r.estimate,
      r.minuteMs,
      r.dayMs,
    ]);
    const row = rows[0]!;
    return {
      ok: row.ok,
      limited: row.limited,
      retryMs: row.retry_ms,
      requestsLevel: row.requests_level,
      tokensLevel: row.tokens_level,
      dayUsed: Number(row.day_used),
      dayResetMs: row.day_reset_ms,
    };
  }

  async charge(deltas: readonly ChargeDelta[], periods: { minuteMs: number; dayMs: number }): Promise<void> {
    if (deltas.length === 0) return;
    await query(this.pool, "SELECT llmos_rate_charge($1::text[], $2::bigint[], $3, $4)", [
      deltas.map((d) => d.keyId),
      deltas.map((d) => d.tokens),
      periods.minuteMs,
      periods.dayMs,
    ]);
  }
}
