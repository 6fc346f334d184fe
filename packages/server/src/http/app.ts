import { randomUUID } from "node:crypto";
import cors from "@fastify/cors";
import Fastify, { type FastifyInstance, type FastifyPluginAsync } from "fastify";
import type { HttpDeps } from "./deps.js";
import { LlmosError } from "../errors.js";
import { sendError, toLlmosError } from "./errors.js";
import { bodyDepthGuard } from "./input-limits.js";
import { HostPolicy, hostGuard } from "./host-guard.js";
import { openapiRoutes, registerOpenApi } from "./openapi.js";
import { OriginPolicy, originGuard } from "./origin-policy.js";
import { eventRoutes } from "./routes/events.js";
import { healthRoutes } from "./routes/health.js";
import { ollamaRoutes } from "./routes/ollama.js";
import { openaiRoutes } from "./routes/openai.js";
import { requestRoutes } from "./routes/requests.js";
import { runtimeRoutes } from "./routes/runtime.js";
import { utilityRoutes } from "./routes/utility.js";

/**
 * Builds the HTTP application: one place for request ids, body limits, error mapping and metrics;
 * routes are thin translators registered from route modules.
 */
export async function buildApp(
  deps: HttpDeps,
  extraRoutes: FastifyPluginAsync[] = [],
  instrument?: (app: FastifyInstance) => void,
): Promise<FastifyInstance> {
  const app = Fastify({
    // fastify's own per-request lines are info-level; llmos logs requests itself (onResponse, debug).
    loggerInstance: deps.logger.child(
      { component: "http" },
      { level: deps.logger.levelVal > 30 ? deps.logger.level : "warn" },
    ),
    bodyLimit: deps.config.limits.bodyBytes,
    genReqId: (req: import("node:http").IncomingMessage) => {
      const given = req.headers["x-request-id"];
      return typeof given === "string" && /^[\w.-]{1,128}$/.test(given) ? given : randomUUID();
    },
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: true, allErrors: false } },
    return503OnClosing: true,
    forceCloseConnections: true,
    ...(deps.https ? { https: deps.https } : {}),
  } as never) as unknown as FastifyInstance;

  instrument?.(app);

  // Shutdown: new requests get 503 while those in flight finish (see Drain).
  app.decorateRequest("drainSignal", null);
  if (deps.drain) app.addHook("onRequest", deps.drain.onRequest);

  app.addHook("onRequest", async (request, reply) => {
    reply.header("x-request-id", request.id);
    reply.header("x-content-type-options", "nosniff");
  });
  app.addHook("preValidation", bodyDepthGuard(deps.config.limits));

  // Browser attacks are refused before anything else runs: a Host we do not know (DNS rebinding), an Origin that
  // is neither ours nor listed (cross-site requests, preflights included).
  const hosts = new HostPolicy(deps.config);
  const origins = new OriginPolicy(hosts, deps.config.corsOrigins, deps.https ? "https:" : "http:");
  app.addHook("onRequest", hostGuard(hosts));
  app.addHook("onRequest", originGuard(origins));

  // CORS headers only for listed origins; registered before auth so preflights are answered without a key.
  if (deps.config.corsOrigins.length > 0) {
    await app.register(cors, {
      origin: (origin, callback) => callback(null, origin !== undefined && origins.listedAllows(origin)),
      methods: ["GET", "HEAD", "POST", "DELETE"],
      allowedHeaders: ["content-type", "authorization", "x-api-key", "x-request-id"],
      exposedHeaders: [
        "x-request-id",
        "retry-after",
        "x-ratelimit-limit-requests",
        "x-ratelimit-remaining-requests",
        "x-ratelimit-limit-tokens",
        "x-ratelimit-remaining-tokens",
      ],
      maxAge: 600,
      hideOptionsRoute: true,
    });
  }

  app.addHook("onResponse", async (request, reply) => {
    const route = request.routeOptions?.url ?? "unmatched";
    deps.metrics.httpRequests.inc({ route, method: request.method, status: String(reply.statusCode) });
    deps.metrics.httpDuration.observe({ route, method: request.method }, reply.elapsedTime / 1000);
    deps.logger.debug(
      {
        reqId: request.id,
        method: request.method,
        url: request.url,
        status: reply.statusCode,
        ms: Math.round(reply.elapsedTime),
      },
      "request",
    );
  });

  app.setErrorHandler((error, request, reply) => {
    const e = toLlmosError(error);
    if (e.code === "internal")
      deps.logger.error({ err: error, reqId: request.id, url: request.url }, "unhandled error");
    return sendError(request, reply, e);
  });

  app.setNotFoundHandler((request, reply) =>
    sendError(request, reply, new LlmosError("not_found", `no route ${request.method} ${request.url.split("?")[0]}`)),
  );

  await registerOpenApi(app, deps);
  for (const plugin of deps.preRoutes ?? []) await app.register(plugin);
  await app.register(healthRoutes(deps));
  await app.register(runtimeRoutes(deps));
  await app.register(openaiRoutes(deps));
  await app.register(ollamaRoutes(deps));
  await app.register(utilityRoutes(deps));
  await app.register(eventRoutes(deps));
  await app.register(requestRoutes(deps));
  await app.register(openapiRoutes);
  for (const plugin of extraRoutes) await app.register(plugin);
  return app;
}
