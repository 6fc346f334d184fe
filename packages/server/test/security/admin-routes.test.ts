import { describe, test } from "node:test";
import assert from "node:assert/strict";
import type { AddressInfo } from "node:net";
import { bearer, buildSecuredApp, openSecurity, tempHome } from "./helpers.js";

describe("admin API over real HTTP on 127.0.0.1", () => {
  test("keys: create, list, rotate, revoke; usage; audit; schema validation", async () => {
    const { home, cleanup } = tempHome();
    const security = await openSecurity(home);
    const app = await buildSecuredApp(security);
    await app.listen({ host: "127.0.0.1", port: 0 });
    const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    try {
      const admin = await security.keys.create({ name: "root", scopes: ["admin"] });
      const req = async (method: string, path: string, body?: unknown, secret = admin.secret) => {
        const res = await fetch(base + path, {
          method,
          headers: { ...bearer(secret), ...(body !== undefined ? { "content-type": "application/json" } : {}) },
          ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        });
        return { status: res.status, headers: res.headers, json: (await res.json()) as any };
      };

      const created = await req("POST", "/api/keys", {
        name: "app",
        scopes: ["inference"],
        models: ["llama*"],
        rpm: 5,
        tpm: 1000,
        tokensPerDay: 10000,
        expiresAt: "2999-01-01T00:00:00Z",
      });
      assert.equal(created.status, 201);
      assert.equal(created.headers.get("cache-control"), "no-store");
      assert.match(created.json.secret, /^llmos_[0-9a-f]{12}_/);
      assert.equal(created.json.key.expiresAt, "2999-01-01T00:00:00.000Z");
      const id = created.json.key.id as string;

      const list = await req("GET", "/api/keys");
      assert.equal(list.status, 200);
      assert.deepEqual(
        list.json.keys.map((k: { name: string }) => k.name),
        ["root", "app"],
      );
      assert.ok(!JSON.stringify(list.json).includes(created.json.secret.slice(20)));

      // The new key can infer but not administer.
      assert.equal((await req("GET", "/api/keys", undefined, created.json.secret)).status, 403);
      const inf = await req(
        "POST",
        "/v1/chat/completions",
        { model: "llama3", _prompt: 4, _completion: 6 },
        created.json.secret,
      );
      assert.equal(inf.status, 200);

      const rotated = await req("POST", `/api/keys/${id}/rotate`);
      assert.equal(rotated.status, 200);
      assert.equal((await req("POST", "/v1/chat/completions", { model: "llama3" }, created.json.secret)).status, 401);
      assert.equal((await req("POST", "/v1/chat/completions", { model: "llama3" }, rotated.json.secret)).status, 200);

      const usage = await req("GET", `/api/usage?keyId=${id}&model=llama3`);
      assert.equal(usage.status, 200);
      assert.deepEqual(
        usage.json.usage.map(
          (u: { model: string; promptTokens: number; completionTokens: number; requests: number }) => [
            u.model,
            u.promptTokens,
            u.completionTokens,
            u.requests,
          ],
        ),
        [["llama3", 4, 6, 2]],
      );
      assert.equal((await req("GET", "/api/usage?since=2999-01-01")).json.usage.length, 0);

      const revoked = await req("DELETE", `/api/keys/${id}`);
      assert.equal(revoked.status, 200);
      assert.ok(revoked.json.key.revokedAt);
      assert.equal((await req("POST", "/v1/chat/completions", { model: "llama3" }, rotated.json.secret)).status, 401);
      assert.equal((await req("DELETE", "/api/keys/0123456789ab")).status, 404);
      assert.equal((await req("POST", `/api/keys/${id}/rotate`)).status, 409);

      const audit = await req("GET", "/api/audit?limit=10&action=key.rotate");
      assert.equal(audit.status, 200);
      assert.equal(audit.json.entries.length, 1);
      assert.equal(audit.json.entries[0].target, id);
      assert.equal(audit.json.entries[0].keyId, admin.key.id);

      // Validation: unknown fields are rejected (a typo like "model" must not yield an unrestricted key).
      for (const bad of [
        { name: "x", scopes: ["inference"], model: ["llama*"] },
        { name: "x", scopes: ["root"] },
        { name: "x", scopes: [] },
        { name: "", scopes: ["inference"] },
        { name: "x", scopes: ["inference"], rpm: 0 },
        { name: "x", scopes: ["inference"], rpm: "5" },
        { name: "x", scopes: ["inference"], expiresAt: "never" },
      ]) {
        const r = await req("POST", "/api/keys", bad);
        assert.equal(r.status, 400, JSON.stringify(bad));
        assert.equal(r.json.error.code, "invalid_request");
      }
      assert.equal((await req("DELETE", "/api/keys/not-an-id")).status, 400);
      assert.equal((await req("GET", "/api/audit?limit=ten")).status, 400);
      assert.equal((await req("GET", "/api/audit?action=rm.rf")).status, 400);
      assert.equal((await req("GET", "/api/audit?bogus=1")).status, 400);
      assert.equal((await req("GET", "/api/usage?since=yesterday")).status, 400);
      assert.equal((await security.keys.list()).length, 2, "no key was created by invalid requests");
    } finally {
      await app.close();
      await security.close();
      cleanup();
    }
  });
});
