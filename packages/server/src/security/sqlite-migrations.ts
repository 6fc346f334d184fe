/**
 * Numbered schema migrations of the security tables (SQLite dialect). Append only: never edit a migration
 * that has shipped; add the next number. A PostgreSQL implementation keeps the same numbers with its own
 * dialect (BIGSERIAL for AUTOINCREMENT, a trigger function for the append-only guard).
 */
export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const SQLITE_MIGRATIONS: readonly Migration[] = [
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
        tokens_per_day INTEGER,
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
        id INTEGER PRIMARY KEY AUTOINCREMENT,
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
      CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
      CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
        BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END;
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
