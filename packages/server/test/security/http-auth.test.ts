import fs from "node:fs";
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import type { FastifyInstance } from "fastify";
import { homePaths } from "../../src/config/config.js";
import { AdminToken, type SecurityService } from "../../src/security/index.js";
import { bearer, buildSecuredApp, openSecurity, tempHome } from "./helpers.js";

const REMOTE = "10.1.2.3";

describe("auth hooks: bootstrap (no key yet)", () => {
  let security: SecurityService;
  let app: FastifyInstance;
  let cleanup: () => void;
  let home: string;

  before(async () => {
    ({ home, cleanup } = tempHome());
    security = await openSecurity(home);
    app = await buildSecuredApp(security);
  });
  after(async () => {
    await app.close();
    await security.close();
    cleanup();
  });

  test("loopback may do everything but admin without a key; routes see llmosAuth", async () => {
    const r = await app.inject({ method: "POST", url: "/v1/chat/completions", payload: { model: "m" } });
    assert.equal(r.statusCode, 200);
    assert.deepEqual(r.json(), { model: "m", via: "no-auth-local", local: true, keyId: null });
    assert.equal((await app.inject({ method: "POST", url: "/api/pull", payload: { model: "m" } })).statusCode, 200);
    // Admin routes (keys, audit, usage, store maintenance) need the admin token even from this machine: any
    // local process (or a web page) must not mint keys. 401, so the CLI retries with the token.
    for (const [method, url] of [
      ["GET", "/api/keys"],
      ["POST", "/api/keys"],
      ["GET", "/api/audit"],
      ["GET", "/api/usage"],
      ["PUT", "/api/config"],
    ] as const) {
      const denied = await app.inject({ method, url, ...(method === "GET" ? {} : { payload: {} }) });
      assert.equal(denied.statusCode, 401, `${method} ${url}`);
      assert.match(denied.json().error.message, /admin token/);
    }
    // A placeholder key (as the openai and ollama clients send) does not make it admin either.
    const placeholder = await app.inject({ method: "GET", url: "/api/keys", headers: bearer("ollama") });
    assert.equal(placeholder.statusCode, 401);
    assert.equal((await app.inject({ method: "GET", url: "/metrics", remoteAddress: "::1" })).statusCode, 200);
    assert.equal(
      (await app.inject({ method: "GET", url: "/metrics", remoteAddress: "::ffff:127.0.0.1" })).statusCode,
      200,
    );
  });

  test("non-loopback is refused with 403 and told how to create a key", async () => {
    for (const url of ["/api/tags", "/api/keys", "/metrics"]) {
      const r = await app.inject({ method: "GET", url, remoteAddress: REMOTE });
      assert.equal(r.statusCode, 403, url);
      assert.match(r.json().error.message, /llmos keys create/);
    }
    // Public routes stay public.
    assert.equal((await app.inject({ method: "GET", url: "/healthz", remoteAddress: REMOTE })).statusCode, 200);
    assert.equal((await app.inject({ method: "GET", url: "/readyz", remoteAddress: REMOTE })).statusCode, 200);
  });

  test("a loopback connection carrying proxy headers is not local", async () => {
    const r = await app.inject({ method: "GET", url: "/api/tags", headers: { "x-forwarded-for": "127.0.0.1" } });
    assert.equal(r.statusCode, 403);
  });

  test("routes without a declared scope are refused, even from loopback", async () => {
    const r = await app.inject({ method: "GET", url: "/undeclared" });
    assert.equal(r.statusCode, 403);
    assert.match(r.json().error.message, /declares no access scope/);
    assert.equal((await app.inject({ method: "GET", url: "/no/such/route", remoteAddress: REMOTE })).statusCode, 404);
  });

  test("admin token file: 0600, grants admin from loopback only", async () => {
    const file = homePaths(home).adminToken;
    assert.equal((fs.statSync(file).mode & 0o777).toString(8), "600");
    const token = AdminToken.read(file)!;
    assert.ok(token.startsWith("llmos-admin-"));
    // Create the first key with the admin token, as the CLI does.
    const created = await app.inject({
      method: "POST",
      url: "/api/keys",
      headers: bearer(token),
      payload: { name: "first", scopes: ["admin"] },
    });
    assert.equal(created.statusCode, 201);
    assert.equal(security.authEnabled(), true);
    // Auth is on now: loopback without a key gets 401, with the admin token still passes.
    assert.equal((await app.inject({ method: "GET", url: "/api/keys" })).statusCode, 401);
    const listed = await app.inject({ method: "GET", url: "/api/keys", headers: { "x-api-key": token } });
    assert.equal(listed.statusCode, 200);
    // From another machine the admin token is worth nothing.
    assert.equal(
      (await app.inject({ method: "GET", url: "/api/keys", headers: bearer(token), remoteAddress: REMOTE })).statusCode,
      401,
    );
    // A new daemon start writes a new token; the old one stops working there.
    const second = await openSecurity(home);
    try {
      const newToken = AdminToken.read(file)!;
      assert.notEqual(newToken, token);
      assert.equal(second.isLocalAdmin(token, "127.0.0.1"), false);
      assert.equal(second.isLocalAdmin(newToken, "127.0.0.1"), true);
      assert.equal(second.isLocalAdmin(newToken, REMOTE), false);
    } finally {
      await second.close();
    }
    assert.equal(fs.existsSync(file), false, "closing removes the token file it wrote");
  });
});

describe("auth hooks: with keys", () => {
  let security: SecurityService;
  let app: FastifyInstance;
  let cleanup: () => void;
  const k: Record<string, string> = {};
  let inferenceKeyId = "";

  before(async () => {
    let home: string;
    ({ home, cleanup } = tempHome());
    security = await openSecurity(home, { authFailures: { maxFailures: 5, lockMinutes: 1 }, timeScale: 0.02 });
    app = await buildSecuredApp(security);
    k.admin = (await security.keys.create({ name: "admin", scopes: ["admin"] })).secret;
    const inf = await security.keys.create({ name: "inf", scopes: ["inference"], models: ["llama*", "qwen2:0.5b"] });
    k.inference = inf.secret;
    inferenceKeyId = inf.key.id;
    k.reader = (await security.keys.create({ name: "reader", scopes: ["models:read"] })).secret;
    k.writer = (await security.keys.create({ name: "writer", scopes: ["models:write"], models: ["mine/*"] })).secret;
    k.metrics = (await security.keys.create({ name: "metrics", scopes: ["metrics"] })).secret;
    const revoked = await security.keys.create({ name: "gone", scopes: ["admin"] });
    await security.keys.revoke(revoked.key.id);
    k.revoked = revoked.secret;
    k.expired = (await security.keys.create({ name: "old", scopes: ["admin"], expiresAt: Date.now() + 30 })).secret;
    await new Promise((r) => setTimeout(r, 50));
  });
  after(async () => {
    await app.close();
    await security.close();
    cleanup();
  });

  const call = (
    method: "GET" | "POST" | "DELETE",
    url: string,
    secret?: string,
    payload?: object,
    remoteAddress = "127.0.0.1",
  ) =>
    app.inject({
      method,
      url,
      remoteAddress,
      ...(secret ? { headers: bearer(secret) } : {}),
      ...(payload ? { payload } : {}),
    });

  test("no key 401, wrong key 401, revoked 401, expired 401", async () => {
    const none = await call("GET", "/api/tags");
    assert.equal(none.statusCode, 401);
    assert.equal(none.json().error.code, "unauthorized");
    assert.match(String(none.headers["www-authenticate"]), /Bearer/);
    assert.equal((await call("GET", "/api/tags", "llmos_000000000000_" + "x".repeat(43))).statusCode, 401);
    assert.equal((await call("GET", "/api/tags", k.revoked)).statusCode, 401);
    assert.equal((await call("GET", "/api/tags", k.expired)).statusCode, 401);
    assert.equal(
      (await app.inject({ method: "GET", url: "/api/tags", headers: { authorization: "Basic YWRtaW46YWRtaW4=" } }))
        .statusCode,
      401,
    );
  });

  test("missing scope 403, matching scope 200, admin passes everything", async () => {
    const cases: [string, "GET" | "POST", string, object | undefined][] = [
      ["/v1/chat/completions", "POST", "inference", { model: "llama3" }],
      ["/api/tags", "GET", "reader", undefined],
      ["/api/pull", "POST", "writer", { model: "mine/x" }],
      ["/metrics", "GET", "metrics", undefined],
      ["/api/keys", "GET", "admin", undefined],
    ];
    for (const [url, method, owner, payload] of cases) {
      assert.equal((await call(method, url, k[owner], payload)).statusCode, 200, `${owner} on ${url}`);
      assert.equal((await call(method, url, k.admin, payload)).statusCode, 200, `admin on ${url}`);
      for (const other of ["inference", "reader", "writer", "metrics"].filter((o) => o !== owner)) {
        const r = await call(method, url, k[other], payload);
        assert.equal(r.statusCode, 403, `${other} on ${url}`);
        assert.equal(r.json().error.code, "forbidden");
      }
    }
    // x-api-key works like Authorization.
    const viaHeader = await app.inject({ method: "GET", url: "/api/tags", headers: { "x-api-key": k.reader } });
    assert.equal(viaHeader.statusCode, 200);
  });

  test("keys work from non-loopback addresses; llmosAuth carries the key", async () => {
    const r = await call("POST", "/v1/chat/completions", k.inference, { model: "llama3:8b" }, REMOTE);
    assert.equal(r.statusCode, 200);
    assert.deepEqual(r.json(), { model: "llama3:8b", via: "key", local: false, keyId: inferenceKeyId });
  });

  test("model allow-list: globs, :latest variants, body fields and route params", async () => {
    const ok = async (payload: object) => (await call("POST", "/v1/chat/completions", k.inference, payload)).statusCode;
    assert.equal(await ok({ model: "llama3" }), 200);
    assert.equal(await ok({ model: "llama3:latest" }), 200);
    assert.equal(await ok({ model: "qwen2:0.5b" }), 200);
    assert.equal(await ok({ model: "qwen2" }), 403);
    assert.equal(await ok({ model: "mistral" }), 403);
    const denied = await call("POST", "/v1/chat/completions", k.inference, { model: "mistral:7b" });
    assert.equal(denied.json().error.code, "forbidden");
    assert.match(denied.json().error.message, /mistral:7b/);

    // models:write key limited to mine/*: copy checks source AND destination, delete checks :name.
    assert.equal(
      (await call("POST", "/api/copy", k.writer, { source: "mine/a", destination: "mine/b" })).statusCode,
      200,
    );
    assert.equal(
      (await call("POST", "/api/copy", k.writer, { source: "mine/a", destination: "theirs/b" })).statusCode,
      403,
    );
    assert.equal(
      (await call("POST", "/api/copy", k.writer, { source: "theirs/a", destination: "mine/b" })).statusCode,
      403,
    );
    assert.equal((await call("DELETE", `/api/models/${encodeURIComponent("mine/x")}`, k.writer)).statusCode, 200);
    assert.equal((await call("DELETE", "/api/models/other", k.writer)).statusCode, 403);
    // The admin key has no allow-list; key names in admin routes are not model names.
    assert.equal(
      (await call("POST", "/api/keys", k.admin, { name: "not-a-model", scopes: ["metrics"] })).statusCode,
      201,
    );
  });

  test("failed-auth burst: 429 for the address, one audit entry per burst; valid keys still pass", async () => {
    const attacker = "10.9.9.9";
    const wrong = (i: number) => "llmos_123456789abc_" + String(i).padStart(43, "b");
    for (let i = 0; i < 5; i++)
      assert.equal((await call("GET", "/api/tags", wrong(i), undefined, attacker)).statusCode, 401);
    const locked = await call("GET", "/api/tags", wrong(99), undefined, attacker);
    assert.equal(locked.statusCode, 429);
    assert.equal(locked.json().error.code, "rate_limited");
    assert.ok(Number(locked.headers["retry-after"]) >= 1);
    // A valid key is never refused: the address may be a proxy or NAT in front of honest clients.
    assert.equal((await call("GET", "/api/tags", k.reader, undefined, attacker)).statusCode, 200);
    assert.equal((await call("GET", "/api/tags", k.reader, undefined, "10.9.9.10")).statusCode, 200);
    for (let i = 0; i < 10; i++) await call("GET", "/api/tags", wrong(100 + i), undefined, attacker);
    const bursts = (await security.audit.query({ action: "auth.failure_burst" })).filter(
      (e) => e.remoteAddress === attacker,
    );
    assert.equal(bursts.length, 1);
    assert.equal(bursts[0]!.result, "denied");
    assert.equal(bursts[0]!.details?.failures, 5);
    assert.equal(bursts[0]!.details?.by, "address");
    // Lock-out is one scaled minute (1.2 s at timeScale 0.02); afterwards wrong keys get 401 again.
    await new Promise((r) => setTimeout(r, 1300));
    assert.equal((await call("GET", "/api/tags", wrong(200), undefined, attacker)).statusCode, 401);
    // A second burst writes a second entry.
    for (let i = 0; i < 5; i++) await call("GET", "/api/tags", wrong(300 + i), undefined, attacker);
    const again = (await security.audit.query({ action: "auth.failure_burst" })).filter(
      (e) => e.remoteAddress === attacker && e.details?.by === "address",
    );
    assert.equal(again.length, 2);
  });

  test("failures also count per credential: one wrong key from many addresses is locked, others are not", async () => {
    const leaked = "llmos_abcdefabcdef_" + "L".repeat(43);
    for (let i = 0; i < 5; i++)
      assert.equal((await call("GET", "/api/tags", leaked, undefined, `10.7.0.${i}`)).statusCode, 401);
    // From a fresh address, the same wrong credential is now refused with 429...
    assert.equal((await call("GET", "/api/tags", leaked, undefined, "10.7.1.1")).statusCode, 429);
    // ...while that address is not locked for anything else.
    const other = "llmos_abcdefabcdef_" + "M".repeat(43);
    assert.equal((await call("GET", "/api/tags", other, undefined, "10.7.1.1")).statusCode, 401);
    assert.equal((await call("GET", "/api/tags", k.reader, undefined, "10.7.1.1")).statusCode, 200);
  });

  test("behind a proxy (one address for everyone), a burst of bad keys does not lock out the valid ones", async () => {
    const viaProxy = (secret: string) =>
      app.inject({
        method: "GET",
        url: "/api/tags",
        remoteAddress: "127.0.0.1",
        headers: { ...bearer(secret), "x-forwarded-for": "203.0.113.9" },
      });
    for (let i = 0; i < 12; i++) await viaProxy("llmos_fedcbafedcba_" + String(i).padStart(43, "p"));
    assert.equal((await viaProxy("llmos_fedcbafedcba_" + "q".repeat(43))).statusCode, 429);
    assert.equal((await viaProxy(k.reader!)).statusCode, 200);
    assert.equal((await viaProxy(k.admin!)).statusCode, 200);
  });
});
