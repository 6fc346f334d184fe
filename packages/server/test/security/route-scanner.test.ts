import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { captureRoutes, scanRoutes, type CapturedRoute } from "../support/route-scanner.js";
import { buildSecuredApp, openSecurity, tempHome } from "./helpers.js";

describe("route scanner", () => {
  test("every route of the secured test app answers 401/403 as its scope says", async () => {
    const { home, cleanup } = tempHome();
    const security = await openSecurity(home);
    let routes: CapturedRoute[] = [];
    const app = await buildSecuredApp(security, { beforeRoutes: (a) => (routes = captureRoutes(a)) });
    try {
      assert.ok(routes.length >= 20, `captured ${routes.length} routes`);
      assert.ok(
        routes.some((r) => r.method === "HEAD"),
        "HEAD routes fastify adds are scanned too",
      );
      const checks = await scanRoutes(app, { security, routes, checkAllowed: true });
      const byRoute = new Set(checks.map((c) => c.route));
      assert.equal(byRoute.size, routes.length);
      assert.ok(checks.some((c) => c.route === "GET /undeclared" && c.check.startsWith("undeclared") && c.ok));
      assert.ok(checks.some((c) => c.route === "GET /healthz" && c.check.startsWith("public") && c.ok));
      assert.ok(
        checks.some((c) => c.route === "DELETE /api/keys/:id" && c.check === 'key without "admin"' && c.actual === 403),
      );
      // The scanner's keys are revoked afterwards.
      assert.equal(security.authEnabled(), false);
    } finally {
      await app.close();
      await security.close();
      cleanup();
    }
  });

  test("an app without the auth plugin fails the scan, naming the routes", async () => {
    const { home, cleanup } = tempHome();
    const security = await openSecurity(home);
    let routes: CapturedRoute[] = [];
    const app = await buildSecuredApp(security, { withAuth: false, beforeRoutes: (a) => (routes = captureRoutes(a)) });
    try {
      await assert.rejects(scanRoutes(app, { security, routes }), (e: Error) => {
        assert.match(e.message, /GET \/api\/keys: no key, loopback: expected 401, got 200/);
        assert.match(e.message, /GET \/undeclared: undeclared scope, admin key: expected 403, got 200/);
        assert.match(e.message, /POST \/v1\/chat\/completions: key without "inference": expected 403/);
        return true;
      });
    } finally {
      await app.close();
      await security.close();
      cleanup();
    }
  });
});
