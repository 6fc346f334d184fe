import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { startTestDaemon, type TestDaemon } from "../support/daemon.js";
import { captureRoutes, concreteUrl, scanRoutes, type CapturedRoute } from "../support/route-scanner.js";

describe("every route of the real daemon enforces auth once a key exists", () => {
  let d: TestDaemon;
  let routes: CapturedRoute[] = [];
  before(async () => {
    d = await startTestDaemon({}, { options: { instrumentApp: (app) => (routes = captureRoutes(app)) } });
  });
  after(async () => d?.stop());

  test("the scanned list is the full route table", () => {
    assert.ok(routes.length >= 40, `only ${routes.length} routes captured`);
    const printed = d.app.printRoutes({ commonPrefix: false });
    for (const r of routes)
      assert.ok(d.app.hasRoute({ method: r.method as never, url: r.url }), `${r.method} ${r.url} not in the router`);
    // fastify's own route table lists exactly as many method+path pairs as we captured.
    const printedMethods = [...printed.matchAll(/\(([A-Z, ]+)\)/g)].reduce((n, m) => n + m[1]!.split(",").length, 0);
    assert.equal(printedMethods, routes.length, printed);
    const capturedUrls = new Set(routes.map((r) => r.url));
    // Families the issues require are all there.
    for (const url of [
      "/v1/chat/completions",
      "/v1/completions",
      "/v1/embeddings",
      "/v1/models",
      "/api/models",
      "/api/ps",
      "/metrics",
      "/api/keys",
      "/api/generate",
      "/api/chat",
      "/api/tags",
    ]) {
      assert.ok(capturedUrls.has(url), `${url} missing`);
    }
  });

  test("before any key exists, admin routes answer 401 from loopback without the admin token", async () => {
    const admin = routes.filter((r) => r.scope === "admin" && r.method !== "HEAD");
    assert.ok(admin.length >= 8, `only ${admin.length} admin routes`);
    for (const r of admin) {
      const res = await d.app.inject({
        method: r.method as never,
        url: concreteUrl(r.url),
        remoteAddress: "127.0.0.1",
        ...(r.method === "GET" ? {} : { payload: {} }),
      });
      assert.equal(res.statusCode, 401, `${r.method} ${r.url}`);
    }
  });

  test("no key -> 401, bad key -> 401, missing scope -> 403, the right scope gets through, on every route", async () => {
    const checks = await scanRoutes(d.app, {
      security: d.security,
      routes,
      skip: (r) => r.method === "HEAD" && r.url !== "/",
      // Not the event stream: with the right scope it streams until the client leaves (events.test.ts covers it).
      checkAllowed: (r) => r.url !== "/api/events",
    });
    assert.ok(checks.length > routes.length * 3, `only ${checks.length} checks ran`);
    assert.ok(checks.every((c) => c.ok));
    assert.ok(checks.some((c) => c.route === "POST /api/models/:name/load" && c.check === 'key with "models:write"'));
  });
});
