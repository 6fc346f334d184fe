import type { FastifyReply, FastifyRequest } from "fastify";
import type { RequestOrigin } from "../telemetry/request-tracker.js";
import "./auth/route-scope.js";
import "./tracing-hooks.js";

/**
 * An AbortSignal that fires when the client goes away before the response is complete, or when a shutdown's
 * drain ran out of time (its reason is then a `shutting_down` LlmosError), so queued and running work for it is
 * cancelled.
 */
export function clientGone(request: FastifyRequest, reply: FastifyReply): AbortSignal {
  const controller = new AbortController();
  const drain = request.drainSignal;
  const onDrain = () => controller.abort(drain?.reason);
  const onClose = () => {
    drain?.removeEventListener("abort", onDrain);
    if (!reply.raw.writableFinished) controller.abort(new Error("client disconnected"));
  };
  reply.raw.once("close", onClose);
  request.raw.once("aborted", onClose);
  if (drain?.aborted) onDrain();
  else drain?.addEventListener("abort", onDrain, { once: true });
  return controller.signal;
}

/** The id of the API key that made the request, or null without one (usage is recorded per key). */
export function keyIdOf(request: FastifyRequest): string | null {
  return request.llmosAuth?.key?.id ?? null;
}

/** The tenant a request is accounted to for fair queuing: API key id, else the `user` field, else the address. */
export function tenantOf(request: FastifyRequest, user?: string): string {
  const keyId = keyIdOf(request);
  if (keyId) return `key:${keyId}`;
  if (user) return `user:${user}`;
  return `addr:${request.ip}`;
}

/** Who sent a request (id, key, server span), for the live request list and traces. */
export function originOf(request: FastifyRequest, responseId?: string): RequestOrigin {
  const key = request.llmosAuth?.key;
  return {
    requestId: String(request.id),
    keyId: key?.id ?? null,
    keyName: key?.name ?? null,
    span: request.llmosSpan ?? undefined,
    ...(responseId ? { responseId } : {}),
  };
}
