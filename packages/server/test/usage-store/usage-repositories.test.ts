/**
 * The usage store's contract (usage-repository-contract.ts) against each implementation: in memory, SQLite (two
 * connections to one file) and a real PostgreSQL (two pools on one database, as two nodes of a cluster).
 */
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before } from "node:test";
import Database from "better-sqlite3";
import pg from "pg";
import { openPool } from "../../src/db/postgres.js";
import {
  MemoryUsageRepository,
  PostgresUsageRepository,
  SqliteUsageRepository,
  type UsageRepository,
} from "../../src/usage-store/index.js";
import { startTestPostgres, type TestPostgres } from "../support/postgres.js";
import { usageRepositoryContract } from "./usage-repository-contract.js";

usageRepositoryContract("memory", async () => {
  const repo = new MemoryUsageRepository();
  return { repo, other: async () => repo, dispose: () => repo.close() };
});

usageRepositoryContract("SQLite", async () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), "llmos-usage-"));
  const file = path.join(dir, "llmos.db");
  const opened: UsageRepository[] = [SqliteUsageRepository.open(file)];
  return {
    repo: opened[0]!,
    other: async () => {
      const r = SqliteUsageRepository.open(file);
      opened.push(r);
      return r;
    },
    corrupt: async (model) => {
      const db = new Database(file);
      db.prepare("UPDATE model_usage SET hourly = 'garbage' WHERE model = ?").run(model);
      db.close();
    },
    dispose: async () => {
      for (const r of opened) await r.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});

let server: TestPostgres;
let databases = 0;
before(async () => {
  server = await startTestPostgres();
});
after(async () => {
  await server?.stop();
});

usageRepositoryContract("PostgreSQL", async () => {
  const url = await server.createDatabase(`usage${++databases}`);
  const pools: pg.Pool[] = [];
  const open = async () => {
    const pool = openPool(url, { applicationName: `llmos:test${pools.length}` });
    pools.push(pool);
    return PostgresUsageRepository.open(pool, { ownsPool: true });
  };
  const repo = await open();
  return {
    repo,
    other: open,
    corrupt: async (model) => {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      await c.query("UPDATE model_usage SET hourly = 'garbage' WHERE model = $1", [model]);
      await c.end();
    },
    dispose: async () => {
      await Promise.all(pools.map((p) => (p.ended ? undefined : p.end())));
    },
  };
});
