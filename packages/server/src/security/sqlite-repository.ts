import fs from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";
import type { AuditEntry, AuditInput, UsageRow } from "./records.js";
import { SQLITE_MIGRATIONS, type Migration } from "./sqlite-migrations.js";
import { SqliteResponseStore } from "./sqlite-responses.js";
import {
  auditFilter,
  auditLimit,
  fromAuditRow,
  fromKeyRow,
  fromUsageRow,
  KEY_COLUMNS,
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

/** Applies pending migrations in order, each in its own transaction. Returns the versions applied. */
export function migrate(db: Database.Database, migrations: readonly Migration[] = SQLITE_MIGRATIONS): number[] {
  db.exec(`CREATE TABLE IF NOT EXISTS security_schema_migrations (
    version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)`);
  const applied = new Set(
    (db.prepare("SELECT version FROM security_schema_migrations").all() as { version: number }[]).map((r) => r.version),
  );
  const done: number[] = [];
  for (const m of [...migrations].sort((a, b) => a.version - b.version)) {
    if (applied.has(m.version)) continue;
    db.transaction(() => {
      db.exec(m.sql);
      db.prepare("INSERT INTO security_schema_migrations (version, name, applied_at) VALUES (?, ?, ?)").run(
        m.version,
        m.name,
        Date.now(),
      );
    })();
    done.push(m.version);
  }
  return done;
}

/** SecurityRepository on a SQLite file (better-sqlite3, WAL mode so the CLI can open it while the daemon runs). */
export class SqliteSecurityRepository implements SecurityRepository {
  readonly keys: KeyStore;
  readonly usage: UsageStore;
  readonly audit: AuditStore;
  readonly responses: ResponseStore;
  private closed = false;

  private constructor(private readonly db: Database.Database) {
    this.keys = new SqliteKeyStore(db);
    this.usage = new SqliteUsageStore(db);
    this.audit = new SqliteAuditStore(db);
    this.responses = new SqliteResponseStore(db);
  }

  /** Opens (creating and migrating) the database at `databasePath`. The file is made owner-only (0600). */
  static open(databasePath: string): SqliteSecurityRepository {
    fs.mkdirSync(path.dirname(databasePath), { recursive: true });
    const existed = fs.existsSync(databasePath);
    const db = new Database(databasePath);
    try {
      db.pragma("journal_mode = WAL");
      db.pragma("busy_timeout = 5000");
      db.pragma("synchronous = NORMAL");
      if (!existed) {
        try {
          fs.chmodSync(databasePath, 0o600);
        } catch {
          // Best effort (e.g. filesystems without modes); the hashes inside are not secrets on their own.
        }
      }
      migrate(db);
    } catch (error) {
      db.close();
      throw error;
    }
    return new SqliteSecurityRepository(db);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.db.close();
  }
}

class SqliteKeyStore implements KeyStore {
  private readonly insertStmt;
  private readonly getStmt;
  private readonly listStmt;
  private readonly updateSecretStmt;
  private readonly revokeStmt;
  private readonly countStmt;

  constructor(db: Database.Database) {
    this.insertStmt = db.prepare(
      `INSERT INTO api_keys (${KEY_COLUMNS.join(", ")}) VALUES (${KEY_COLUMNS.map((c) => `@${c}`).join(", ")})`,
    );
    this.getStmt = db.prepare("SELECT * FROM api_keys WHERE id = ?");
    this.listStmt = db.prepare("SELECT * FROM api_keys ORDER BY created_at, id");
    this.updateSecretStmt = db.prepare(
      "UPDATE api_keys SET secret_hash = ?, rotated_at = ? WHERE id = ? AND revoked_at IS NULL",
    );
    this.revokeStmt = db.prepare("UPDATE api_keys SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?");
    this.countStmt = db.prepare("SELECT COUNT(*) AS n FROM api_keys WHERE revoked_at IS NULL");
  }

  async insert(key: StoredKey): Promise<void> {
    this.insertStmt.run(toKeyRow(key));
  }

  async get(id: string): Promise<StoredKey | undefined> {
    const row = this.getStmt.get(id) as KeyRow | undefined;
    return row ? fromKeyRow(row) : undefined;
  }

  async list(): Promise<StoredKey[]> {
    return (this.listStmt.all() as KeyRow[]).map(fromKeyRow);
  }

  async updateSecret(id: string, secretHash: string, rotatedAt: number): Promise<boolean> {
    return this.updateSecretStmt.run(secretHash, rotatedAt, id).changes > 0;
  }

  async revoke(id: string, revokedAt: number): Promise<boolean> {
    return this.revokeStmt.run(revokedAt, id).changes > 0;
  }

  async countActive(): Promise<number> {
    return (this.countStmt.get() as { n: number }).n;
  }
}

class SqliteUsageStore implements UsageStore {
  private readonly addMany: (deltas: readonly UsageDelta[]) => void;
  private readonly dayStmt;

  constructor(private readonly db: Database.Database) {
    const upsert = db.prepare(`INSERT INTO usage_daily (key_id, model, day, prompt_tokens, completion_tokens, requests)
      VALUES (?, ?, ?, ?, ?, ?)
      ON CONFLICT (key_id, model, day) DO UPDATE SET
        prompt_tokens = usage_daily.prompt_tokens + excluded.prompt_tokens,
        completion_tokens = usage_daily.completion_tokens + excluded.completion_tokens,
        requests = usage_daily.requests + excluded.requests`);
    this.addMany = db.transaction((deltas: readonly UsageDelta[]) => {
      for (const d of deltas)
        upsert.run(d.keyId ?? NO_KEY, d.model, d.day, d.promptTokens, d.completionTokens, d.requests);
    });
    this.dayStmt = db.prepare(
      "SELECT COALESCE(SUM(prompt_tokens + completion_tokens), 0) AS n FROM usage_daily WHERE key_id = ? AND day = ?",
    );
  }

  async add(deltas: readonly UsageDelta[]): Promise<void> {
    if (deltas.length > 0) this.addMany(deltas);
  }

  async query(q: UsageQuery): Promise<UsageRow[]> {
    const { where, args } = usageFilter(q, () => "?");
    const sql = `SELECT key_id, model, day, prompt_tokens, completion_tokens, requests FROM usage_daily
      ${where} ORDER BY day, key_id, model`;
    return (this.db.prepare(sql).all(...args) as UsageDbRow[]).map(fromUsageRow);
  }

  async tokensOnDay(keyId: string, day: string): Promise<number> {
    return (this.dayStmt.get(keyId, day) as { n: number }).n;
  }
}

class SqliteAuditStore implements AuditStore {
  private readonly appendMany: (entries: readonly (AuditInput & { time: number })[]) => void;

  constructor(private readonly db: Database.Database) {
    const insert =
      db.prepare(`INSERT INTO audit_log (occurred_at, key_id, action, target, result, remote_address, details)
      VALUES (?, ?, ?, ?, ?, ?, ?)`);
    this.appendMany = db.transaction((entries: readonly (AuditInput & { time: number })[]) => {
      for (const e of entries) {
        insert.run(
          e.time,
          e.keyId ?? null,
          e.action,
          e.target ?? null,
          e.result,
          e.remoteAddress ?? null,
          e.details ? JSON.stringify(e.details) : null,
        );
      }
    });
  }

  async append(entries: readonly (AuditInput & { time: number })[]): Promise<void> {
    if (entries.length > 0) this.appendMany(entries);
  }

  async query(q: AuditQuery): Promise<AuditEntry[]> {
    const { where, args } = auditFilter(q, () => "?");
    const sql = `SELECT * FROM audit_log ${where} ORDER BY id DESC LIMIT ${auditLimit(q)}`;
    return (this.db.prepare(sql).all(...args) as AuditRow[]).map(fromAuditRow);
  }
}
