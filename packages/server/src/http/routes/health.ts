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
    app.get(
      "/metrics",
      { config: { scope: "metrics" }, schema: { summary: "Prometheus metrics", tags: ["health"] } },
      async (_req, reply) => {
        const inv = await deps.inventory();
        const m = deps.metrics;
        m.nodeMemory.set({ kind: "total" }, inv.memory.totalBytes);
        m.nodeMemory.set({ kind: "available" }, inv.memory.availableBytes);
        m.nodeCpuCores.set(inv.cpu.cores);
        for (const g of inv.gpus) {
          m.gpuVram.set({ device: g.name, kind: "total" }, g.totalVramBytes);
          m.gpuVram.set({ device: g.name, kind: "free" }, g.freeVramBytes);
        }
        reply.type("text/plain; version=0.0.4; charset=utf-8");
        return m.render();
      },
    );
  };
}
