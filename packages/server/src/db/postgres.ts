/**
 * PostgreSQL access shared by the security repository and the cluster: one connection pool per daemon, numbered
 * migrations applied by one node at a time, and database errors mapped to llmos errors (an unreachable database is
 * `unavailable`, 503). Nothing here knows a table of its own.
 */
import pg from "pg";
import { LlmosError } from "../errors.js";

/** The channel every cluster event (node joined or left, model loaded, key changed) is published on. */
export const CLUSTER_CHANNEL = "llmos_cluster";

/** BIGINT columns hold epoch milliseconds and counts, all far below 2^53: read them as numbers, not strings. */
const types = {
  getTypeParser: ((oid: number, format?: "text" | "binary") =>
    oid === pg.types.builtins.INT8
      ? (value: string) => Number(value)
      : pg.types.getTypeParser(oid, format as "text")) as typeof pg.types.getTypeParser,
};

/** Options of {@link openPool}. */
export interface PoolOptions {
  /** Shown in `pg_stat_activity` (`llmos:<node>`). */
  applicationName: string;
  /** Connections at most. Default 10. */
  max?: number;
  /** Fail a connection attempt after this long. Default 2 s, so an outage is noticed quickly. */
  connectTimeoutMs?: number;
  /** Called with errors of idle connections (the database restarted); they are otherwise harmless. */
  onIdleError?: (error: Error) => void;
}

/** A connection pool on `url`. Queries fail fast while the database is unreachable. */
export function openPool(url: string, options: PoolOptions): pg.Pool {
  const pool = new pg.Pool({
    connectionString: url,
    application_name: options.applicationName,
    max: options.max ?? 10,
    connectionTimeoutMillis: options.connectTimeoutMs ?? 2000,
    idleTimeoutMillis: 30_000,
    // A query that hangs (a database that stopped answering) must not hold a request forever.
    query_timeout: 10_000,
    types,
  });
  pool.on("error", (error) => options.onIdleError?.(error));
  return pool;
}

/** One dedicated connection (not from the pool), for a session that must live on: locks and LISTEN. */
export function openClient(url: string, applicationName: string, connectTimeoutMs = 2000): pg.Client {
  return new pg.Client({
    connectionString: url,
    application_name: applicationName,
    connectionTimeoutMillis: connectTimeoutMs,
    keepAlive: true,
    types,
  });
}

/** A numbered schema step; append only (see security/repository.ts for the rules SQL follows). */
export interface PgMigration {
  version: number;
  name: string;
  sql: string;
}

/**
 * Applies the migrations not yet recorded in `table`, each in its own transaction. Nodes starting together take
 * turns: every transaction first takes an advisory lock on the table's name, so one node migrates and the others
 * find the work done. Returns the versions this call applied.
 */
export async function migratePostgres(
  pool: pg.Pool,
  table: string,
  migrations: readonly PgMigration[],
): Promise<number[]> {
  if (!/^[a-z_]+$/.test(table)) throw new Error(`bad migrations table name ${table}`);
  const done: number[] = [];
  for (const m of [...migrations].sort((a, b) => a.version - b.version)) {
    const client = await pool.connect();
    try {
      await client.query("BEGIN");
      await client.query("SELECT pg_advisory_xact_lock(hashtext($1))", [table]);
      await client.query(`CREATE TABLE IF NOT EXISTS ${table} (
        version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)`);
      const seen = await client.query(`SELECT 1 FROM ${table} WHERE version = $1`, [m.version]);
      if (seen.rowCount === 0) {
        await client.query(m.sql);
        await client.query(`INSERT INTO ${table} (version, name, applied_at) VALUES ($1, $2, $3)`, [
          m.version,
          m.name,
          Date.now(),
        ]);
        done.push(m.version);
      }
      await client.query("COMMIT");
    } catch (error) {
      await client.query("ROLLBACK").catch(() => undefined);
      throw asLlmosError(error);
    } finally {
      client.release();
    }
  }
  return done;
}

/** SQLSTATE classes and socket errors that mean "the database cannot be reached", not "the query is wrong". */
const CONNECTION_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EPIPE",
  "ENOTFOUND",
  "EHOSTUNREACH",
  "57P01", // admin_shutdown
  "57P02", // crash_shutdown
  "57P03", // cannot_connect_now
  "53300", // too_many_connections
]);

/** True when `error` says the database is unreachable (or going away), so a retry elsewhere or later may work. */
export function isConnectionError(error: unknown): boolean {
  const e = error as { code?: string; message?: string } | undefined;
  if (!e || typeof e !== "object") return false;
  if (e.code && (CONNECTION_CODES.has(e.code) || e.code.startsWith("08"))) return true;
  return /timeout|Connection terminated|not queryable|Client was closed|Cannot use a pool after calling end/i.test(
    e.message ?? "",
  );
}

/** Database errors as llmos errors: unreachable is `unavailable` (503); anything else stays an internal error. */
export function asLlmosError(error: unknown): unknown {
  if (error instanceof LlmosError) return error;
  if (isConnectionError(error))
    return new LlmosError("unavailable", "the cluster database is unreachable; try again shortly", undefined, {
      cause: error,
    });
  return error;
}

/** Runs `fn` with a pooled client inside a transaction (committed when it returns, rolled back when it throws). */
export async function inTransaction<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  let client: pg.PoolClient;
  try {
    client = await pool.connect();
  } catch (error) {
    throw asLlmosError(error);
  }
  try {
    await client.query("BEGIN");
    const result = await fn(client);
    await client.query("COMMIT");
    return result;
  } catch (error) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw asLlmosError(error);
  } finally {
    client.release();
  }
}

/** `pool.query`, with unreachable-database errors mapped to `unavailable`. */
export async function query<R extends pg.QueryResultRow = pg.QueryResultRow>(
  pool: pg.Pool | pg.PoolClient | pg.Client,
  text: string,
  values: unknown[] = [],
): Promise<pg.QueryResult<R>> {
  try {
    return await pool.query<R>(text, values);
  } catch (error) {
    throw asLlmosError(error);
  }
}
