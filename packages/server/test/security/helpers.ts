import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import Fastify, { type FastifyInstance } from "fastify";
import { isLlmosError, LlmosError } from "../../src/errors.js";
import { homePaths } from "../../src/config/config.js";
import { authPlugin, type AuthPluginOptions } from "../../src/http/auth/index.js";
import { securityRoutes } from "../../src/http/routes/security.js";
import { SecurityService, type SecurityServiceOptions } from "../../src/security/index.js";

/** A temp LLMOS_HOME, removed by `cleanup`. */
export function tempHome(): { home: string; cleanup: () => void } {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), "llmos-sec-"));
  return { home, cleanup: () => fs.rmSync(home, { recursive: true, force: true }) };
}

/** Opens a SecurityService on a fresh SQLite file under a temp home. */
export async function openSecurity(
  home: string,
  extra: Partial<SecurityServiceOptions> = {},
): Promise<SecurityService> {
  return SecurityService.open({ databasePath: homePaths(home).database, home, timeScale: 1, ...extra });
}

/**
 * A small fastify app shaped like the daemon's: same ajv options, an error handler that maps errors to
 * `{ error: { code, message, details } }`, the auth plugin, dummy routes declaring each scope, the admin routes.
 * The inference route charges usage taken from the request body (`_prompt`, `_completion`) so tests
 * control the "actual" token counts.
 */
export async function buildSecuredApp(
  security: SecurityService,
  opts: AuthPluginOptions & { withAuth?: boolean; beforeRoutes?: (app: FastifyInstance) => void } = {},
): Promise<FastifyInstance> {
  const app = Fastify({
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: true, allErrors: false } },
  });
  app.setErrorHandler((error, _request, reply) => {
    const e = isLlmosError(error)
      ? error
      : (error as { code?: string }).code === "FST_ERR_VALIDATION"
        ? new LlmosError("invalid_request", (error as Error).message)
        : new LlmosError("internal", (error as Error).message);
    const retry = e.details?.retryAfterSeconds;
    if (typeof retry === "number") reply.header("retry-after", String(Math.max(1, Math.ceil(retry))));
    return reply
      .code(e.status)
      .send({ error: { code: e.code, message: e.message, ...(e.details ? { details: e.details } : {}) } });
  });
  app.setNotFoundHandler((request, reply) =>
    reply.code(404).send({ error: { code: "not_found", message: `no route ${request.url}` } }),
  );
  opts.beforeRoutes?.(app);
  if (opts.withAuth !== false) await app.register(authPlugin(security, opts));

  app.get("/healthz", async () => ({ ok: true }));
  app.get("/readyz", { config: { scope: "public" } }, async () => ({ ready: true }));
  app.get("/undeclared", async () => ({ leaked: true }));
  app.post("/v1/chat/completions", { config: { scope: "inference" } }, async (request) => {
    const body = request.body as { model: string; _prompt?: number; _completion?: number };
    const auth = request.llmosAuth!;
    security.recordUsage(auth.key?.id ?? null, body.model, body._prompt ?? 0, body._completion ?? 0);
    return { model: body.model, via: auth.via, local: auth.local, keyId: auth.key?.id ?? null };
  });
  app.get("/api/tags", { config: { scope: "models:read" } }, async () => ({ models: [] }));
  app.get("/api/models/:name", { config: { scope: "models:read" } }, async (request) => ({
    name: (request.params as { name: string }).name,
  }));
  app.post("/api/pull", { config: { scope: "models:write", audit: "model.pull" } }, async () => ({
    status: "success",
  }));
  app.post("/api/push", { config: { scope: "models:write", audit: "model.push" } }, async () => ({
    status: "success",
  }));
  app.post("/api/create", { config: { scope: "models:write", audit: "model.create" } }, async () => ({
    status: "success",
  }));
  app.post("/api/copy", { config: { scope: "models:write", audit: "model.copy" } }, async () => ({
    status: "success",
  }));
  app.post("/api/import", { config: { scope: "models:write", audit: "model.import" } }, async () => ({
    status: "success",
  }));
  app.delete("/api/models/:name", { config: { scope: "models:write", audit: "model.delete" } }, async () => ({
    deleted: true,
  }));
  app.post("/api/load", { config: { scope: "models:write", audit: "model.load" } }, async () => ({ loaded: true }));
  app.post("/api/store/verify", { config: { scope: "models:write", audit: "store.verify" } }, async () => ({
    checked: 0,
    corrupt: [],
  }));
  app.post("/api/store/gc", { config: { scope: "models:write", audit: "store.gc" } }, async () => ({ removed: [] }));
  app.post("/api/unload", { config: { scope: "models:write", audit: "model.unload" } }, async () => {
    throw new LlmosError("model_not_found", "not loaded");
  });
  app.put("/api/config", { config: { scope: "admin", audit: "config.change" } }, async () => ({ ok: true }));
  app.delete("/api/requests/:id", { config: { scope: "admin", audit: "request.cancel" } }, async () => ({
    cancelled: true,
  }));
  app.delete("/v1/responses/:id", { config: { scope: "inference", audit: "response.delete" } }, async () => ({
    deleted: true,
  }));
  app.get("/metrics", { config: { scope: "metrics" } }, async () => "llmos_up 1\n");
  await app.register(securityRoutes(security));
  await app.ready();
  return app;
}

export const bearer = (secret: string) => ({ authorization: `Bearer ${secret}` });

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
