/**
 * The security tables in PostgreSQL's dialect, with the same version numbers as `sqlite-migrations.ts` (recorded in
 * `security_schema_migrations`). Append only: never edit a migration that has shipped; add the next number, in both
 * dialects. Differences: BIGSERIAL for AUTOINCREMENT, a trigger function for the append-only guard.
 */
import type { PgMigration } from "../db/postgres.js";

export const POSTGRES_MIGRATIONS: readonly PgMigration[] = [
  {
    version: 1,
    name: "keys, usage, audit",
    sql: `
      CREATE TABLE api_keys (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        secret_hash TEXT NOT NULL,
        scopes TEXT NOT NULL,
        models TEXT,
        rpm INTEGER,
        tpm INTEGER,
        tokens_per_day BIGINT,
        created_at BIGINT NOT NULL,
        expires_at BIGINT,
        revoked_at BIGINT,
        rotated_at BIGINT
      );
      CREATE TABLE usage_daily (
        key_id TEXT NOT NULL,
        model TEXT NOT NULL,
        day TEXT NOT NULL,
        prompt_tokens BIGINT NOT NULL DEFAULT 0,
        completion_tokens BIGINT NOT NULL DEFAULT 0,
        requests BIGINT NOT NULL DEFAULT 0,
        PRIMARY KEY (key_id, model, day)
      );
      CREATE INDEX usage_daily_day ON usage_daily (day);
      CREATE TABLE audit_log (
        id BIGSERIAL PRIMARY KEY,
        occurred_at BIGINT NOT NULL,
        key_id TEXT,
        action TEXT NOT NULL,
        target TEXT,
        result TEXT NOT NULL,
        remote_address TEXT,
        details TEXT
      );
      CREATE INDEX audit_log_time ON audit_log (occurred_at);
      CREATE INDEX audit_log_action_time ON audit_log (action, occurred_at);
    `,
  },
  {
    version: 2,
    name: "audit log is append-only",
    sql: `
      CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN RAISE EXCEPTION 'audit_log is append-only'; END $$;
      CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log
        FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
    `,
  },
  {
    version: 3,
    name: "stored responses",
    sql: `
      CREATE TABLE stored_responses (
        id TEXT PRIMARY KEY,
        key_id TEXT,
        model TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        expires_at BIGINT NOT NULL,
        response TEXT NOT NULL,
        conversation TEXT NOT NULL
      );
      CREATE INDEX stored_responses_expiry ON stored_responses (expires_at);
    `,
  },
];

/**
 * Cluster-wide rate limits (PostgreSQL only, so numbered from 1001: the numbers below 1000 are shared with SQLite).
 * Buckets refill by the database's clock, so every node sees the same time; `llmos_rate_admit` checks and takes in
 * one statement under row locks (exact), `llmos_rate_charge` adds the tokens nodes charge in batches.
 */
export const POSTGRES_RATE_LIMIT_MIGRATIONS: readonly PgMigration[] = [
  {
    version: 1001,
    name: "cluster-wide rate limits",
    sql: `
      CREATE TABLE rate_buckets (
        key_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        level DOUBLE PRECISION NOT NULL,
        updated_ms DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (key_id, kind)
      );
      CREATE TABLE rate_daily_tokens (
        key_id TEXT NOT NULL,
        day BIGINT NOT NULL,
        used BIGINT NOT NULL,
        PRIMARY KEY (key_id, day)
      );
      CREATE FUNCTION llmos_rate_admit(
        p_key TEXT, p_rpm DOUBLE PRECISION, p_tpm DOUBLE PRECISION, p_tpd BIGINT, p_estimate DOUBLE PRECISION,
        p_minute_ms DOUBLE PRECISION, p_day_ms DOUBLE PRECISION)
      RETURNS TABLE (ok BOOLEAN, limited TEXT, retry_ms DOUBLE PRECISION, requests_level DOUBLE PRECISION,
                     tokens_level DOUBLE PRECISION, day_used BIGINT, day_reset_ms DOUBLE PRECISION)
      LANGUAGE plpgsql AS $$
      DECLARE
        now_ms DOUBLE PRECISION := extract(epoch FROM clock_timestamp()) * 1000;
        day_idx BIGINT := floor(now_ms / p_day_ms);
        reset_ms DOUBLE PRECISION := (floor(now_ms / p_day_ms) + 1) * p_day_ms - now_ms;
        r_level DOUBLE PRECISION;
        t_level DOUBLE PRECISION;
        used BIGINT := 0;
        need DOUBLE PRECISION;
      BEGIN
        IF p_rpm IS NOT NULL THEN
          INSERT INTO rate_buckets VALUES (p_key, 'requests', p_rpm, now_ms) ON CONFLICT DO NOTHING;
          SELECT LEAST(p_rpm, b.level + GREATEST(0, now_ms - b.updated_ms) * p_rpm / p_minute_ms) INTO r_level
            FROM rate_buckets b WHERE b.key_id = p_key AND b.kind = 'requests' FOR UPDATE;
        END IF;
        IF p_tpm IS NOT NULL THEN
          INSERT INTO rate_buckets VALUES (p_key, 'tokens', p_tpm, now_ms) ON CONFLICT DO NOTHING;
          SELECT LEAST(p_tpm, b.level + GREATEST(0, now_ms - b.updated_ms) * p_tpm / p_minute_ms) INTO t_level
            FROM rate_buckets b WHERE b.key_id = p_key AND b.kind = 'tokens';
        END IF;
        IF p_tpd IS NOT NULL THEN
          SELECT COALESCE((SELECT d.used FROM rate_daily_tokens d WHERE d.key_id = p_key AND d.day = day_idx), 0)
            INTO used;
          need := GREATEST(1, LEAST(p_estimate, p_tpd));
          IF p_tpd - used < need THEN
            RETURN QUERY SELECT false, 'tokens_per_day'::TEXT, reset_ms, r_level, t_level, used, reset_ms;
            RETURN;
          END IF;
        END IF;
        IF p_rpm IS NOT NULL AND r_level < 1 THEN
          RETURN QUERY SELECT false, 'requests'::TEXT, (1 - r_level) * p_minute_ms / p_rpm, r_level, t_level, used,
            reset_ms;
          RETURN;
        END IF;
        IF p_tpm IS NOT NULL THEN
          need := GREATEST(1, LEAST(p_estimate, p_tpm));
          IF t_level < need THEN
            RETURN QUERY SELECT false, 'tokens'::TEXT, (need - t_level) * p_minute_ms / p_tpm, r_level, t_level, used,
              reset_ms;
            RETURN;
          END IF;
        END IF;
        IF p_rpm IS NOT NULL THEN
          r_level := r_level - 1;
          UPDATE rate_buckets SET level = r_level, updated_ms = now_ms WHERE key_id = p_key AND kind = 'requests';
        END IF;
        RETURN QUERY SELECT true, NULL::TEXT, 0::DOUBLE PRECISION, r_level, t_level, used, reset_ms;
      END $$;
      CREATE FUNCTION llmos_rate_charge(p_keys TEXT[], p_tokens BIGINT[], p_minute_ms DOUBLE PRECISION,
        p_day_ms DOUBLE PRECISION)
      RETURNS void LANGUAGE plpgsql AS $$
      DECLARE
        now_ms DOUBLE PRECISION := extract(epoch FROM clock_timestamp()) * 1000;
        day_idx BIGINT := floor(now_ms / p_day_ms);
        v_tpm DOUBLE PRECISION;
        v_tpd BIGINT;
        i INTEGER;
      BEGIN
        FOR i IN 1 .. coalesce(array_length(p_keys, 1), 0) LOOP
          -- The limits come from the key itself: the node that ran a forwarded request may never have admitted one.
          SELECT k.tpm, k.tokens_per_day INTO v_tpm, v_tpd FROM api_keys k WHERE k.id = p_keys[i];
          IF v_tpm IS NOT NULL THEN
            INSERT INTO rate_buckets VALUES (p_keys[i], 'tokens', v_tpm, now_ms) ON CONFLICT DO NOTHING;
            UPDATE rate_buckets b
              SET level = LEAST(v_tpm, b.level + GREATEST(0, now_ms - b.updated_ms) * v_tpm / p_minute_ms)
                          - p_tokens[i],
                  updated_ms = now_ms
              WHERE b.key_id = p_keys[i] AND b.kind = 'tokens';
          END IF;
          IF v_tpd IS NOT NULL THEN
            INSERT INTO rate_daily_tokens VALUES (p_keys[i], day_idx, p_tokens[i])
              ON CONFLICT (key_id, day) DO UPDATE SET used = rate_daily_tokens.used + excluded.used;
          END IF;
        END LOOP;
      END $$;
    `,
  },
];
