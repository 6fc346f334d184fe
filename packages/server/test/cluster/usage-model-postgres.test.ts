/**
 * The keep-alive usage model in cluster mode, on a real PostgreSQL and real runners (stories260K): what one node
 * learned and what another learned add up in the cluster's one record per model, and a node that starts with an
 * empty home (a restart, a new machine) plans from that record. The repository itself is tested against SQLite and
 * PostgreSQL alike in test/usage-store/.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import pg from "pg";
import { clusterConfig } from "../../src/config/load.js";
import { api, startTestDaemon, type TestDaemon } from "../support/daemon.js";
import { startTestPostgres, type TestPostgres } from "../support/postgres.js";
import { CLUSTER_SECRET } from "../support/cluster.js";

const MODEL = "stories:latest";

let server: TestPostgres;
let url: string;
before(async () => {
  server = await startTestPostgres();
  url = await server.createDatabase("usage_cluster");
});
after(async () => {
  await server?.stop();
});

/** A node of the cluster on `url` (in this process), learning with a compressed day (24 s: an "hour" is 1 s). */
function startNode(name: string): Promise<TestDaemon> {
  const cluster = clusterConfig({
    LLMOS_CLUSTER_URL: url,
    LLMOS_CLUSTER_SECRET: CLUSTER_SECRET,
    LLMOS_NODE_NAME: name,
  });
  return startTestDaemon({ keepPolicy: "histogram", usageDayMs: 24_000, cluster });
}

/** `n` requests for stories, `gapMs` apart: `n - 1` idle gaps. */
async function requests(d: TestDaemon, n: number, gapMs: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    if (i > 0) await new Promise((r) => setTimeout(r, gapMs));
    const r = await api(d, "POST", "/v1/completions", { model: "stories", prompt: "Once", max_tokens: 2 });
    assert.equal(r.status, 200, r.text);
  }
}

async function storedUsage(): Promise<{ requests: number; gaps: number; size: number | null } | undefined> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const r = await c.query("SELECT requests, gaps, size_bytes FROM model_usage WHERE model = $1", [MODEL]);
    const row = r.rows[0] as { requests: number; gaps: string; size_bytes: string | null } | undefined;
    if (!row) return undefined;
    const gaps = (JSON.parse(row.gaps) as number[]).reduce((a, b) => a + b, 0);
    return { requests: row.requests, gaps, size: row.size_bytes === null ? null : Number(row.size_bytes) };
  } finally {
    await c.end();
  }
}

describe("the usage model in cluster mode", () => {
  test("two nodes' learning adds up in PostgreSQL; a node with an empty home plans from it", async () => {
    const a = await startNode("a");
    try {
      await requests(a, 8, 120);
    } finally {
      await a.stop();
    }
    const afterA = await storedUsage();
    assert.ok(afterA, "node a wrote the model's record to the cluster database");
    assert.ok(Math.abs(afterA.requests - 8) < 0.01 && Math.abs(afterA.gaps - 7) < 0.01, JSON.stringify(afterA));
    assert.ok(afterA.size !== null && afterA.size > 0);

    // Node b starts empty, learns from its own requests and adds them to a's.
    const b = await startNode("b");
    try {
      await requests(b, 7, 120);
    } finally {
      await b.stop();
    }
    const both = await storedUsage();
    assert.ok(both && Math.abs(both.requests - 15) < 0.01, `both nodes' requests count: ${JSON.stringify(both)}`);
    assert.ok(Math.abs(both.gaps - 13) < 0.01, `7 + 6 idle gaps: ${JSON.stringify(both)}`);

    // Node c has never served the model and has a fresh home: its plan comes from the cluster's record.
    const c = await startNode("c");
    try {
      const r = await api(c, "POST", "/api/models/stories/load", {});
      assert.equal(r.status, 200, r.text);
      const m = (await api(c, "GET", "/api/ps")).json.models.find((x: { name: string }) => x.name === MODEL);
      assert.equal(m?.keptBy, "histogram");
      assert.match(String(m?.keepReason), /^learned from 13 idle gaps/, "planned from both nodes' history");
    } finally {
      await c.stop();
    }
  });
});
