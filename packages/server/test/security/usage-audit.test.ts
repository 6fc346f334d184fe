import { describe, test } from "node:test";
import assert from "node:assert/strict";
import Database from "better-sqlite3";
import { homePaths } from "../../src/config/config.js";
import { AUDIT_ACTIONS, type AuditAction } from "../../src/security/index.js";
import { bearer, buildSecuredApp, openSecurity, tempHome } from "./helpers.js";

const rowCount = (dbPath: string, table: string) => {
  const db = new Database(dbPath, { readonly: true });
  try {
    return (db.prepare(`SELECT COUNT(*) AS n FROM ${table}`).get() as { n: number }).n;
  } finally {
    db.close();
  }
};

describe("usage accounting", () => {
  test("aggregates per key, model and UTC day; written in batches off the caller's path", async () => {
    const { home, cleanup } = tempHome();
    let now = Date.parse("2026-05-01T23:59:59Z");
    const security = await openSecurity(home, { now: () => now, usageFlushDelayMs: 60_000 });
    const dbPath = homePaths(home).database;
    try {
      security.recordUsage("aaaaaaaaaaaa", "llama3", 10, 5);
      security.recordUsage("aaaaaaaaaaaa", "llama3", 1, 2);
      security.recordUsage("aaaaaaaaaaaa", "qwen", 7, 0);
      security.recordUsage(null, "llama3", 3, 3);
      now = Date.parse("2026-05-02T00:00:01Z");
      security.recordUsage("aaaaaaaaaaaa", "llama3", 100, 50);
      // Nothing is written yet (the batch waits for its timer), so recording did no I/O.
      assert.equal(rowCount(dbPath, "usage_daily"), 0);
      await security.usageRecorder.flush();
      assert.equal(rowCount(dbPath, "usage_daily"), 4);

      const all = await security.usage();
      assert.deepEqual(
        all.map((u) => [u.day, u.keyId, u.model, u.promptTokens, u.completionTokens, u.requests]),
        [
          ["2026-05-01", null, "llama3", 3, 3, 1],
          ["2026-05-01", "aaaaaaaaaaaa", "llama3", 11, 7, 2],
          ["2026-05-01", "aaaaaaaaaaaa", "qwen", 7, 0, 1],
          ["2026-05-02", "aaaaaaaaaaaa", "llama3", 100, 50, 1],
        ],
      );
      assert.equal((await security.usage({ since: "2026-05-02" })).length, 1);
      assert.equal((await security.usage({ since: new Date("2026-05-02T12:00:00Z") })).length, 1);
      assert.equal((await security.usage({ model: "qwen" })).length, 1);
      assert.deepEqual(
        (await security.usage({ keyId: null })).map((u) => u.promptTokens),
        [3],
      );
      // A later batch adds to the same rows.
      security.recordUsage("aaaaaaaaaaaa", "llama3", 1, 1);
      const after = await security.usage({ keyId: "aaaaaaaaaaaa", model: "llama3", since: "2026-05-02" });
      assert.deepEqual(
        after.map((u) => [u.promptTokens, u.completionTokens, u.requests]),
        [[101, 51, 2]],
      );
      await assert.rejects(security.usage({ since: "yesterday" }), /not a valid time/);
    } finally {
      await security.close();
      cleanup();
    }
  });

  test("close() writes pending usage", async () => {
    const { home, cleanup } = tempHome();
    const security = await openSecurity(home, { usageFlushDelayMs: 60_000 });
    security.recordUsage(null, "m", 1, 1);
    await security.close();
    try {
      assert.equal(rowCount(homePaths(home).database, "usage_daily"), 1);
    } finally {
      cleanup();
    }
  });
});

describe("audit log", () => {
  test("each audited action is recorded, asynchronously, with key, target, result and address", async () => {
    const { home, cleanup } = tempHome();
    const security = await openSecurity(home);
    const app = await buildSecuredApp(security);
    const dbPath = homePaths(home).database;
    try {
      const admin = await security.keys.create({ name: "admin", scopes: ["admin"] }, { remoteAddress: "127.0.0.1" });
      // record() only queues: the row is not in the database in the same tick.
      assert.equal(rowCount(dbPath, "audit_log"), 0);
      await new Promise((r) => setImmediate(r));
      await security.audit.flush();
      assert.equal(rowCount(dbPath, "audit_log"), 1);

      const h = bearer(admin.secret);
      const post = (url: string, payload: object, remoteAddress = "127.0.0.1") =>
        app.inject({ method: "POST", url, headers: h, payload, remoteAddress });
      const created = await post("/api/keys", { name: "r", scopes: ["models:read"] });
      const writerId = created.json().key.id as string;
      assert.equal(
        (await app.inject({ method: "POST", url: `/api/keys/${writerId}/rotate`, headers: h })).statusCode,
        200,
      );
      const writer = (await app.inject({ method: "POST", url: `/api/keys/${writerId}/rotate`, headers: h })).json()
        .secret as string;
      await post("/api/pull", { model: "llama3" }, "10.0.0.7");
      await post("/api/push", { model: "team/llama3" });
      await post("/api/create", { model: "mine", from: "llama3" });
      await post("/api/copy", { source: "llama3", destination: "backup" });
      await post("/api/import", { name: "local" });
      await app.inject({ method: "DELETE", url: "/api/models/old", headers: h });
      await post("/api/load", { model: "llama3" });
      await app.inject({ method: "POST", url: "/api/store/verify", headers: h });
      await app.inject({ method: "POST", url: "/api/store/gc", headers: h });
      await post("/api/unload", { model: "llama3" }); // handler fails -> result error
      await app.inject({ method: "PUT", url: "/api/config", headers: h, payload: { keepAlive: 1 } });
      await app.inject({ method: "DELETE", url: "/api/requests/g1", headers: h });
      await app.inject({ method: "DELETE", url: "/v1/responses/resp_1", headers: h });
      // A key without the scope (models:read on a models:write route): denied, audited with its key id.
      await app.inject({ method: "POST", url: "/api/load", headers: bearer(writer), payload: { model: "x" } });
      // Anonymous 401 is not audited per request.
      await app.inject({ method: "POST", url: "/api/pull", payload: { model: "x" } });
      assert.equal((await app.inject({ method: "DELETE", url: `/api/keys/${writerId}`, headers: h })).statusCode, 200);
      for (let i = 0; i < 20; i++)
        await app.inject({
          method: "GET",
          url: "/api/tags",
          headers: bearer("llmos_aaaaaaaaaaaa_" + "z".repeat(43)),
          remoteAddress: "10.6.6.6",
        });

      const entries = await security.audit.query({ limit: 1000 });
      const seen = new Set(entries.map((e) => e.action));
      // runner.oom is recorded by the daemon when the kernel stops a runner, not by a route (e2e/sandbox.test.ts).
      for (const action of AUDIT_ACTIONS.filter((a) => a !== "runner.oom"))
        assert.ok(seen.has(action), `no audit entry for ${action}`);

      const one = (action: AuditAction) => entries.filter((e) => e.action === action);
      assert.equal(one("key.create").length, 2);
      assert.equal(one("key.rotate").length, 2);
      assert.deepEqual(
        one("key.revoke").map((e) => [e.target, e.keyId, e.result]),
        [[writerId, admin.key.id, "ok"]],
      );
      const pull = one("model.pull");
      assert.equal(pull.length, 1, "anonymous 401 must not be audited");
      assert.deepEqual(
        [pull[0]!.target, pull[0]!.keyId, pull[0]!.result, pull[0]!.remoteAddress],
        ["llama3", admin.key.id, "ok", "10.0.0.7"],
      );
      assert.equal(one("model.copy")[0]!.target, "llama3,backup");
      assert.equal(one("model.delete")[0]!.target, "old");
      assert.equal(one("model.unload")[0]!.result, "error");
      const loads = one("model.load");
      assert.deepEqual(loads.map((e) => e.result).sort(), ["denied", "ok"]);
      assert.equal(loads.find((e) => e.result === "denied")!.keyId, writerId);
      // One burst of one wrong key from one address: one entry for the address, one for the credential.
      const bursts = one("auth.failure_burst");
      assert.deepEqual(bursts.map((e) => e.target).sort(), ["10.6.6.6", "key aaaaaaaaaaaa"]);
      assert.deepEqual(bursts.map((e) => e.details?.by).sort(), ["address", "credential"]);
      // Filters and order.
      assert.equal((await security.audit.query({ action: "model.pull" })).length, 1);
      assert.equal((await security.audit.query({ limit: 3 })).length, 3);
      assert.ok(entries[0]!.id > entries[1]!.id, "newest first");
      assert.equal((await security.audit.query({ since: Date.now() + 60_000 })).length, 0);
    } finally {
      await app.close();
      await security.close();
      cleanup();
    }
  });
});
