import type { Span } from "@opentelemetry/api";
import type { FastifyPluginAsync } from "fastify";
import type { Tracing } from "../telemetry/tracing.js";

declare module "fastify" {
  interface FastifyRequest {
    /** The request's server span while tracing is on (null otherwise). */
    llmosSpan: Span | null;
  }
}

/**
 * A server span per HTTP request (tracing on): started when the request arrives, ended when the response has been
 * written or the connection closed, which covers streamed (hijacked) responses too.
 */
export function tracingHooks(tracing: Tracing): FastifyPluginAsync {
  const plugin: FastifyPluginAsync = async (app) => {
    app.decorateRequest("llmosSpan", null);
    app.addHook("onRequest", async (request, reply) => {
      const span = tracing.startServerSpan(request.method, request.url.split("?")[0] ?? "/");
      request.llmosSpan = span;
      let ended = false;
      const end = () => {
        if (ended) return;
        ended = true;
        tracing.endServerSpan(span, request.method, request.routeOptions?.url, reply.raw.statusCode);
      };
      reply.raw.once("finish", end);
      reply.raw.once("close", end);
    });
  };
  (plugin as unknown as Record<symbol, unknown>)[Symbol.for("skip-override")] = true;
  return plugin;
}
