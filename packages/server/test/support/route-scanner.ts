import type { FastifyInstance, HTTPMethods, RouteOptions } from "fastify";
import type { RouteScope } from "../../src/http/auth/index.js";
import { KEY_SCOPES, type KeyScope, type SecurityService } from "../../src/security/index.js";

/** A route as registered, with the scope it declares. */
export interface CapturedRoute {
  method: string;
  url: string;
  scope: RouteScope | undefined;
}

/**
 * Records every route registered on `app` from now on (call before registering routes; works across
 * encapsulated plugins). Returns a live array, filled as routes are added.
 */
export function captureRoutes(app: FastifyInstance): CapturedRoute[] {
  const routes: CapturedRoute[] = [];
  app.addHook("onRoute", (route: RouteOptions) => {
    const methods = (Array.isArray(route.method) ? route.method : [route.method]) as HTTPMethods[];
    for (const method of methods) {
      routes.push({ method: String(method).toUpperCase(), url: route.url, scope: route.config?.scope });
    }
  });
  return routes;
}

/** What `scanRoutes` takes. */
export interface ScanOptions {
  /** The service behind the app's auth plugin; the scanner mints one key per scope (revoked afterwards). */
  security: SecurityService;
  /** From `captureRoutes`. */
  routes: readonly CapturedRoute[];
  /** URLs the auth plugin treats as public without a declared scope (its `publicUrls`). */
  publicUrls?: readonly string[];
  /**
   * Also prove that a key holding the route's scope gets past auth (status not 401/403). This runs the
   * handlers with dummy params and an empty JSON body, so only enable it where that is harmless.
   */
  checkAllowed?: boolean | ((route: CapturedRoute) => boolean);
  /** Routes to leave out (e.g. OPTIONS catch-alls). */
  skip?: (route: CapturedRoute) => boolean;
}

/** One expectation checked against one route. */
export interface ScanCheck {
  route: string;
  check: string;
  expected: string;
  actual: number;
  ok: boolean;
}

const BODY_METHODS = new Set(["POST", "PUT", "PATCH", "DELETE"]);

/** Fills `:params` and wildcards with a dummy segment so the URL matches its route. */
export function concreteUrl(url: string): string {
  return url.replace(/:[A-Za-z0-9_]+(\([^)]*\))?/g, "scan0x").replace(/\*/g, "scan0x");
}

/**
 * Proves the auth behaviour of every captured route by requesting it through `app.inject`:
 * - declared non-public scope: no key (loopback and remote) -> 401, invalid key -> 401,
 *   a key holding every other non-admin scope -> 403 (an `admin` route: every non-admin scope -> 403);
 *   optionally, a key with the scope -> neither 401 nor 403;
 * - no declared scope (and not a public URL): even an admin key -> 403 (secure by default);
 * - public: no key from a remote address -> neither 401 nor 403.
 * Each wrong-key attempt uses its own wrong key from its own remote address so the failed-auth limiter (which
 * counts per credential and per address) never kicks in.
 * Returns every check; throws an Error listing the failed ones.
 */
export async function scanRoutes(app: FastifyInstance, options: ScanOptions): Promise<ScanCheck[]> {
  const { security } = options;
  const publicUrls = new Set(options.publicUrls ?? ["/healthz", "/readyz"]);
  const minted: string[] = [];
  const secrets = new Map<string, string>();
  const mint = async (name: string, scopes: KeyScope[]) => {
    const issued = await security.keys.create({ name: `route-scan ${name}`, scopes });
    minted.push(issued.key.id);
    return issued.secret;
  };
  let remoteCounter = 0;
  const nextRemote = () => {
    remoteCounter += 1;
    return `10.${200 + ((remoteCounter >> 16) & 0x1f)}.${(remoteCounter >> 8) & 0xff}.${remoteCounter & 0xff}`;
  };
  const checks: ScanCheck[] = [];
  try {
    secrets.set("admin", await mint("admin", ["admin"]));
    for (const s of KEY_SCOPES) if (s !== "admin") secrets.set(s, await mint(s, [s]));
    // One key with every scope except the one a route needs (and admin).
    for (const s of KEY_SCOPES) {
      const others = KEY_SCOPES.filter((o) => o !== s && o !== "admin");
      secrets.set(`all-but:${s}`, await mint(`all-but ${s}`, others));
    }
    // A fresh wrong key each time, like the fresh address: failures are counted per credential too.
    let invalidCounter = 0;
    const invalid = () => "llmos_000000000000_" + String(++invalidCounter).padStart(43, "A");

    for (const route of options.routes) {
      if (options.skip?.(route)) continue;
      const name = `${route.method} ${route.url}`;
      const url = concreteUrl(route.url);
      const send = async (headers: Record<string, string>, remoteAddress: string) => {
        const res = await app.inject({
          method: route.method as HTTPMethods,
          url,
          remoteAddress,
          headers: BODY_METHODS.has(route.method) ? { ...headers, "content-type": "application/json" } : headers,
          ...(BODY_METHODS.has(route.method) ? { payload: "{}" } : {}),
        });
        return res.statusCode;
      };
      const expect = (check: string, expected: string, actual: number, ok: boolean) =>
        checks.push({ route: name, check, expected, actual, ok });
      const bearer = (secret: string) => ({ authorization: `Bearer ${secret}` });

      const scope = route.scope ?? (publicUrls.has(route.url) ? "public" : undefined);
      if (scope === "public") {
        const s = await send({}, nextRemote());
        expect("public, no key, remote", "not 401/403", s, s !== 401 && s !== 403);
        continue;
      }
      if (scope === undefined) {
        const s = await send(bearer(secrets.get("admin")!), "127.0.0.1");
        expect("undeclared scope, admin key", "403", s, s === 403);
        continue;
      }
      let s = await send({}, "127.0.0.1");
      expect("no key, loopback", "401", s, s === 401);
      s = await send({}, nextRemote());
      expect("no key, remote", "401", s, s === 401);
      s = await send(bearer(invalid()), nextRemote());
      expect("invalid key", "401", s, s === 401);
      s = await send({ "x-api-key": invalid() }, nextRemote());
      expect("invalid x-api-key", "401", s, s === 401);
      const lacking = scope === "admin" ? "all-but:admin" : `all-but:${scope}`;
      s = await send(bearer(secrets.get(lacking)!), nextRemote());
      expect(`key without "${scope}"`, "403", s, s === 403);
      const allowedToo =
        typeof options.checkAllowed === "function" ? options.checkAllowed(route) : options.checkAllowed === true;
      if (allowedToo) {
        s = await send(bearer(secrets.get(scope)!), nextRemote());
        expect(`key with "${scope}"`, "not 401/403", s, s !== 401 && s !== 403);
      }
    }
  } finally {
    for (const id of minted) await security.keys.revoke(id);
  }
  const failed = checks.filter((c) => !c.ok);
  if (failed.length > 0) {
    throw new Error(
      `route scan: ${failed.length} of ${checks.length} checks failed:\n` +
        failed.map((c) => `  ${c.route}: ${c.check}: expected ${c.expected}, got ${c.actual}`).join("\n"),
    );
  }
  return checks;
}
