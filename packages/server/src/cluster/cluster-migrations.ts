/**
 * The cluster's own tables (recorded in `cluster_schema_migrations`; append only). One row per node that ever
 * registered: its address, state, registration epoch, last heartbeat by the database's clock and the capacity it
 * published (node-capacity.ts). Model placement is read from the capacity column: a node's heartbeat is the truth of
 * what it holds.
 */
import type { PgMigration } from "../db/postgres.js";

/** First of the two keys of every node's session advisory lock (the second is `hashtext(name)`). */
export const NODE_LOCK_CLASS = 19019;

export const CLUSTER_MIGRATIONS: readonly PgMigration[] = [
  {
    version: 1,
    name: "node registry",
    sql: `
      CREATE TABLE cluster_nodes (
        name TEXT PRIMARY KEY,
        url TEXT NOT NULL,
        state TEXT NOT NULL,
        epoch BIGINT NOT NULL,
        registered_at BIGINT NOT NULL,
        heartbeat_at TIMESTAMPTZ NOT NULL,
        capacity JSONB NOT NULL DEFAULT '{}'::jsonb
      );
    `,
  },
];
