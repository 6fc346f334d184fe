import type pg from "pg";
import { query } from "../db/postgres.js";
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

/**
 * Stored `/v1/responses` responses in PostgreSQL (cluster mode): the same table and JSON text columns as SQLite, so
 * a response created through one node is found by `previous_response_id` on any other.
 */
export class PostgresResponseStore implements ResponseStore {
  constructor(private readonly pool: pg.Pool) {}

  async insert(r: StoredResponse): Promise<void> {
    await query(
      this.pool,
      `INSERT INTO stored_responses (id, key_id, model, created_at, expires_at, response, conversation)
        VALUES ($1, $2, $3, $4, $5, $6, $7)`,
      [r.id, r.keyId, r.model, r.createdAt, r.expiresAt, JSON.stringify(r.response), JSON.stringify(r.conversation)],
    );
  }

  async get(id: string, now: number): Promise<StoredResponse | undefined> {
    const { rows } = await query<ResponseRow>(
      this.pool,
      "SELECT * FROM stored_responses WHERE id = $1 AND expires_at > $2",
      [id, now],
    );
    const row = rows[0];
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
    return ((await query(this.pool, "DELETE FROM stored_responses WHERE id = $1", [id])).rowCount ?? 0) > 0;
  }

  async deleteExpired(now: number): Promise<number> {
    return (await query(this.pool, "DELETE FROM stored_responses WHERE expires_at <= $1", [now])).rowCount ?? 0;
  }
}
