/**
 * The security layer on a real PostgreSQL, as two nodes of a cluster use it: keys created on one node work on the
 * other, a revocation is announced with NOTIFY, usage from both nodes adds up, the audit log stays append-only, and
 * a 60 rpm key driven from two nodes admits exactly 60 requests in a minute.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import pg from "pg";
import { CLUSTER_CHANNEL, openPool } from "../../src/db/postgres.js";
import { isLlmosError } from "../../src/errors.js";
import {
  CachedKeyStore,
  PostgresRateLimitStore,
  PostgresSecurityRepository,
  SecurityService,
} from "../../src/security/index.js";
import { homePaths } from "../../src/config/config.js";
import { openClusterSecurity } from "../../src/cluster/cluster-node.js";
import { createLogger } from "../../src/telemetry/logger.js";
import { startTestPostgres, type TestPostgres } from "../support/postgres.js";
import { waitFor } from "../support/processes.js";
import { tempHome } from "../security/helpers.js";

let server: TestPostgres;
before(async () => {
  server = await startTestPostgres();
});
after(async () => {
  await server?.stop();
});

/** A node's security service on `url`: PostgreSQL repository, cached keys, cluster-wide rate limits. */
async function openNode(url: string, name: string) {
  const pool = openPool(url, { applicationName: `llmos:${name}` });
  const repository = await PostgresSecurityRepository.open(pool);
  const { home, cleanup } = tempHome();
  const security = await SecurityService.open({
    databasePath: homePaths(home).database,
    home,
    timeScale: 1,
    repository,
    rateLimitStore: await PostgresRateLimitStore.open(pool),
  });
  return {
    security,
    pool,
    async close() {
      await security.close();
      await pool.end();
      cleanup();
    },
  };
}

describe("security state in PostgreSQL, shared by two nodes", () => {
  test("a key created on A works on B; a revocation is notified and refused on both", async () => {
    const url = await server.createDatabase("keys");
    const [a, b] = [await openNode(url, "a"), await openNode(url, "b")];
    const listener = new pg.Client({ connectionString: url });
    await listener.connect();
    const notes: string[] = [];
    listener.on("notification", (n) => notes.push(n.payload ?? ""));
    await listener.query(`LISTEN ${CLUSTER_CHANNEL}`);
    try {
      const issued = await a.security.keys.create({ name: "app", scopes: ["inference"] });
      assert.equal((await b.security.authenticate(issued.secret)).id, issued.key.id);
      // B read "no keys" when it opened; it re-reads within a second (a key made elsewhere turns auth on there).
      await waitFor(async () => ((await b.security.checkAuthEnabled()) ? true : undefined), 1500, "auth on at B");
      await b.security.keys.revoke(issued.key.id);
      await waitFor(() => (notes.length > 0 ? true : undefined), 5000, "key.changed notification");
      assert.deepEqual(JSON.parse(notes[0]!), { type: "key.changed", id: issued.key.id });
      for (const node of [a, b]) {
        await assert.rejects(node.security.authenticate(issued.secret), (e) => isLlmosError(e) && e.status === 401);
      }
    } finally {
      await listener.end();
      await a.close();
      await b.close();
    }
  });

  test("usage recorded on both nodes adds up; the audit log refuses updates", async () => {
    const url = await server.createDatabase("usage");
    const [a, b] = [await openNode(url, "a"), await openNode(url, "b")];
    try {
      const { key } = await a.security.keys.create({ name: "u", scopes: ["inference"] });
      a.security.recordUsage(key.id, "m:latest", 10, 5);
      b.security.recordUsage(key.id, "m:latest", 1, 2);
      b.security.recordUsage(null, "m:latest", 3, 3);
      await Promise.all([a.security.flush(), b.security.flush()]);
      const rows = await a.security.usage({ keyId: key.id });
      assert.equal(rows.length, 1);
      assert.deepEqual(
        { p: rows[0]!.promptTokens, c: rows[0]!.completionTokens, r: rows[0]!.requests },
        { p: 11, c: 7, r: 2 },
      );
      assert.equal((await b.security.usage({ keyId: null }))[0]?.promptTokens, 3);
      const audit = await b.security.audit.query({ action: "key.create" });
      assert.equal(audit[0]?.target, key.id);
      await assert.rejects(a.pool.query("UPDATE audit_log SET result = 'error'"), /append-only/);
      await assert.rejects(a.pool.query("DELETE FROM audit_log"), /append-only/);
    } finally {
      await a.close();
      await b.close();
    }
  });

  test("a 60 rpm key driven from two nodes at 180 requests admits exactly 60", async () => {
    const url = await server.createDatabase("limits");
    const [a, b] = [await openNode(url, "a"), await openNode(url, "b")];
    try {
      const { key } = await a.security.keys.create({ name: "r", scopes: ["inference"], rpm: 60 });
      const limits = { id: key.id, rpm: 60, tpm: null, tokensPerDay: null };
      const outcomes = await Promise.all(
        Array.from({ length: 180 }, (_, i) =>
          (i % 2 ? a : b).security.admit(limits, 0).then(
            () => "ok",
            (e: unknown) => (isLlmosError(e) ? e.code : String(e)),
          ),
        ),
      );
      // The bucket refills one request a second: a slow machine may see one or two more over the test.
      const admitted = outcomes.filter((o) => o === "ok").length;
      assert.ok(admitted >= 60 && admitted <= 62, `admitted ${admitted}`);
      assert.ok(outcomes.every((o) => o === "ok" || o === "rate_limited"));
    } finally {
      await a.close();
      await b.close();
    }
  });

  test("a response stored through A is read and deleted through B; expired ones are not served", async () => {
    const url = await server.createDatabase("responses");
    const [a, b] = [await openNode(url, "a"), await openNode(url, "b")];
    try {
      const stored = {
        id: "resp_1",
        keyId: null,
        model: "m:latest",
        createdAt: 1000,
        expiresAt: 5000,
        response: { id: "resp_1", output: [{ type: "message" }] },
        conversation: [{ role: "user", content: "hi" }],
      };
      await a.security.repository.responses.insert(stored);
      await a.security.repository.responses.insert({ ...stored, id: "resp_2", expiresAt: 2000 });
      assert.deepEqual(await b.security.repository.responses.get("resp_1", 3000), stored);
      assert.equal(await b.security.repository.responses.get("resp_2", 3000), undefined);
      assert.equal(await b.security.repository.responses.deleteExpired(3000), 1);
      assert.equal(await b.security.repository.responses.delete("resp_1"), true);
      assert.equal(await a.security.repository.responses.get("resp_1", 3000), undefined);
    } finally {
      await a.close();
      await b.close();
    }
  });

  test("tokens charged on one node count against the daily quota on the other", async () => {
    const url = await server.createDatabase("quota");
    const [a, b] = [await openNode(url, "a"), await openNode(url, "b")];
    try {
      const { key } = await a.security.keys.create({ name: "q", scopes: ["inference"], tokensPerDay: 100 });
      const limits = { id: key.id, rpm: null, tpm: null, tokensPerDay: 100 };
      await a.security.admit(limits, 10);
      a.security.limiter.charge(key.id, 95);
      await a.security.flush();
      await assert.rejects(b.security.admit(limits, 10), (e) => isLlmosError(e) && e.code === "quota_exceeded");
    } finally {
      await a.close();
      await b.close();
    }
  });
});

describe("a PostgreSQL outage", () => {
  test("keys read recently stay valid, admin writes get 503, rate limits hold per node", async () => {
    const url = await server.createDatabase("outage");
    const config = {
      url,
      nodeName: "a",
      advertise: undefined,
      secret: "0123456789abcdef",
      heartbeatMs: 1000,
      deadAfterMs: 3000,
      keyCacheTtlMs: 30_000,
      transferBytesPerSecond: 0,
    };
    const storage = await openClusterSecurity(config, createLogger("silent"));
    const { home, cleanup } = tempHome();
    const security = await SecurityService.open({
      databasePath: homePaths(home).database,
      home,
      timeScale: 1,
      repository: storage.repository,
      rateLimitStore: storage.rateLimitStore,
    });
    try {
      const { key, secret } = await security.keys.create({ name: "k", scopes: ["inference"], rpm: 2 });
      const limits = { id: key.id, rpm: 2, tpm: null, tokensPerDay: null };
      await security.authenticate(secret);
      await security.admit(limits, 0); // one of the two requests this minute, counted in the database

      await server.stop();
      assert.equal((await security.authenticate(secret)).id, key.id, "a key read before the outage still works");
      await assert.rejects(
        security.keys.create({ name: "new", scopes: ["inference"] }),
        (e) => isLlmosError(e) && e.code === "unavailable" && e.status === 503,
      );
      await assert.rejects(security.authenticate("llmos_0123456789ab_" + "x".repeat(43)), (e) => isLlmosError(e));
      // The shared limiter falls back to this node's own (a fresh bucket: limits hold per node meanwhile).
      await security.admit(limits, 0);
      await security.admit(limits, 0);
      await assert.rejects(security.admit(limits, 0), (e) => isLlmosError(e) && e.code === "rate_limited");
    } finally {
      await security.close().catch(() => undefined);
      cleanup();
    }
  });
});

describe("CachedKeyStore", () => {
  const stored = {
    id: "k",
    name: "k",
    secretHash: "h",
    scopes: ["inference"],
    models: null,
    rpm: null,
    tpm: null,
    tokensPerDay: null,
    createdAt: 0,
    expiresAt: null,
    revokedAt: null,
    rotatedAt: null,
  };
  function fakeStore() {
    let down = false;
    let reads = 0;
    const unavailable = async () => {
      const { LlmosError } = await import("../../src/errors.js");
      throw new LlmosError("unavailable", "database down");
    };
    return {
      setDown: (d: boolean) => (down = d),
      reads: () => reads,
      store: {
        async get() {
          reads++;
          if (down) return unavailable();
          return stored;
        },
        async countActive() {
          if (down) return unavailable();
          return 1;
        },
        list: async () => [stored],
        insert: async () => undefined,
        updateSecret: async () => true,
        revoke: async () => true,
      },
    };
  }

  test("serves keys from memory only while notifications arrive", async () => {
    const f = fakeStore();
    const now = 0;
    const cache = new CachedKeyStore(f.store, { outageTtlMs: 30_000, now: () => now });
    await cache.get("k");
    await cache.get("k");
    assert.equal(f.reads(), 2, "no notifications: every read goes to the database");
    cache.listening(true);
    await cache.get("k");
    await cache.get("k");
    assert.equal(f.reads(), 3);
    cache.invalidate("k"); // a key.changed notification
    await cache.get("k");
    assert.equal(f.reads(), 4);
  });

  test("during an outage a key read less than the TTL ago stays valid, older ones are unavailable", async () => {
    const f = fakeStore();
    let now = 0;
    const cache = new CachedKeyStore(f.store, { outageTtlMs: 30_000, now: () => now });
    await cache.get("k");
    f.setDown(true);
    now = 20_000;
    assert.equal((await cache.get("k"))?.id, "k");
    now = 31_000;
    await assert.rejects(cache.get("k"), (e) => isLlmosError(e) && e.status === 503);
    await assert.rejects(cache.get("other"), (e) => isLlmosError(e) && e.status === 503);
  });
});
