import type Database from "better-sqlite3";
import type { ResponseStore, StoredResponse } from "./repository.js";

interface ResponseRow {
  id: string;
  key_id: string | null;
  model: string;
  created_at: number;
  expires_at: number;
  response: string;
  conversation: string;
}

/** Stored `/v1/responses` responses in SQLite (JSON text columns, epoch-ms times, like the other tables). */
export class SqliteResponseStore implements ResponseStore {
  private readonly insertStmt;
  private readonly getStmt;
  private readonly deleteStmt;
  private readonly expireStmt;

  constructor(db: Database.Database) {
    this.insertStmt = db.prepare(`INSERT INTO stored_responses
      (id, key_id, model, created_at, expires_at, response, conversation)
      VALUES (@id, @key_id, @model, @created_at, @expires_at, @response, @conversation)`);
    this.getStmt = db.prepare("SELECT * FROM stored_responses WHERE id = ? AND expires_at > ?");
    this.deleteStmt = db.prepare("DELETE FROM stored_responses WHERE id = ?");
    this.expireStmt = db.prepare("DELETE FROM stored_responses WHERE expires_at <= ?");
  }

  async insert(r: StoredResponse): Promise<void> {
    this.insertStmt.run({
      id: r.id,
      key_id: r.keyId,
      model: r.model,
      created_at: r.createdAt,
      expires_at: r.expiresAt,
      response: JSON.stringify(r.response),
      conversation: JSON.stringify(r.conversation),
    });
  }

  async get(id: string, now: number): Promise<StoredResponse | undefined> {
    const row = this.getStmt.get(id, now) as ResponseRow | undefined;
    if (!row) return undefined;
    return {
      id: row.id,
      keyId: row.key_id,
      model: row.model,
      createdAt: row.created_at,
      expiresAt: row.expires_at,
      response: JSON.parse(row.response),
      conversation: JSON.parse(row.conversation),
    };
  }

  async delete(id: string): Promise<boolean> {
    return this.deleteStmt.run(id).changes > 0;
  }

  async deleteExpired(now: number): Promise<number> {
    return this.expireStmt.run(now).changes;
  }
}
