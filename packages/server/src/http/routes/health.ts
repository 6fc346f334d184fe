import type { FastifyPluginAsync } from "fastify";
import type { HttpDeps } from "../deps.js";

/** Liveness, readiness, metrics, version. */
export function healthRoutes(deps: HttpDeps): FastifyPluginAsync {
  return async (app) => {
    app.get("/healthz", { config: { scope: "public" } }, async () => ({ status: "ok" }));
    app.get("/readyz", { config: { scope: "public" } }, async (_req, reply) => {
      if (!deps.ready()) return reply.code(503).send({ status: "starting" });
      return { status: "ready" };
    });
    app.get("/metrics", { config: { scope: "metrics" } }, async (_req, reply) => {
      reply.type("text/plain; version=0.0.4; charset=utf-8");
      return deps.metrics.render();
    });
  };
}
